#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// The pod contract (SPEC §2): what the webhook writes into a gray pod and what the controller, the
// agent and the kubectl plugin read back. Every binary takes these names from here.
namespace graydebug::api {

// Containers and ports the webhook injects.
inline constexpr char kDlvContainer[] = "dlv-server";
inline constexpr char kAgentContainer[] = "graydebug-agent";
inline constexpr char kAgentPortName[] = "gd-agent";

// Labels and annotations.
inline constexpr char kInjectedLabel[] = "graydebug.io/injected";
inline constexpr char kInjectedSelector[] = "graydebug.io/injected=true";
inline constexpr char kStatusAnnotation[] = "graydebug.io/status";
inline constexpr char kOptOutAnnotation[] = "graydebug.io/inject";
inline constexpr char kTargetAnnotation[] = "graydebug.io/target-container";
inline constexpr char kDlvImageAnnotation[] = "graydebug.io/dlv-image";
inline constexpr char kAgentImageAnnotation[] = "graydebug.io/agent-image";
inline constexpr char kDlvPortAnnotation[] = "graydebug.io/dlv-port";
inline constexpr char kExpvarUrlAnnotation[] = "graydebug.io/expvar-url";
inline constexpr char kDefaultContainerAnnotation[] = "kubectl.kubernetes.io/default-container";

// The value of annotation graydebug.io/status on an injected pod (JSON).
struct InjectionStatus {
  std::vector<std::string> containers = {std::string(kDlvContainer), std::string(kAgentContainer)};
  std::string version;   // the webhook's version
  std::string target;    // the container dlv-server attaches to
  int dlv_port = 0;      // dlv's loopback port
  int agent_port = 0;    // the agent's HTTP port (/metrics, /probe/dlv)
  std::string dlv_user;  // how dlv-server's identity was chosen ("target-uid", "root-ptrace", ...)

  nlohmann::json ToJson() const;
  // ToJson().dump(), written without the tree (the webhook writes it for every injected pod).
  std::string Text() const;
  // The annotation of `pod`; nullopt when it is missing or not a JSON object. Members of another
  // type read as absent (0 or ""); a port outside 1..65535 reads as 0.
  static std::optional<InjectionStatus> OfPod(const nlohmann::json& pod);
};

// The dlv port of a pod: dlvPort of its status annotation, else `fallback`.
int DlvPortOf(const nlohmann::json& pod, int fallback);
// The port of the pod's agent container (its port named gd-agent, else its first port); 0 if none.
int AgentPortOf(const nlohmann::json& pod);

// The release a pod belongs to: the value of `release_label`, else the name of its controller
// owner (the first ownerReference with controller: true, else the first one), else "".
std::string ReleaseOf(const nlohmann::json& pod, const std::string& release_label);
// "<namespace>/<release>", the key of a release's breaker; "" when `release` is "".
std::string ReleaseKey(const std::string& namespace_name, const std::string& release);
// The namespace and release of a release key ("" and the key when it has no '/').
std::pair<std::string, std::string> SplitReleaseKey(const std::string& release_key);

}  // namespace graydebug::api
