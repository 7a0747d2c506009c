#include "graydebug/backoff.h"

#include <algorithm>

namespace graydebug {

std::chrono::milliseconds Backoff::Ceiling(std::chrono::milliseconds base, std::chrono::milliseconds cap,
                                           int failures) {
  auto d = base;
  for (int i = 1; i < failures && d < cap; ++i) d *= 2;
  return std::min(d, cap);
}

std::chrono::milliseconds Backoff::Next() {
  ++failures_;
  auto ceiling = Ceiling(base_, cap_, failures_);
  std::uniform_int_distribution<int64_t> dist(ceiling.count() / 2, ceiling.count());
  return std::chrono::milliseconds(dist(rng_));
}

RateLimiter::RateLimiter(double qps, int burst, const Clock& clock)
    : qps_(qps), burst_(std::max(1, burst)), tokens_(std::max(1, burst)), last_(clock.Now()), clock_(clock) {}

std::chrono::nanoseconds RateLimiter::Reserve() {
  if (qps_ <= 0) return std::chrono::nanoseconds(0);
  std::lock_guard lock(mu_);
  auto now = clock_.Now();
  double elapsed = std::chrono::duration<double>(now - last_).count();
  last_ = now;
  tokens_ = std::min(burst_, tokens_ + elapsed * qps_);
  tokens_ -= 1;
  if (tokens_ >= 0) return std::chrono::nanoseconds(0);
  return std::chrono::nanoseconds(static_cast<int64_t>(-tokens_ / qps_ * 1e9));
}

}  // namespace graydebug
