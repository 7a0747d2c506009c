#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "graydebug/clock.h"

#include "graydebug/kube/client.h"
#include "graydebug/kube/informer.h"
#include "webhook/sidecar_injector.h"

namespace graydebug::webhook {

// The breaker input when the webhook runs without cluster access: every circuit is closed. Says so
// once in a warning at construction (SPEC §2).
class StandaloneBreakers final : public BreakerView {
 public:
  StandaloneBreakers();
  BreakerGate Admit(const std::string&, int, bool) override { return BreakerGate::kClosed; }
};

// Pure: the breakers as published in ConfigMap graydebug-circuits (data "<namespace>.<release>" ->
// the breaker's JSON) and this replica's half-open injection budget. A half-open period is one
// trip (the breaker's trips and retryAt), so the next half-open period has a fresh budget. An open
// breaker whose retryAt has passed counts as half-open (the controller publishes that a little
// later). Not thread-safe (ClusterBreakers locks).
class BreakerGates {
 public:
  // Replaces the published breakers with the ConfigMap's `data` (entries of another shape count
  // as closed). Returns the releases that became not closed and those that became closed.
  std::pair<std::vector<std::string>, std::vector<std::string>> Replace(const nlohmann::json& data);
  void Clear() {
    breakers_.clear();
    budget_.clear();
  }
  BreakerGate Admit(const std::string& release_key, int half_open_injections, bool consume, Clock::Wall now);

 private:
  struct Published {
    bool open = false;  // "open" (else "half-open")
    int64_t retry_at_ms = 0;
    std::string period;  // "<trips>/<retryAt>"
  };
  struct Budget {
    std::string period;
    int used = 0;
  };
  std::map<std::string, Published> breakers_;  // only releases that are not closed
  std::map<std::string, Budget> budget_;
};

// The breakers the controller's leader publishes in ConfigMap graydebug-circuits (SPEC §6), from an
// informer on that one ConfigMap. A release whose breaker is open gets no new sidecars; a half-open
// one gets at most `half_open_injections` new pods per half-open period (BreakerGates).
class ClusterBreakers final : public BreakerView {
 public:
  ClusterBreakers(std::shared_ptr<kube::Client> client, const std::string& ns);
  void Start() { informer_.Start(); }
  void Stop() { informer_.Stop(); }
  bool HasSynced() const { return informer_.HasSynced(); }
  BreakerGate Admit(const std::string& release_key, int half_open_injections, bool consume) override;

 private:
  void Replace(const nlohmann::json& configmap);
  kube::Informer informer_;
  std::mutex mu_;
  BreakerGates gates_;
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
