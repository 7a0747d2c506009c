#include "graydebug/api/pod.h"

#include "graydebug/json_patch.h"

#include "graydebug/json_read.h"

namespace graydebug::api {
namespace {

using json = nlohmann::json;
using jsonr::Arr;
using jsonr::Obj;
using jsonr::Str;

int Port(int64_t p) {
  return p > 0 && p < 65536 ? static_cast<int>(p) : 0;
}

}  // namespace

json InjectionStatus::ToJson() const {
  return {{"containers", containers}, {"version", version},      {"target", target},
          {"dlvPort", dlv_port},      {"agentPort", agent_port}, {"dlvUser", dlv_user}};
}

std::string InjectionStatus::Text() const {
  // The members in nlohmann's (sorted) order.
  std::string out = "{\"agentPort\":" + std::to_string(agent_port) + ",\"containers\":[";
  for (std::size_t i = 0; i < containers.size(); ++i) {
    if (i > 0) out += ',';
    AppendJsonString(&out, containers[i]);
  }
  out += "],\"dlvPort\":" + std::to_string(dlv_port) + ",\"dlvUser\":";
  AppendJsonString(&out, dlv_user);
  out += ",\"target\":";
  AppendJsonString(&out, target);
  out += ",\"version\":";
  AppendJsonString(&out, version);
  out += '}';
  return out;
}

std::optional<InjectionStatus> InjectionStatus::OfPod(const json& pod) {
  const json& annotations = Obj(Obj(pod, "metadata"), "annotations");
  auto raw = annotations.find(kStatusAnnotation);
  if (raw == annotations.end() || !raw->is_string()) return std::nullopt;
  json j = json::parse(raw->get<std::string>(), nullptr, false);
  if (!j.is_object()) return std::nullopt;
  InjectionStatus s;
  s.containers.clear();
  for (const json& c : Arr(j, "containers")) {
    if (c.is_string()) s.containers.push_back(c.get<std::string>());
  }
  s.version = Str(j, "version");
  s.target = Str(j, "target");
  s.dlv_port = Port(jsonr::Int(j, "dlvPort"));
  s.agent_port = Port(jsonr::Int(j, "agentPort"));
  s.dlv_user = Str(j, "dlvUser");
  return s;
}

int DlvPortOf(const json& pod, int fallback) {
  auto s = InjectionStatus::OfPod(pod);
  return s && s->dlv_port > 0 ? s->dlv_port : fallback;
}

int AgentPortOf(const json& pod) {
  const json& spec = Obj(pod, "spec");
  for (const char* list : {"containers", "initContainers"}) {
    for (const json& c : Arr(spec, list)) {
      if (Str(c, "name") != kAgentContainer) continue;
      const json& ports = Arr(c, "ports");
      if (ports.empty()) return 0;
      for (const json& p : ports) {
        if (Str(p, "name") == kAgentPortName) return Port(jsonr::Int(p, "containerPort"));
      }
      return Port(jsonr::Int(ports[0], "containerPort"));
    }
  }
  return 0;
}

std::string ReleaseOf(const json& pod, const std::string& release_label) {
  const json& md = Obj(pod, "metadata");
  if (std::string v = Str(Obj(md, "labels"), release_label); !v.empty()) return v;
  const json& owners = Arr(md, "ownerReferences");
  for (const json& o : owners) {
    if (std::string n = Str(o, "name"); jsonr::Bool(o, "controller") && !n.empty()) return n;
  }
  return owners.empty() ? "" : Str(owners[0], "name");
}

std::string ReleaseKey(const std::string& namespace_name, const std::string& release) {
  return release.empty() ? "" : namespace_name + "/" + release;
}

std::pair<std::string, std::string> SplitReleaseKey(const std::string& release_key) {
  auto slash = release_key.find('/');
  if (slash == std::string::npos) return {"", release_key};
  return {release_key.substr(0, slash), release_key.substr(slash + 1)};
}

}  // namespace graydebug::api
