#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "graydebug/clock.h"

// The DebugSession resource (SPEC §4): its group, phases, conditions and the status members that
// the controller writes and the kubectl plugin reads.
namespace graydebug::api {

inline constexpr char kGroup[] = "graydebug.io";
inline constexpr char kVersion[] = "v1alpha1";
inline constexpr char kApiVersion[] = "graydebug.io/v1alpha1";
inline constexpr char kSessionKind[] = "DebugSession";
inline constexpr char kSessionResource[] = "debugsessions";
// The finalizer that lets the controller clear a session's gauge before the object goes.
inline constexpr char kSessionFinalizer[] = "graydebug.io/session-cleanup";

// status.phase. "" (not yet seen by the controller) is the only other value.
namespace phase {
inline constexpr char kPending[] = "Pending";
inline constexpr char kAttaching[] = "Attaching";
inline constexpr char kActive[] = "Active";
inline constexpr char kExpired[] = "Expired";
inline constexpr char kFailed[] = "Failed";
inline constexpr char kRejected[] = "Rejected";
inline constexpr char kTerminated[] = "Terminated";
}  // namespace phase
// Expired, Failed, Rejected and Terminated: nothing changes a session after it reaches one.
bool IsFinalPhase(std::string_view phase);

// status.conditions types (metav1.Condition).
namespace condition {
inline constexpr char kReady[] = "Ready";
inline constexpr char kAttached[] = "Attached";
inline constexpr char kCircuitAllowed[] = "CircuitAllowed";
}  // namespace condition

// Sets condition `type` in status.conditions, keeping lastTransitionTime when its status does not
// change.
void SetCondition(nlohmann::json& status, std::string_view type, bool value, const std::string& reason,
                  const std::string& message, int64_t generation, Clock::Wall now);
// The condition of `type` in status.conditions, or an empty object.
const nlohmann::json& ConditionOf(const nlohmann::json& status, std::string_view type);

// What readers take of a session's status (every member read by type; missing ones are empty).
struct SessionStatus {
  std::string phase;
  std::string pod;      // the resolved pod
  std::string release;  // the release of that pod (without its namespace)
  std::string connect;  // the dlv address a client uses
  std::optional<Clock::Wall> started_at, expires_at, finished_at;
  int64_t attach_attempts = 0;
  std::optional<double> attach_latency_seconds;

  static SessionStatus Of(const nlohmann::json& session);
};

// The object a kubectl user creates: apiVersion, kind and metadata of a DebugSession.
nlohmann::json NewSession(const std::string& namespace_name, const std::string& name, nlohmann::json spec);

}  // namespace graydebug::api
