#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "graydebug/clock.h"

namespace graydebug::controller {

enum class CircuitState { kClosed, kHalfOpen, kOpen };

// What the breaker of the session's release says (SPEC §6).
struct CircuitView {
  CircuitState state = CircuitState::kClosed;
  Clock::Wall retry_at{};  // when open: when it turns half-open
};

// One attach attempt's outcome, measured by the adapter (GET /probe/dlv on the pod's agent).
struct ProbeResult {
  bool ok = false;
  double latency_seconds = 0;
  std::string error;  // one line when !ok
  // True when the failure is graydebug's own (the controller could not run the probe at all, e.g.
  // the pod has no agent port): such failures do not count against the release's breaker.
  bool own_fault = false;
  // The agent is busy with other probes (HTTP 503 "busy"; also own_fault): the adapter asks again
  // shortly, a few times, before the reconciler sees it.
  bool busy = false;
};

struct ReconcilerConfig {
  std::chrono::milliseconds default_ttl{std::chrono::minutes(15)};
  std::chrono::milliseconds max_ttl{std::chrono::hours(4)};
  std::chrono::milliseconds pending_timeout{std::chrono::minutes(2)};  // pod not found/ready/IP
  std::chrono::milliseconds pending_recheck{std::chrono::seconds(2)};
  std::chrono::milliseconds reprobe_interval{std::chrono::seconds(30)};
  // A healthy Active session's re-probe result is written to its status at most this often.
  std::chrono::milliseconds persist_interval{std::chrono::minutes(5)};
  int max_attach_attempts = 3;
  std::chrono::milliseconds attach_backoff{std::chrono::seconds(1)};  // 1 s, 2 s, ...
  std::string release_label = "version";
  int default_agent_port = 9102;
  int default_dlv_port = 2345;
  // A session in a final phase is deleted this long after status.finishedAt; 0 keeps it forever.
  std::chrono::milliseconds final_session_retention{std::chrono::hours(24)};
};

struct SessionInput {
  nlohmann::json session;            // the DebugSession as cached
  std::vector<nlohmann::json> pods;  // injected pods of the session's namespace (the candidates)
  CircuitView circuit;               // of the release of the resolved pod (closed when unknown)
  std::optional<ProbeResult> probe;  // set when the adapter ran the probe this call asked for
  Clock::Wall now{};
  std::optional<Clock::Wall> last_probe;  // the adapter's memory of its last probe of this session
};

struct Event {
  std::string type;  // "Normal" | "Warning"
  std::string reason;
  std::string message;
};

struct SessionActions {
  // The full new .status (write it when `status_changed`).
  nlohmann::json status;
  bool status_changed = false;
  bool add_finalizer = false;
  bool remove_finalizer = false;  // deletion: clean up, then let the object go
  bool probe = false;             // run the attach probe against probe_target, then reconcile again
  std::string probe_address;      // "<podIP>:<agent port>"
  std::optional<std::chrono::milliseconds> requeue_after;
  std::vector<Event> events;
  // The attempt to record in metrics and the breaker (set when `input.probe` was consumed).
  std::optional<ProbeResult> attempt;
  std::string release;  // "<namespace>/<release>" of the resolved pod, "" when unknown
  // Set when a probe result was consumed: the adapter remembers it for last_probe.
  std::optional<Clock::Wall> probed_at;
  // The debug_session_active series: set while Active, removed otherwise.
  bool active = false;
  // Delete the session: it has been final for longer than final_session_retention.
  bool delete_session = false;
};

// Pure: the DebugSession state machine of SPEC §3-§4. Works from the current state (session,
// pods, breaker, probe result, now), never from the event that caused the call. Final phases
// (Expired, Failed, Rejected, Terminated) never change again.
class SessionReconciler {
 public:
  explicit SessionReconciler(ReconcilerConfig config) : config_(std::move(config)) {}
  SessionActions Reconcile(const SessionInput& input) const;
  const ReconcilerConfig& config() const { return config_; }

 private:
  ReconcilerConfig config_;
};

// The pod the session targets among `pods`: by name, or the newest ready pod matching the
// selector. nullptr when none qualifies.
const nlohmann::json* ResolvePod(const nlohmann::json& session, const std::vector<nlohmann::json>& pods);
// Whether `labels` match a metav1.LabelSelector (matchLabels + matchExpressions).
bool SelectorMatches(const nlohmann::json& selector, const nlohmann::json& labels);

}  // namespace graydebug::controller
