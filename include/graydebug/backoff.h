#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <random>

#include "graydebug/clock.h"

namespace graydebug {

// Exponential backoff with full jitter in [d/2, d]: base * 2^(failures-1), capped at `cap`.
class Backoff {
 public:
  Backoff(std::chrono::milliseconds base, std::chrono::milliseconds cap, uint64_t seed = std::random_device{}())
      : base_(base), cap_(cap), rng_(seed) {}
  // The delay before the next try after one more failure.
  std::chrono::milliseconds Next();
  // Forget the failures (after a success).
  void Reset() { failures_ = 0; }
  int failures() const { return failures_; }
  // The un-jittered delay after `failures` failures (>= 1).
  static std::chrono::milliseconds Ceiling(std::chrono::milliseconds base, std::chrono::milliseconds cap, int failures);

 private:
  std::chrono::milliseconds base_, cap_;
  int failures_ = 0;
  std::mt19937_64 rng_;
};

// Client-side rate limit: a token bucket of `burst` tokens refilled at `qps` per second.
// Thread-safe.
class RateLimiter {
 public:
  RateLimiter(double qps, int burst, const Clock& clock);
  // How long the caller must wait before its request may go; the token is taken now.
  // qps <= 0 means unlimited (always zero).
  std::chrono::nanoseconds Reserve();

 private:
  std::mutex mu_;
  double qps_;
  double burst_;
  double tokens_;
  Clock::Steady last_;
  const Clock& clock_;
};

}  // namespace graydebug
