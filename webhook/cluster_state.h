#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "graydebug/kube/client.h"
#include "graydebug/kube/informer.h"
#include "webhook/sidecar_injector.h"

namespace graydebug::webhook {

// The breaker input when the webhook runs without cluster access: every circuit is closed. Says so
// once in a warning at construction (SPEC §2).
class StandaloneBreakers final : public BreakerView {
 public:
  StandaloneBreakers();
  bool IsOpen(const std::string&) const override { return false; }
};

// The breakers the controller's leader publishes in ConfigMap graydebug-circuits (SPEC §6), from an
// informer on that one ConfigMap. A release whose breaker is open or half-open gets no new sidecars
// (half-open trials come from sessions on existing pods).
class ClusterBreakers final : public BreakerView {
 public:
  ClusterBreakers(std::shared_ptr<kube::Client> client, const std::string& ns);
  void Start() { informer_.Start(); }
  void Stop() { informer_.Stop(); }
  bool HasSynced() const { return informer_.HasSynced(); }
  bool IsOpen(const std::string& release_key) const override;

 private:
  void Replace(const nlohmann::json& configmap);
  kube::Informer informer_;
  mutable std::mutex mu_;
  std::map<std::string, bool> not_closed_;  // release key -> open or half-open
};

// Namespaces' Pod Security enforce levels from a namespace informer that caches only names and
// that one label (so memory does not grow with the namespaces' other fields).
class NamespaceLevels {
 public:
  explicit NamespaceLevels(std::shared_ptr<kube::Client> client);
  void Start() { informer_.Start(); }
  void Stop() { informer_.Stop(); }
  bool HasSynced() const { return informer_.HasSynced(); }
  // "" when the namespace is unknown or has no enforce label.
  std::string EnforceLevel(const std::string& ns) const;

 private:
  kube::Informer informer_;
};

}  // namespace graydebug::webhook
