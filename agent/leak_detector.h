#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

namespace graydebug::agent {

struct LeakDetectorOptions {
  // The growth rate is the least-squares slope of the samples of the last `window`.
  std::chrono::milliseconds window{std::chrono::seconds(60)};
  // How far back the baseline of past growth rates reaches. It holds `baseline_capacity` rates,
  // one at most every baseline_window / baseline_capacity, so its memory is fixed whatever the
  // sample interval.
  std::chrono::milliseconds baseline_window{std::chrono::minutes(30)};
  std::size_t baseline_capacity = 360;
  // Below this many baseline rates only the floor applies.
  std::size_t min_baseline_samples = 10;
  // "Anomalous" means above baseline mean + sigmas * standard deviation (seed chapter 4.2) ...
  double sigmas = 3.0;
  // ... and above this absolute rate, so a flat app whose deviation is tiny never alarms.
  double floor_bytes_per_second = 64.0 * 1024;
  // Consecutive anomalous samples that raise the suspicion, and normal ones that clear it.
  int consecutive = 3;
  // A hard cap on the samples kept for the slope (a tiny interval with a long window).
  std::size_t max_window_samples = 4096;
};

struct LeakStatus {
  bool has_rate = false;  // the window holds enough samples for a slope
  double growth_bytes_per_second = 0;
  double threshold_bytes_per_second = 0;  // what the rate is compared with
  std::size_t baseline_samples = 0;
  double baseline_mean = 0;
  double baseline_stddev = 0;
  bool leak_suspected = false;
  bool changed = false;  // leak_suspected flipped on this sample
};

// Decides from a series of (time, bytes) samples of one process's memory whether it leaks: the
// growth rate over a sliding window against a baseline of its own past rates, with hysteresis.
// Pure: no clock, no I/O, no threads (the caller passes the time and serialises calls).
//
// What it sees is what it is fed: a Go heap (HeapInuse) also counts garbage not yet collected, so
// a service whose GC cycle is longer than the window shows its allocation rate as growth until the
// next collection. The floor and a window longer than the GC period keep that from alarming.
//
// The baseline learns only from rates that were not anomalous, so a leak that goes on never
// becomes its own baseline, and it learns shrinking as zero growth: one big release (a cache
// flush, a forced GC) would otherwise widen the deviation for the whole baseline window and hide
// the next leak.
class LeakDetector {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  explicit LeakDetector(LeakDetectorOptions options = {});

  // Adds one sample and returns the verdict after it. A sample not later than the previous one
  // is ignored (the previous verdict is returned, with changed = false).
  LeakStatus Add(TimePoint at, uint64_t bytes);

  // Forgets the window, the baseline and the verdict: the series now measures something else
  // (the target restarted, or the memory source changed).
  void Reset();

  const LeakStatus& status() const { return status_; }
  const LeakDetectorOptions& options() const { return options_; }
  // For tests of the memory bound.
  std::size_t window_size() const { return window_.size(); }
  std::size_t baseline_size() const { return baseline_count_; }

 private:
  struct Sample {
    TimePoint at;
    uint64_t bytes;
  };
  std::optional<double> Slope() const;
  void ComputeBaseline(double* mean, double* stddev) const;
  void Learn(TimePoint at, double rate);

  LeakDetectorOptions options_;
  std::deque<Sample> window_;
  std::vector<double> baseline_;  // a ring of baseline_capacity rates
  std::size_t baseline_next_ = 0;
  std::size_t baseline_count_ = 0;
  std::optional<TimePoint> last_learned_;
  int above_run_ = 0;
  int below_run_ = 0;
  LeakStatus status_;
};

}  // namespace graydebug::agent
