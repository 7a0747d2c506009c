#pragma once
// The pure part of kubectl-graydebug (SPEC §7): argument → target, the DebugSession object, session
// names, progress lines, tables and the VS Code snippet. No I/O, no clock, no randomness of its
// own: cli/commands.cpp feeds it API objects, the time and random numbers.
#include <chrono>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "graydebug/clock.h"

namespace graydebug::cli {

inline constexpr int kDefaultDlvPort = 2345;
inline constexpr std::size_t kMaxSessionName = 63;

struct SelectorResult {
  nlohmann::json selector;  // {"matchLabels": {...}} and/or {"matchExpressions": [...]}
  std::string error;
};

// What `attach` points at: a pod by name, or a Deployment whose selector picks the pod.
struct Target {
  enum class Kind { kPod, kDeployment, kSelector };
  Kind kind = Kind::kPod;
  std::string name;
};

struct TargetResult {
  std::optional<Target> target;
  std::string error;  // one line, when !target
};

// Reads `NAME`, `pod/NAME` (also `po/`, `pods/`) or `deploy/NAME` (also `deployment/`,
// `deployments/`, `deployment.apps/`, `deployments.apps/`). The name must be a DNS-1123 subdomain;
// anything else (other kinds, empty names, more slashes, control characters) is an error.
TargetResult ParseTarget(std::string_view arg);

// A bash or zsh completion script for kubectl-graydebug (commands, flags, session names through
// `kubectl graydebug list`). `shell` is "bash" or "zsh".
std::string CompletionScript(const std::string& shell);

// Reads a kubectl-style label selector ("app=order,version!=v1,tier,!canary"; "==" like "=")
// into a metav1.LabelSelector: matchLabels for equalities, matchExpressions (NotIn, Exists,
// DoesNotExist) for the rest. Set-based syntax ("in (a,b)") is refused with a clear error.
SelectorResult ParseLabelSelector(std::string_view text);

// DNS-1123 label: [a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63 characters.
bool IsDns1123Label(std::string_view s);
// DNS-1123 subdomain: dot-separated labels, at most 253 characters (object names).
bool IsDns1123Subdomain(std::string_view s);

// "<base>-<5 random characters>": a DNS-1123 label of at most 63 characters. `base` is lowercased,
// every character outside [a-z0-9-] becomes '-', and it is cut so the suffix fits ("session" when
// nothing is left). `random` supplies the randomness (one call per suffix character).
std::string SessionName(std::string_view base, const std::function<uint32_t()>& random);

// The label selector of a Deployment (spec.selector's matchLabels and matchExpressions), or an
// error when it has none (a Deployment without a selector is invalid, but the input is untrusted).
SelectorResult DeploymentSelector(const nlohmann::json& deployment);

struct SessionRequest {
  std::string name;
  std::string namespace_;
  Target target;
  nlohmann::json selector;  // for a Deployment target (from DeploymentSelector)
  std::chrono::milliseconds ttl{std::chrono::minutes(15)};
  std::string reason;  // omitted when empty
};
// The DebugSession (graydebug.io/v1alpha1) to create: spec.target.pod or spec.target.selector,
// spec.ttl ("15m"), spec.reason. spec.requestedBy is left to the webhook.
nlohmann::json BuildSession(const SessionRequest& request);

// Where a session stands while `attach` waits.
enum class Outcome { kWaiting, kActive, kFailed, kEnded };
// kActive for Active; kFailed for Failed and Rejected; kEnded for Expired and Terminated (final
// before it was ever Active); kWaiting otherwise (no status yet, Pending, Attaching).
Outcome SessionOutcome(const nlohmann::json& session);

// One progress line for the session's current state, e.g. "Pending: PodNotFound: no injected pod
// x in namespace shop", "Attaching…", "Active: attached in 12ms". `attach` prints it whenever it
// changes. Never empty.
std::string ProgressLine(const nlohmann::json& session);

// Why a session ended without becoming Active, one line: "Failed: AttachFailed: <error> (3
// attempts)" or "Rejected: CircuitOpen: <message>".
std::string FailureLine(const nlohmann::json& session);

// The dlv port of a pod: `dlvPort` in its graydebug.io/status annotation, else `fallback`.
int DlvPortOfPod(const nlohmann::json& pod, int fallback = kDefaultDlvPort);

// The VS Code launch.json configuration for dlv behind a local port-forward.
nlohmann::json LaunchJson(const std::string& session, int local_port);

// What `attach` prints once the session is Active (stdout): who/where, latency, expiry, the
// controller's `status.connect` line and the launch.json snippet.
std::string ActiveSummary(const nlohmann::json& session, int local_port, Clock::Wall now);

// The argv of the port-forward child: `<kubectl> port-forward -n NS pod/POD LOCAL:REMOTE
// --address 127.0.0.1 [--kubeconfig=…] [--context=…]`.
struct PortForward {
  std::string kubectl;
  std::string namespace_;
  std::string pod;
  int local_port = kDefaultDlvPort;
  int remote_port = kDefaultDlvPort;
  std::string kubeconfig;  // passed through only when the user gave --kubeconfig
  std::string context;     // likewise --context
};
std::vector<std::string> PortForwardArgs(const PortForward& pf);

// kubectl's human durations (k8s.io/apimachinery duration.HumanDuration): "45s", "2m30s", "15m",
// "3h20m", "2d4h". Negative beyond -1 s: "<invalid>".
std::string HumanDuration(std::chrono::seconds d);

// Makes an untrusted value printable on one line: control characters become spaces, and it is
// cut to `max` bytes (on a UTF-8 boundary) with "…".
std::string OneLine(std::string_view s, std::size_t max = 512);

// A kubectl-style table: columns left-aligned, three spaces apart, widths in UTF-8 characters,
// no trailing spaces, every cell made one-line. Blank cells print as "<none>".
std::string FormatTable(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);

// `list`: NAME, PHASE, POD, RELEASE, LATENCY, EXPIRES, AGE (NAMESPACE first when
// `all_namespaces`), sorted by namespace and name. Items that are not objects are skipped.
std::string SessionTable(const nlohmann::json& list, bool all_namespaces, Clock::Wall now);

// `status`: the breakers in ConfigMap graydebug-circuits (data key "<namespace>.<release>", value
// the breaker's JSON: state, retryAt, trips, window [[ms, 1 ok | 0 failure], ...]).
struct BreakerRow {
  std::string release;  // "<namespace>/<release>"
  std::string state;    // closed | open | half-open | "unreadable"
  int attempts = 0;     // window entries
  int failures = 0;
  int64_t trips = 0;
  std::optional<Clock::Wall> retry_at;  // when open (or half-open after a trip) and set
  std::string problem;                  // why the entry is unreadable
};
std::vector<BreakerRow> BreakerRows(const nlohmann::json& configmap);
// RELEASE, STATE, ATTEMPTS, FAILURES, TRIPS, RETRY AT; "" when there are no rows.
std::string BreakerTable(const std::vector<BreakerRow>& rows, Clock::Wall now);
// The same rows as JSON ({"<namespace>/<release>": {state, attempts, failures, trips, retryAt}}),
// for -o json/yaml.
nlohmann::json BreakerJson(const std::vector<BreakerRow>& rows);

// YAML for -o yaml (block style; strings that YAML would read as another type are quoted).
std::string ToYaml(const nlohmann::json& value);

}  // namespace graydebug::cli
