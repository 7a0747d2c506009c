#include "webhook/cluster_state.h"

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

StandaloneBreakers::StandaloneBreakers() {
  log::Warn("no cluster access (no --kubeconfig and not in a pod): running standalone, every circuit breaker counts as closed");
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
