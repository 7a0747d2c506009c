#pragma once

#include <chrono>
#include <mutex>

#include "graydebug/clock.h"

namespace graydebug {

// A clock that moves only when a test says so.
class FakeClock final : public Clock {
 public:
  Steady Now() const override {
    std::lock_guard lock(mu_);
    return now_;
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
  Steady now_{std::chrono::hours(1000)};
  Wall wall_{std::chrono::seconds(1'800'000'000)};
};

}  // namespace graydebug
