#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "graydebug/api/pod.h"
#include "webhook/injection_config.h"

namespace graydebug::webhook {

// What a release's breaker allows for one new pod (SPEC §6).
enum class BreakerGate {
  kClosed,         // inject
  kOpen,           // skip: circuit-open
  kHalfOpenTrial,  // inject: one of the half-open period's trial pods
  kHalfOpenFull,   // skip: circuit-open (this replica injected its trial pods of the period)
};

// The breaker state input of the webhook (SPEC §6). Implementations: a standalone one that says
// "closed", and the cluster one that reads ConfigMap graydebug-circuits. Thread-safe.
class BreakerView {
 public:
  virtual ~BreakerView() = default;
  // What the breaker of release "<namespace>/<release>" allows for one new pod. A half-open breaker
  // admits at most `half_open_injections` pods per half-open period (per webhook replica), so the
  // controller has injected pods for its trial sessions even when the release's pods were all
  // replaced while it was open. `consume` false (a dry run) answers without using a trial.
  virtual BreakerGate Admit(const std::string& release_key, int half_open_injections, bool consume) = 0;
};

struct InjectionContext {
  std::string operation = "CREATE";  // the AdmissionRequest's operation
  std::string namespace_name;        // the request's namespace (a new pod may not carry one)
  std::string pod_security_enforce;  // the namespace's pod-security.kubernetes.io/enforce, "" if unknown
  BreakerView* breakers = nullptr;   // nullptr: every circuit counts as closed
  bool dry_run = false;              // the request's dryRun: decides as usual, uses no half-open trial
};

struct InjectionResult {
  bool inject = false;
  // Skip reason from SPEC §2 ("not-selected", "opted-out", ...), "" when injecting.
  std::string reason;
  // One line for logs and the admission response's audit annotation.
  std::string message;
  // "<namespace>/<release>" of the pod, "" when the pod has neither the release label nor an owner.
  std::string release_key;
  // RFC 6902 ops as JSON text (an array; "" when skipping), in the bytes nlohmann's dump of the
  // same ops gives. PatchJson() parses it (for tests and tools).
  std::string patch;
  nlohmann::json PatchJson() const { return patch.empty() ? nlohmann::json::array() : nlohmann::json::parse(patch); }
  // Injected as a trial pod of a half-open breaker.
  bool half_open_trial = false;
};

// The user and group dlv-server runs as, from the target container's securityContext, else the
// pod's (see docs/webhook.md, "dlv-server's identity").
struct DlvIdentity {
  int64_t run_as_user = 0;
  int64_t run_as_group = 0;
  bool run_as_non_root = false;
  // One line for the status annotation and logs: "target-uid" (the target's uid and gid are
  // known), "root-ptrace" (unknown: root with only CAP_SYS_PTRACE), "non-root-fallback" (unknown,
  // but the pod demands runAsNonRoot).
  std::string source;
};
DlvIdentity DlvIdentityFor(const nlohmann::json& pod, const std::string& target, int64_t fallback_uid,
                           int64_t fallback_gid);

// A JSON value dumped once with holes: each string "\x01" + digit in the value marks a hole that
// Render fills with JSON text. Hole kElementHole stands as an array element: an empty fill drops it
// (and its comma). What the injector writes per pod without building or dumping a tree.
class JsonTemplate {
 public:
  static constexpr int kHoles = 6;
  static constexpr int kElementHole = kHoles - 1;
  static std::string Hole(int id) { return std::string("\x01") + static_cast<char>('0' + id); }

  JsonTemplate() = default;
  explicit JsonTemplate(const nlohmann::json& value);
  void Render(const std::string_view (&fill)[kHoles], std::string* out) const;

 private:
  std::vector<std::string> parts_;  // text between the holes: one more than holes_
  std::vector<int> holes_;
};

// Pure: pod JSON + config + context -> decision and patch. Never throws on any JSON input (a
// value of the wrong type counts as absent). Idempotent: a pod it injected is skipped with
// "already-injected".
class SidecarInjector {
 public:
  SidecarInjector(InjectionConfig config, std::string version);

  InjectionResult Inject(const nlohmann::json& pod, const InjectionContext& ctx) const;

  const InjectionConfig& config() const { return config_; }

 private:
  InjectionConfig config_;
  std::string version_;
  JsonTemplate dlv_template_, agent_template_;  // rendered once for the default port
};

}  // namespace graydebug::webhook
