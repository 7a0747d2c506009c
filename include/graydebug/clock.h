#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace graydebug {

// Time as an interface, so retry, backoff, rate limits, queues and leases are tested by moving a
// fake clock (tests/support/fake_clock.h) instead of sleeping.
class Clock {
 public:
  using Steady = std::chrono::steady_clock::time_point;
  using Wall = std::chrono::system_clock::time_point;
  virtual ~Clock() = default;
  virtual Steady Now() const = 0;
  virtual Wall WallNow() const = 0;
  // Blocks for `d` or until `cv` is notified (with `lock` held on `mu`) and `stop()` is true.
  // Returns true when it stopped early because stop() became true.
  template <class Pred>
  bool SleepFor(std::chrono::nanoseconds d, std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                Pred stop) const {
    return WaitUntil(Now() + d, lock, cv, stop);
  }
  template <class Pred>
  bool WaitUntil(Steady deadline, std::unique_lock<std::mutex>& lock, std::condition_variable& cv, Pred stop) const {
    while (!stop()) {
      if (Now() >= deadline) return false;
      // Real clocks wait for the deadline; fake clocks wake every millisecond to see the new time.
      auto step = IsFake() ? std::chrono::milliseconds(1)
                           : std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Now()) +
                                 std::chrono::milliseconds(1);
      cv.wait_for(lock, step);
    }
    return true;
  }
  virtual bool IsFake() const { return false; }
  // Sleeps the calling thread (a fake clock just moves forward by `d`).
  virtual void Sleep(std::chrono::nanoseconds d) const { std::this_thread::sleep_for(d); }
};

// The process's real clock.
class RealClock final : public Clock {
 public:
  Steady Now() const override { return std::chrono::steady_clock::now(); }
  Wall WallNow() const override { return std::chrono::system_clock::now(); }
  static const RealClock& Get() {
    static RealClock clock;
    return clock;
  }
};

}  // namespace graydebug
