#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "graydebug/circuit_breaker.h"

// ConfigMap graydebug-circuits (SPEC §6): the controller's leader writes one entry per release, the
// webhook replicas and the kubectl plugin read them. One codec for all three.
namespace graydebug::api {

inline constexpr char kCircuitsConfigMap[] = "graydebug-circuits";
// Set on a Deployment the controller paused when its release's breaker opened (pauseRollout).
inline constexpr char kPausedByAnnotation[] = "graydebug.io/paused-by";

// Data keys: "<namespace>/<release>" is stored as "<namespace>.<release>" (ConfigMap keys allow no
// '/'; namespaces hold no '.', so it reverses).
std::string CircuitDataKey(const std::string& release_key);
std::string ReleaseKeyOfCircuitDataKey(const std::string& data_key);

// One entry of the ConfigMap's data.
struct CircuitEntry {
  std::string release_key;                // "<namespace>/<release>"
  std::optional<CircuitBreaker> breaker;  // nullopt: unreadable, and the release counts as closed
  std::string problem;                    // why it is unreadable, one line
};

// The breaker config readers decode with: the writer's window bound is unknown to them, so the
// window is kept as written.
BreakerConfig ReaderBreakerConfig();

// Decodes one entry (`value` should be a string holding CircuitBreaker::ToJson()'s form).
CircuitEntry DecodeCircuit(const std::string& data_key, const nlohmann::json& value, const BreakerConfig& config);
// Every entry of a ConfigMap's `data`, in key order; an empty list when `data` is not an object.
std::vector<CircuitEntry> DecodeCircuits(const nlohmann::json& data, const BreakerConfig& config);

}  // namespace graydebug::api
