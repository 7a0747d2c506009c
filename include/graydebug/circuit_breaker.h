#pragma once

#include <chrono>
#include <deque>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "graydebug/clock.h"

namespace graydebug {

// SPEC §6: the numbers of the per-release circuit breaker.
struct BreakerConfig {
  std::chrono::milliseconds window{std::chrono::minutes(10)};
  int max_window_attempts = 200;
  int min_attempts = 20;
  int min_failures = 2;
  double failure_ratio = 0.05;  // trips when failures / attempts is strictly greater
  std::chrono::milliseconds cool_down{std::chrono::seconds(60)};
  std::chrono::milliseconds max_cool_down{std::chrono::minutes(10)};
  int half_open_trials = 5;
  bool pause_rollout = false;  // set spec.paused on the owning Deployment when a breaker opens
};

enum class BreakerState { kClosed = 0, kHalfOpen = 1, kOpen = 2 };  // the values of graydebug_circuit_state
const char* BreakerStateName(BreakerState s);                       // "closed", "half-open", "open"

// One release's breaker (pure; time is passed in, wall clock so the state can be shared through
// the cluster). Closed: a sliding window of attempts (window duration, at most
// max_window_attempts); it trips when attempts >= min_attempts AND failures >= min_failures AND
// failures/attempts > failure_ratio. Open: everything is refused until the cool-down passes
// (cool_down, doubling with every trip in a row, capped). Half-open: attempts are let through as
// trials; any failure reopens, half_open_trials successes close it and clear the window.
class CircuitBreaker {
 public:
  explicit CircuitBreaker(BreakerConfig config) : config_(config) {}

  enum class Change { kNone, kOpened, kHalfOpened, kClosed };
  // Records one attach outcome. Returns what changed (kOpened: this attempt tripped it).
  Change Record(bool success, Clock::Wall now);
  // Moves open -> half-open when the cool-down has passed; returns kHalfOpened when it did.
  Change Advance(Clock::Wall now);
  // The state at `now` (an open breaker whose cool-down passed reads as half-open).
  BreakerState State(Clock::Wall now) const;
  // The state as recorded, without the clock (an open breaker stays open past its cool-down).
  BreakerState stored_state() const { return state_; }
  // When an open breaker turns half-open.
  Clock::Wall RetryAt() const { return retry_at_; }
  int attempts() const { return static_cast<int>(window_.size()); }
  int failures() const;
  int trips() const { return trips_; }  // total trips, for graydebug_circuit_trips_total
  int consecutive_trips() const { return consecutive_trips_; }
  int trial_successes() const { return trial_successes_; }

  // The shared form (ConfigMap graydebug-circuits): state, times, trips and the window.
  nlohmann::json ToJson() const;
  // Reads ToJson's form; nullopt when it is malformed (then the release starts closed).
  static std::optional<CircuitBreaker> FromJson(const nlohmann::json& j, BreakerConfig config);

 private:
  void Prune(Clock::Wall now);
  void Open(Clock::Wall now);

  BreakerConfig config_;
  BreakerState state_ = BreakerState::kClosed;
  std::deque<std::pair<Clock::Wall, bool>> window_;  // (when, success)
  Clock::Wall opened_at_{}, retry_at_{};
  int trips_ = 0, consecutive_trips_ = 0, trial_successes_ = 0;
};

}  // namespace graydebug
