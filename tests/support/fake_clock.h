#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>

#include "graydebug/clock.h"

namespace graydebug {

// A clock that moves only when a test says so.
class FakeClock final : public Clock {
 public:
  Steady Now() const override {
    std::lock_guard lock(mu_);
    ++reads_;
    return now_;
  }
  // How often Now() was read: a test waits for a poller (a thread in WaitUntil reads the time once
  // per millisecond) to have seen the time it set, instead of sleeping.
  std::uint64_t Reads() const {
    std::lock_guard lock(mu_);
    return reads_;
  }
  Wall WallNow() const override {
    std::lock_guard lock(mu_);
    return wall_;
  }
  void Advance(std::chrono::nanoseconds d) {
    std::lock_guard lock(mu_);
    now_ += std::chrono::duration_cast<Steady::duration>(d);
    wall_ += std::chrono::duration_cast<Wall::duration>(d);
  }
  bool IsFake() const override { return true; }
  void Sleep(std::chrono::nanoseconds d) const override { const_cast<FakeClock*>(this)->Advance(d); }

 private:
  mutable std::mutex mu_;
  mutable std::uint64_t reads_ = 0;
  Steady now_{std::chrono::hours(1000)};
  Wall wall_{std::chrono::seconds(1'800'000'000)};
};

}  // namespace graydebug
