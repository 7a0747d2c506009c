#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "webhook/injection_config.h"

namespace graydebug::webhook {

// Well-known names (SPEC §2).
inline constexpr const char* kDlvContainer = "dlv-server";
inline constexpr const char* kAgentContainer = "graydebug-agent";
inline constexpr const char* kInjectedLabel = "graydebug.io/injected";
inline constexpr const char* kStatusAnnotation = "graydebug.io/status";
inline constexpr const char* kOptOutAnnotation = "graydebug.io/inject";
inline constexpr const char* kTargetAnnotation = "graydebug.io/target-container";
inline constexpr const char* kDlvImageAnnotation = "graydebug.io/dlv-image";
inline constexpr const char* kAgentImageAnnotation = "graydebug.io/agent-image";
inline constexpr const char* kDlvPortAnnotation = "graydebug.io/dlv-port";
inline constexpr const char* kDefaultContainerAnnotation = "kubectl.kubernetes.io/default-container";

// The breaker state input of the webhook (SPEC §6). Implementations: a standalone one that says
// "closed", and the cluster one that reads ConfigMap graydebug-circuits.
class BreakerView {
 public:
  virtual ~BreakerView() = default;
  // True when the circuit of release "<namespace>/<release>" is open (or half-open: trials come from
  // sessions on existing pods, not from new pods).
  virtual bool IsOpen(const std::string& release_key) const = 0;
};

struct InjectionContext {
  std::string operation = "CREATE";       // the AdmissionRequest's operation
  std::string namespace_name;             // the request's namespace (a new pod may not carry one)
  std::string pod_security_enforce;       // the namespace's pod-security.kubernetes.io/enforce, "" if unknown
  const BreakerView* breakers = nullptr;  // nullptr: every circuit counts as closed
};

struct InjectionResult {
  bool inject = false;
  // Skip reason from SPEC §2 ("not-selected", "opted-out", ...), "" when injecting.
  std::string reason;
  // One line for logs and the admission response's audit annotation.
  std::string message;
  // "<namespace>/<release>" of the pod, "" when the pod has neither the release label nor an owner.
  std::string release_key;
  // RFC 6902 ops (an array; empty when skipping).
  nlohmann::json patch = nlohmann::json::array();
};

// The release a pod belongs to: the value of `release_label`, else the name of its controller owner
// (the first ownerReference with controller: true, else the first one), else "".
std::string ReleaseOf(const nlohmann::json& pod, const std::string& release_label);

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
  nlohmann::json dlv_template_, agent_template_;  // built once for the default port
};

}  // namespace graydebug::webhook
