#include "webhook/sidecar_injector.h"

#include <charconv>
#include <optional>
#include <set>
#include <stdexcept>

#include "graydebug/json_patch.h"

namespace graydebug::webhook {
namespace {

using json = nlohmann::json;

// Member `key` of `obj` when obj is an object and the member exists, else nullptr.
const json* Member(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

// String value at obj[key] or nullopt (also for values of another type).
std::optional<std::string> StringAt(const json* obj, const std::string& key) {
  if (obj == nullptr || !obj->is_object()) return std::nullopt;
  auto it = obj->find(key);
  if (it == obj->end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

const json& EmptyArray() {
  static const json kEmpty = json::array();
  return kEmpty;
}

const json& ArrayAt(const json* obj, const char* key) {
  const json* a = obj == nullptr ? nullptr : Member(*obj, key);
  return a != nullptr && a->is_array() ? *a : EmptyArray();
}

InjectionResult Skip(std::string reason, std::string message, std::string release_key) {
  InjectionResult r;
  r.reason = std::move(reason);
  r.message = std::move(message);
  r.release_key = std::move(release_key);
  return r;
}

std::optional<int> ParsePort(const std::string& s) {
  int v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || !ValidPort(v)) return std::nullopt;
  return v;
}

bool HasContainerNamed(const json* spec, const char* name) {
  for (const char* list : {"containers", "initContainers"}) {
    for (const json& c : ArrayAt(spec, list)) {
      if (StringAt(&c, "name") == name) return true;
    }
  }
  return false;
}

// Escaped as JSON (control characters too), so hostile values stay on one log line.
std::string Quote(const std::string& s) {
  return JsonString(s);
}

// The two sidecars for `target` with dlv on `dlv_port`; images are filled in by Inject.
std::pair<json, json> BuildSidecars(const InjectionConfig& c, int dlv_port, const std::string& target,
                                    const std::string& dlv_image, const std::string& agent_image) {
  std::string dlv_listen = c.dlv_listen_host.find(':') != std::string::npos
                               ? "[" + c.dlv_listen_host + "]:" + std::to_string(dlv_port)
                               : c.dlv_listen_host + ":" + std::to_string(dlv_port);
  std::string dlv_local = (c.dlv_listen_host == "::1" ? "[::1]:" : "127.0.0.1:") + std::to_string(dlv_port);
  json target_env = {{"name", "GRAYDEBUG_TARGET_CONTAINER"}, {"value", target}};
  json dlv = {
      {"name", api::kDlvContainer},
      {"image", dlv_image},
      {"imagePullPolicy", c.image_pull_policy},
      {"command", {c.agent_binary}},
      {"args", {"launch-dlv", "--listen=" + dlv_listen}},
      {"env", {target_env}},
      {"resources", c.dlv_resources},
      // runAsUser/runAsGroup/runAsNonRoot are set per pod (DlvIdentityFor).
      {"securityContext",
       {{"allowPrivilegeEscalation", false},
        {"capabilities", {{"add", {"SYS_PTRACE"}}, {"drop", {"ALL"}}}},
        {"privileged", false},
        {"seccompProfile", {{"type", "RuntimeDefault"}}}}},
      {"terminationMessagePolicy", "FallbackToLogsOnError"},
  };
  if (c.dlv_readiness_probe) {
    // dlv's own answer (GetVersion on the pod's loopback), so a pod whose debugger is dead shows
    // not Ready with the launcher's reason in the probe's event. Never a startupProbe: a native
    // sidecar's startupProbe holds back the app's start, and dlv waits for the app.
    dlv["readinessProbe"] = {{"exec", {{"command", {c.agent_binary, "probe-dlv", "--addr=" + dlv_local}}}},
                             {"periodSeconds", 10},
                             {"timeoutSeconds", 5},
                             {"failureThreshold", 3}};
  }
  json agent = {
      {"name", api::kAgentContainer},
      {"image", agent_image},
      {"imagePullPolicy", c.image_pull_policy},
      {"command", {c.agent_binary}},
      {"args", {"--listen=:" + std::to_string(c.agent_port), "--dlv-addr=" + dlv_local}},
      {"env",
       {target_env,
        {{"name", "POD_NAME"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "metadata.name"}}}}}},
        {{"name", "POD_NAMESPACE"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "metadata.namespace"}}}}}}}},
      {"ports", {{{"name", api::kAgentPortName}, {"containerPort", c.agent_port}, {"protocol", "TCP"}}}},
      {"readinessProbe",
       {{"httpGet", {{"path", "/healthz"}, {"port", c.agent_port}}},
        {"periodSeconds", 10},
        {"timeoutSeconds", 2},
        {"failureThreshold", 3}}},
      {"resources", c.agent_resources},
      {"securityContext",
       {{"allowPrivilegeEscalation", false},
        {"capabilities", {{"drop", {"ALL"}}}},
        {"privileged", false},
        {"readOnlyRootFilesystem", true},
        {"runAsNonRoot", true},
        {"runAsUser", c.agent_run_as_user},
        {"runAsGroup", c.agent_run_as_group},
        {"seccompProfile", {{"type", "RuntimeDefault"}}}}},
      {"terminationMessagePolicy", "FallbackToLogsOnError"},
  };

  return {std::move(dlv), std::move(agent)};
}

// The holes of the sidecar templates (JsonTemplate::Hole).
enum Hole { kImage = 0, kTarget = 1, kRunAsUser = 2, kRunAsGroup = 3, kRunAsNonRoot = 4, kExpvarArg = 5 };
static_assert(kExpvarArg == JsonTemplate::kElementHole);

// The two sidecars for dlv on `dlv_port`, with holes for what differs per pod.
std::pair<JsonTemplate, JsonTemplate> Templates(const InjectionConfig& c, int dlv_port) {
  const std::string image = JsonTemplate::Hole(kImage);
  auto [dlv, agent] = BuildSidecars(c, dlv_port, JsonTemplate::Hole(kTarget), image, image);
  json& sc = dlv["securityContext"];
  sc["runAsUser"] = JsonTemplate::Hole(kRunAsUser);
  sc["runAsGroup"] = JsonTemplate::Hole(kRunAsGroup);
  sc["runAsNonRoot"] = JsonTemplate::Hole(kRunAsNonRoot);
  agent["args"].push_back(JsonTemplate::Hole(kExpvarArg));
  if (c.native_sidecars) {
    dlv["restartPolicy"] = "Always";
    agent["restartPolicy"] = "Always";
  }
  return {JsonTemplate(dlv), JsonTemplate(agent)};
}

// A non-negative integer at obj[key] (runAsUser, runAsGroup), else nullopt.
std::optional<int64_t> IdAt(const json* obj, const char* key) {
  const json* v = obj == nullptr ? nullptr : Member(*obj, key);
  if (v == nullptr || !v->is_number_integer()) return std::nullopt;
  int64_t id = v->get<int64_t>();
  if (id < 0 || id > 2147483647) return std::nullopt;
  return id;
}

bool TrueAt(const json* obj, const char* key) {
  const json* v = obj == nullptr ? nullptr : Member(*obj, key);
  return v != nullptr && v->is_boolean() && v->get<bool>();
}

}  // namespace

JsonTemplate::JsonTemplate(const json& value) {
  const std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  static constexpr std::string_view kMark = "\"\\u0001";  // a string that starts with \x01
  std::size_t from = 0;
  for (;;) {
    const std::size_t at = text.find(kMark, from);
    if (at == std::string::npos) break;
    const std::size_t digit = at + kMark.size();
    if (digit + 1 >= text.size() || text[digit] < '0' || text[digit] >= '0' + kHoles || text[digit + 1] != '"') {
      throw std::logic_error("a template string starts with \\x01 but is not a hole");
    }
    const int id = text[digit] - '0';
    std::string before = text.substr(from, at - from);
    if (id == kElementHole) {
      if (before.empty() || before.back() != ',') throw std::logic_error("an element hole that is not after a comma");
      before.pop_back();
    }
    parts_.push_back(std::move(before));
    holes_.push_back(id);
    from = digit + 2;
  }
  parts_.push_back(text.substr(from));
}

void JsonTemplate::Render(const std::string_view (&fill)[kHoles], std::string* out) const {
  for (std::size_t i = 0; i < holes_.size(); ++i) {
    *out += parts_[i];
    const std::string_view v = fill[holes_[i]];
    if (holes_[i] == kElementHole) {
      if (v.empty()) continue;
      *out += ',';
    }
    *out += v;
  }
  *out += parts_.back();
}

DlvIdentity DlvIdentityFor(const json& pod, const std::string& target, int64_t fallback_uid, int64_t fallback_gid) {
  const json* spec = Member(pod, "spec");
  const json* pod_sc = spec == nullptr ? nullptr : Member(*spec, "securityContext");
  const json* target_sc = nullptr;
  for (const json& ct : ArrayAt(spec, "containers")) {
    if (StringAt(&ct, "name") == target) target_sc = Member(ct, "securityContext");
  }
  std::optional<int64_t> uid = IdAt(target_sc, "runAsUser");
  if (!uid) uid = IdAt(pod_sc, "runAsUser");
  std::optional<int64_t> gid = IdAt(target_sc, "runAsGroup");
  if (!gid) gid = IdAt(pod_sc, "runAsGroup");
  DlvIdentity id;
  // ptrace (and reading /proc/<pid>/exe) without CAP_SYS_PTRACE needs the same uid AND gid as the
  // target; a non-root process never has an effective capability that Kubernetes adds.
  if (uid && gid) {
    id.run_as_user = *uid;
    id.run_as_group = *gid;
    id.run_as_non_root = *uid != 0;
    id.source = "target-uid";
    return id;
  }
  // The pod-level runAsNonRoot applies to dlv-server too: the kubelet would refuse a root
  // container. The launcher says why it cannot attach when the guess is wrong.
  if (TrueAt(pod_sc, "runAsNonRoot")) {
    id.run_as_user = uid && *uid != 0 ? *uid : fallback_uid;
    id.run_as_group = gid ? *gid : (uid && *uid != 0 ? *uid : fallback_gid);
    id.run_as_non_root = true;
    id.source = "non-root-fallback";
    return id;
  }
  // Unknown: the image's user (most Go images run as root). Root with every capability dropped
  // but SYS_PTRACE, which is then effective and lets dlv attach whatever the target's uid.
  id.source = "root-ptrace";
  return id;
}

SidecarInjector::SidecarInjector(InjectionConfig config, std::string version)
    : config_(std::move(config)), version_(std::move(version)) {
  std::tie(dlv_template_, agent_template_) = Templates(config_, config_.dlv_port);
}

InjectionResult SidecarInjector::Inject(const json& pod, const InjectionContext& ctx) const {
  const InjectionConfig& c = config_;
  const json* md = Member(pod, "metadata");
  const json* labels = md ? Member(*md, "labels") : nullptr;
  const json* annotations = md ? Member(*md, "annotations") : nullptr;
  const json* spec = Member(pod, "spec");

  std::string ns = ctx.namespace_name;
  if (auto pod_ns = StringAt(md, "namespace"); ns.empty() && pod_ns) ns = *pod_ns;
  std::string release = api::ReleaseOf(pod, c.release_label);
  std::string release_key = api::ReleaseKey(ns, release);

  if (ctx.operation != "CREATE") {
    return Skip("not-create", "only new pods are injected (operation " + ctx.operation + ")", release_key);
  }
  if (!pod.is_object() || spec == nullptr || !spec->is_object()) {
    return Skip("not-selected", "the object is not a pod with a spec", release_key);
  }
  if (StringAt(labels, c.select_label_key) != c.select_label_value) {
    return Skip("not-selected", "label " + c.select_label_key + "=" + c.select_label_value + " is absent", release_key);
  }
  if (StringAt(annotations, api::kOptOutAnnotation) == "false") {
    return Skip("opted-out", std::string("annotation ") + api::kOptOutAnnotation + "=false", release_key);
  }
  if (StringAt(labels, api::kInjectedLabel) == "true" || StringAt(annotations, api::kStatusAnnotation) ||
      HasContainerNamed(spec, api::kDlvContainer) || HasContainerNamed(spec, api::kAgentContainer)) {
    return Skip("already-injected", "the pod already carries graydebug's sidecars", release_key);
  }
  if (const json* hn = Member(*spec, "hostNetwork"); hn != nullptr && hn->is_boolean() && hn->get<bool>()) {
    return Skip("host-network", "hostNetwork pods are not injected: dlv's loopback would be the node's", release_key);
  }

  // Per-pod overrides, validated: an invalid one skips the pod rather than break it.
  const json& containers = ArrayAt(spec, "containers");
  if (containers.empty()) return Skip("not-selected", "the pod has no containers", release_key);
  std::string target;
  if (auto t = StringAt(annotations, api::kTargetAnnotation)) {
    bool found = false;
    for (const json& ct : containers) found = found || StringAt(&ct, "name") == *t;
    if (!found) {
      return Skip("invalid-annotation",
                  std::string(api::kTargetAnnotation) + "=" + Quote(*t) + " names no container of the pod",
                  release_key);
    }
    target = *t;
  } else {
    auto first = StringAt(&containers[0], "name");
    if (!first || first->empty()) return Skip("not-selected", "the first container has no name", release_key);
    target = *first;
  }
  std::string dlv_image = c.dlv_image, agent_image = c.agent_image;
  if (auto v = StringAt(annotations, api::kDlvImageAnnotation)) {
    if (!ValidImage(*v)) {
      return Skip("invalid-annotation", std::string(api::kDlvImageAnnotation) + "=" + Quote(*v) + " is not an image",
                  release_key);
    }
    dlv_image = *v;
  }
  if (auto v = StringAt(annotations, api::kAgentImageAnnotation)) {
    if (!ValidImage(*v)) {
      return Skip("invalid-annotation", std::string(api::kAgentImageAnnotation) + "=" + Quote(*v) + " is not an image",
                  release_key);
    }
    agent_image = *v;
  }
  int dlv_port = c.dlv_port;
  bool dlv_port_from_annotation = false;
  if (auto v = StringAt(annotations, api::kDlvPortAnnotation)) {
    auto p = ParsePort(*v);
    if (!p || *p == c.agent_port) {
      return Skip(
          "invalid-annotation",
          std::string(api::kDlvPortAnnotation) + "=" + Quote(*v) + " is not a port in 1..65535 other than the agent's",
          release_key);
    }
    dlv_port = *p;
    dlv_port_from_annotation = true;
  }
  std::string expvar_url = c.expvar_url;
  if (auto v = StringAt(annotations, api::kExpvarUrlAnnotation)) {
    if (std::string why = ExpvarUrlProblem(*v); !why.empty()) {
      return Skip("invalid-annotation", std::string(api::kExpvarUrlAnnotation) + "=" + Quote(*v) + " " + why,
                  release_key);
    }
    expvar_url = *v;
  }
  // The pod's containers share one network namespace: a declared port equal to ours would clash.
  std::set<int64_t> used_ports;
  for (const char* list : {"containers", "initContainers"}) {
    for (const json& ct : ArrayAt(spec, list)) {
      for (const json& p : ArrayAt(&ct, "ports")) {
        const json* cp = Member(p, "containerPort");
        if (cp != nullptr && cp->is_number_integer()) used_ports.insert(cp->get<int64_t>());
      }
    }
  }
  if (used_ports.count(dlv_port)) {
    return Skip(dlv_port_from_annotation ? "invalid-annotation" : "port-conflict",
                "the pod already declares port " + std::to_string(dlv_port) + " (dlv's)", release_key);
  }
  if (used_ports.count(c.agent_port)) {
    return Skip("port-conflict", "the pod already declares port " + std::to_string(c.agent_port) + " (the agent's)",
                release_key);
  }

  // Cluster state last: these depend on things outside the pod.
  if (ctx.pod_security_enforce == "baseline" || ctx.pod_security_enforce == "restricted") {
    return Skip(
        "pod-security",
        "namespace " + ns + " enforces Pod Security \"" + ctx.pod_security_enforce + "\", which forbids SYS_PTRACE",
        release_key);
  }
  bool trial = false;
  if (ctx.breakers != nullptr && !release_key.empty()) {
    switch (ctx.breakers->Admit(release_key, c.half_open_injections, !ctx.dry_run)) {
      case BreakerGate::kClosed: break;
      case BreakerGate::kHalfOpenTrial: trial = true; break;
      case BreakerGate::kOpen:
        return Skip("circuit-open", "the circuit breaker of release " + release_key + " is open", release_key);
      case BreakerGate::kHalfOpenFull:
        return Skip("circuit-open",
                    "the circuit breaker of release " + release_key + " is half-open and this webhook replica " +
                        "already injected its " + std::to_string(c.half_open_injections) +
                        " trial pods of the half-open period",
                    release_key);
    }
  }

  // Inject: render the sidecars from their templates (building and dumping them as trees costs
  // ~1000 allocations) with what differs per pod.
  std::optional<std::pair<JsonTemplate, JsonTemplate>> own;
  if (dlv_port != c.dlv_port) own = Templates(c, dlv_port);
  const JsonTemplate& dlv_template = own ? own->first : dlv_template_;
  const JsonTemplate& agent_template = own ? own->second : agent_template_;
  const DlvIdentity identity = DlvIdentityFor(pod, target, c.agent_run_as_user, c.agent_run_as_group);
  const std::string target_text = Quote(target), uid = std::to_string(identity.run_as_user),
                    gid = std::to_string(identity.run_as_group);
  const std::string expvar_arg = expvar_url.empty() ? "" : Quote("--expvar-url=" + expvar_url);
  const std::string dlv_image_text = Quote(dlv_image), agent_image_text = Quote(agent_image);
  const std::string_view non_root = identity.run_as_non_root ? "true" : "false";
  std::string dlv, agent;
  dlv_template.Render({dlv_image_text, target_text, uid, gid, non_root, ""}, &dlv);
  agent_template.Render({agent_image_text, target_text, uid, gid, non_root, expvar_arg}, &agent);

  JsonPatchBuilder b;
  const json* share = Member(*spec, "shareProcessNamespace");
  if (share == nullptr) {
    b.AddText({"spec", "shareProcessNamespace"}, "true");
  } else if (!share->is_boolean() || !share->get<bool>()) {
    b.ReplaceText({"spec", "shareProcessNamespace"}, "true");
  }
  const char* list = c.native_sidecars ? "initContainers" : "containers";
  b.AppendToArrayText(pod, {"spec", list}, std::move(dlv));
  b.AppendToArrayText(pod, {"spec", list}, std::move(agent));
  b.SetInMapText(pod, {"metadata", "labels"}, api::kInjectedLabel, "\"true\"");
  api::InjectionStatus status;
  status.version = version_;
  status.target = target;
  status.dlv_port = dlv_port;
  status.agent_port = c.agent_port;
  status.dlv_user = identity.source;
  b.SetInMapText(pod, {"metadata", "annotations"}, api::kStatusAnnotation, JsonString(status.Text()));
  if (!StringAt(annotations, api::kDefaultContainerAnnotation)) {
    b.SetInMapText(pod, {"metadata", "annotations"}, api::kDefaultContainerAnnotation, target_text);
  }
  if (c.scrape_annotations && !StringAt(annotations, "prometheus.io/scrape") &&
      !StringAt(annotations, "prometheus.io/port") && !StringAt(annotations, "prometheus.io/path")) {
    b.SetInMapText(pod, {"metadata", "annotations"}, "prometheus.io/scrape", "\"true\"");
    b.SetInMapText(pod, {"metadata", "annotations"}, "prometheus.io/port", JsonString(std::to_string(c.agent_port)));
    b.SetInMapText(pod, {"metadata", "annotations"}, "prometheus.io/path", "\"/metrics\"");
  }

  InjectionResult r;
  r.inject = true;
  r.release_key = release_key;
  r.half_open_trial = trial;
  r.message = "injected " + std::string(api::kDlvContainer) + " and " + api::kAgentContainer + " (target container " +
              target + ", dlv-server as uid " + std::to_string(identity.run_as_user) + ": " + identity.source + ")" +
              (trial ? "; a trial pod of the half-open circuit breaker of release " + release_key : "");
  r.patch = b.Text();
  return r;
}

}  // namespace graydebug::webhook
