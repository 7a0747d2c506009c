#include "webhook/cluster_state.h"

#include "graydebug/api/circuits.h"
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

std::pair<std::vector<std::string>, std::vector<std::string>> BreakerGates::Replace(const nlohmann::json& data) {
  std::map<std::string, Published> fresh;
  for (const api::CircuitEntry& e : api::DecodeCircuits(data, api::ReaderBreakerConfig())) {
    // An unreadable entry counts as closed, as the controller's leader reads it.
    if (!e.breaker || e.breaker->stored_state() == BreakerState::kClosed) continue;
    Published p;
    p.open = e.breaker->stored_state() == BreakerState::kOpen;
    p.retry_at_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(e.breaker->RetryAt().time_since_epoch()).count();
    p.period = std::to_string(e.breaker->trips()) + "/" + std::to_string(p.retry_at_ms);
    fresh[e.release_key] = p;
  }
  std::vector<std::string> opened, closed;
  for (const auto& [k, v] : fresh) {
    if (!breakers_.count(k)) opened.push_back(k);
  }
  for (const auto& [k, v] : breakers_) {
    if (!fresh.count(k)) {
      closed.push_back(k);
      budget_.erase(k);
    }
  }
  breakers_ = std::move(fresh);
  return {opened, closed};
}

BreakerGate BreakerGates::Admit(const std::string& release_key, int half_open_injections, bool consume,
                                Clock::Wall now) {
  auto it = breakers_.find(release_key);
  if (it == breakers_.end()) return BreakerGate::kClosed;
  const Published& p = it->second;
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  if (p.open && now_ms < p.retry_at_ms) return BreakerGate::kOpen;
  Budget& b = budget_[release_key];
  if (b.period != p.period) b = Budget{p.period, 0};
  if (b.used >= half_open_injections) return BreakerGate::kHalfOpenFull;
  if (consume) ++b.used;
  return BreakerGate::kHalfOpenTrial;
}

ClusterBreakers::ClusterBreakers(std::shared_ptr<kube::Client> client, const std::string& ns)
    : informer_(std::move(client), kube::Resource::ConfigMaps(), ns, [] {
        kube::InformerOptions o;
        o.name = "circuits";
        o.field_selector = std::string("metadata.name=") + api::kCircuitsConfigMap;
        return o;
      }()) {
  kube::EventHandlers h;
  h.on_add = [this](const nlohmann::json& cm) { Replace(cm); };
  h.on_update = [this](const nlohmann::json&, const nlohmann::json& cm) { Replace(cm); };
  h.on_delete = [this](const nlohmann::json&) {
    std::lock_guard l(mu_);
    gates_.Clear();
    log::Info("ConfigMap " + std::string(api::kCircuitsConfigMap) + " deleted: every circuit counts as closed");
  };
  informer_.AddHandlers(h);
}

void ClusterBreakers::Replace(const nlohmann::json& cm) {
  static const nlohmann::json kNone;
  auto data = cm.is_object() ? cm.find("data") : cm.end();
  std::lock_guard l(mu_);
  auto [opened, closed] = gates_.Replace(cm.is_object() && data != cm.end() ? *data : kNone);
  for (const auto& k : opened) {
    log::Warn("circuit breaker not closed: new pods of the release get no sidecars (half-open: a few trial pods do)",
              {{"release", k}});
  }
  for (const auto& k : closed) log::Info("circuit breaker closed: injection resumes", {{"release", k}});
}

BreakerGate ClusterBreakers::Admit(const std::string& release_key, int half_open_injections, bool consume) {
  std::lock_guard l(mu_);
  BreakerGate g = gates_.Admit(release_key, half_open_injections, consume, std::chrono::system_clock::now());
  if (g == BreakerGate::kHalfOpenTrial && consume) {
    log::Info("injecting a trial pod of a half-open circuit breaker", {{"release", release_key}});
  }
  return g;
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
