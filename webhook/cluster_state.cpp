#include "webhook/cluster_state.h"

#include "graydebug/circuit_breaker.h"
#include "graydebug/log.h"

namespace graydebug::webhook {
namespace {

constexpr const char* kEnforceLabel = "pod-security.kubernetes.io/enforce";

kube::InformerOptions NamespaceOptions() {
  kube::InformerOptions o;
  o.name = "namespaces";
  o.transform = [](nlohmann::json& ns) {
    if (!ns.is_object() || !ns.contains("metadata") || !ns["metadata"].is_object()) return;
    nlohmann::json md = {{"name", ns["metadata"].value("name", "")},
                         {"resourceVersion", ns["metadata"].value("resourceVersion", "")}};
    if (auto labels = ns["metadata"].find("labels"); labels != ns["metadata"].end() && labels->is_object()) {
      if (auto l = labels->find(kEnforceLabel); l != labels->end() && l->is_string()) {
        md["labels"] = {{kEnforceLabel, *l}};
      }
    }
    ns = {{"metadata", std::move(md)}};
  };
  return o;
}

}  // namespace

ClusterBreakers::ClusterBreakers(std::shared_ptr<kube::Client> client, const std::string& ns)
    : informer_(std::move(client), kube::Resource::ConfigMaps(), ns, [] {
        kube::InformerOptions o;
        o.name = "circuits";
        o.field_selector = std::string("metadata.name=") + kCircuitsConfigMap;
        return o;
      }()) {
  kube::EventHandlers h;
  h.on_add = [this](const nlohmann::json& cm) { Replace(cm); };
  h.on_update = [this](const nlohmann::json&, const nlohmann::json& cm) { Replace(cm); };
  h.on_delete = [this](const nlohmann::json&) {
    std::lock_guard l(mu_);
    not_closed_.clear();
  };
  informer_.AddHandlers(h);
}

void ClusterBreakers::Replace(const nlohmann::json& cm) {
  std::map<std::string, bool> fresh;
  if (auto data = cm.find("data"); data != cm.end() && data->is_object()) {
    for (const auto& [key, value] : data->items()) {
      nlohmann::json j =
          value.is_string() ? nlohmann::json::parse(value.get<std::string>(), nullptr, false) : nlohmann::json();
      // Read by type: json::value() would throw on a non-string state, in the informer's thread.
      auto st = j.is_object() ? j.find("state") : j.end();
      std::string state = st != j.end() && st->is_string() ? st->get<std::string>() : "";
      std::string release_key = ReleaseKeyOfCircuitDataKey(key);
      if (state == "open" || state == "half-open") fresh[release_key] = true;
    }
  }
  std::lock_guard l(mu_);
  for (const auto& [k, v] : fresh) {
    if (!not_closed_.count(k))
      log::Warn("circuit breaker open: new pods of the release get no sidecars", {{"release", k}});
  }
  for (const auto& [k, v] : not_closed_) {
    if (!fresh.count(k)) log::Info("circuit breaker closed: injection resumes", {{"release", k}});
  }
  not_closed_ = std::move(fresh);
}

bool ClusterBreakers::IsOpen(const std::string& release_key) const {
  std::lock_guard l(mu_);
  return not_closed_.count(release_key) > 0;
}

StandaloneBreakers::StandaloneBreakers() {
  log::Warn(
      "no cluster access (no --kubeconfig and not in a pod): running standalone, every circuit breaker counts as "
      "closed");
}

NamespaceLevels::NamespaceLevels(std::shared_ptr<kube::Client> client)
    : informer_(std::move(client), kube::Resource::Namespaces(), "", NamespaceOptions()) {}

std::string NamespaceLevels::EnforceLevel(const std::string& ns) const {
  auto obj = informer_.Get(ns);
  if (!obj) return "";
  const nlohmann::json& md = (*obj)["metadata"];
  auto labels = md.find("labels");
  if (labels == md.end() || !labels->is_object()) return "";
  return labels->value(kEnforceLabel, "");
}

}  // namespace graydebug::webhook
