#include "graydebug/circuit_breaker.h"

#include "graydebug/backoff.h"

#include <algorithm>

namespace graydebug {
namespace {

using json = nlohmann::json;

int64_t Ms(Clock::Wall t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
// Times read back from the shared state are clamped to [epoch, year 2096]: a Wall counts
// nanoseconds in an int64_t, so a larger millisecond count would overflow in the conversion.
Clock::Wall FromMs(int64_t ms) {
  constexpr int64_t kMaxMs = 4'000'000'000'000;
  return Clock::Wall(std::chrono::milliseconds(std::clamp<int64_t>(ms, 0, kMaxMs)));
}

}  // namespace

const char* BreakerStateName(BreakerState s) {
  switch (s) {
    case BreakerState::kClosed: return "closed";
    case BreakerState::kHalfOpen: return "half-open";
    case BreakerState::kOpen: return "open";
  }
  return "closed";
}

int CircuitBreaker::failures() const {
  return static_cast<int>(std::count_if(window_.begin(), window_.end(), [](const auto& a) { return !a.second; }));
}

void CircuitBreaker::Prune(Clock::Wall now) {
  while (!window_.empty() && window_.front().first <= now - config_.window) window_.pop_front();
  while (static_cast<int>(window_.size()) > config_.max_window_attempts) window_.pop_front();
}

void CircuitBreaker::Open(Clock::Wall now) {
  state_ = BreakerState::kOpen;
  ++trips_;
  ++consecutive_trips_;
  trial_successes_ = 0;
  // The cool-down doubles with every trip in a row, capped.
  const auto cool = Backoff::Ceiling(config_.cool_down, config_.max_cool_down, consecutive_trips_);
  opened_at_ = now;
  retry_at_ = now + cool;
}

CircuitBreaker::Change CircuitBreaker::Advance(Clock::Wall now) {
  if (state_ == BreakerState::kOpen && now >= retry_at_) {
    state_ = BreakerState::kHalfOpen;
    trial_successes_ = 0;
    return Change::kHalfOpened;
  }
  return Change::kNone;
}

BreakerState CircuitBreaker::State(Clock::Wall now) const {
  if (state_ == BreakerState::kOpen && now >= retry_at_) return BreakerState::kHalfOpen;
  return state_;
}

CircuitBreaker::Change CircuitBreaker::Record(bool success, Clock::Wall now) {
  Change advanced = Advance(now);
  switch (state_) {
    case BreakerState::kOpen:
      // Attempts that were already running when it opened: remembered, not judged.
      window_.emplace_back(now, success);
      Prune(now);
      return advanced;
    case BreakerState::kHalfOpen:
      if (!success) {
        window_.emplace_back(now, success);
        Prune(now);
        Open(now);
        return Change::kOpened;
      }
      if (++trial_successes_ >= config_.half_open_trials) {
        state_ = BreakerState::kClosed;
        window_.clear();
        consecutive_trips_ = 0;
        trial_successes_ = 0;
        return Change::kClosed;
      }
      return advanced;
    case BreakerState::kClosed: break;
  }
  window_.emplace_back(now, success);
  Prune(now);
  int n = attempts(), f = failures();
  if (n >= config_.min_attempts && f >= config_.min_failures &&
      static_cast<double>(f) > config_.failure_ratio * static_cast<double>(n)) {
    Open(now);
    return Change::kOpened;
  }
  return Change::kNone;
}

json CircuitBreaker::ToJson() const {
  json w = json::array();
  for (const auto& [t, ok] : window_) w.push_back({Ms(t), ok ? 1 : 0});
  return {{"state", BreakerStateName(state_)},
          {"openedAt", Ms(opened_at_)},
          {"retryAt", Ms(retry_at_)},
          {"trips", trips_},
          {"consecutiveTrips", consecutive_trips_},
          {"trialSuccesses", trial_successes_},
          {"window", std::move(w)}};
}

std::optional<CircuitBreaker> CircuitBreaker::FromJson(const json& j, BreakerConfig config) {
  if (!j.is_object()) return std::nullopt;
  CircuitBreaker b(config);
  // Any writer of the ConfigMap may have left anything here: read by type (json::value() throws
  // on a member of another type).
  auto st = j.find("state");
  const std::string state = st != j.end() && st->is_string() ? st->get<std::string>() : "";
  if (state == "closed") {
    b.state_ = BreakerState::kClosed;
  } else if (state == "open") {
    b.state_ = BreakerState::kOpen;
  } else if (state == "half-open") {
    b.state_ = BreakerState::kHalfOpen;
  } else {
    return std::nullopt;
  }
  auto num = [&](const char* key) -> int64_t {
    auto it = j.find(key);
    return it != j.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
  };
  b.opened_at_ = FromMs(num("openedAt"));
  b.retry_at_ = FromMs(num("retryAt"));
  b.trips_ = static_cast<int>(std::clamp<int64_t>(num("trips"), 0, 1 << 30));
  b.consecutive_trips_ = static_cast<int>(std::clamp<int64_t>(num("consecutiveTrips"), 0, 1 << 20));
  b.trial_successes_ = static_cast<int>(std::clamp<int64_t>(num("trialSuccesses"), 0, 1 << 20));
  if (auto w = j.find("window"); w != j.end() && w->is_array()) {
    for (const json& e : *w) {
      if (!e.is_array() || e.size() != 2 || !e[0].is_number_integer() || !e[1].is_number_integer()) continue;
      b.window_.emplace_back(FromMs(e[0].get<int64_t>()), e[1].get<int64_t>() != 0);
    }
    while (static_cast<int>(b.window_.size()) > config.max_window_attempts) b.window_.pop_front();
  }
  return b;
}

}  // namespace graydebug
