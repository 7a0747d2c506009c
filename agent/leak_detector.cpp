#include "agent/leak_detector.h"

#include <algorithm>
#include <cmath>

namespace graydebug::agent {
namespace {

// A slope needs a few points, and a window at least half full: a few seconds of a Go heap are
// mostly its GC sawtooth.
constexpr std::size_t kMinWindowSamples = 3;

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace

LeakDetector::LeakDetector(LeakDetectorOptions options) : options_(options) {
  options_.baseline_capacity = std::max<std::size_t>(options_.baseline_capacity, 1);
  options_.max_window_samples = std::max(options_.max_window_samples, kMinWindowSamples);
  options_.consecutive = std::max(options_.consecutive, 1);
  baseline_.assign(options_.baseline_capacity, 0.0);
}

void LeakDetector::Reset() {
  window_.clear();
  baseline_next_ = 0;
  baseline_count_ = 0;
  last_learned_.reset();
  above_run_ = 0;
  below_run_ = 0;
  status_ = LeakStatus{};
}

std::optional<double> LeakDetector::Slope() const {
  if (window_.size() < kMinWindowSamples) return std::nullopt;
  const auto span = window_.back().at - window_.front().at;
  if (span * 2 < options_.window || span <= std::chrono::steady_clock::duration::zero()) return std::nullopt;
  // Relative to the first sample, so the sums stay small and exact enough in doubles.
  const TimePoint t0 = window_.front().at;
  const double b0 = static_cast<double>(window_.front().bytes);
  double mean_t = 0, mean_b = 0;
  for (const Sample& s : window_) {
    mean_t += Seconds(s.at - t0);
    mean_b += static_cast<double>(s.bytes) - b0;
  }
  const double n = static_cast<double>(window_.size());
  mean_t /= n;
  mean_b /= n;
  double sxy = 0, sxx = 0;
  for (const Sample& s : window_) {
    const double dt = Seconds(s.at - t0) - mean_t;
    sxy += dt * (static_cast<double>(s.bytes) - b0 - mean_b);
    sxx += dt * dt;
  }
  if (sxx <= 0) return std::nullopt;
  return sxy / sxx;
}

void LeakDetector::ComputeBaseline(double* mean, double* stddev) const {
  *mean = 0;
  *stddev = 0;
  if (baseline_count_ == 0) return;
  for (std::size_t i = 0; i < baseline_count_; ++i) *mean += baseline_[i];
  *mean /= static_cast<double>(baseline_count_);
  double var = 0;
  for (std::size_t i = 0; i < baseline_count_; ++i) var += (baseline_[i] - *mean) * (baseline_[i] - *mean);
  *stddev = std::sqrt(var / static_cast<double>(baseline_count_));
}

void LeakDetector::Learn(TimePoint at, double rate) {
  // One rate per step keeps the ring spanning baseline_window at any sample interval; a tenth of
  // slack so that samples a hair early are not skipped every other time.
  const auto step = options_.baseline_window / static_cast<int64_t>(options_.baseline_capacity);
  if (last_learned_ && (at - *last_learned_) * 10 < step * 9) return;
  last_learned_ = at;
  baseline_[baseline_next_] = rate;
  baseline_next_ = (baseline_next_ + 1) % baseline_.size();
  baseline_count_ = std::min(baseline_count_ + 1, baseline_.size());
}

LeakStatus LeakDetector::Add(TimePoint at, uint64_t bytes) {
  status_.changed = false;
  if (!window_.empty() && at <= window_.back().at) return status_;
  window_.push_back({at, bytes});
  while (window_.size() > options_.max_window_samples || at - window_.front().at > options_.window) {
    window_.pop_front();
  }

  std::optional<double> rate = Slope();
  status_.has_rate = rate.has_value();
  if (!rate) return status_;
  status_.growth_bytes_per_second = *rate;

  ComputeBaseline(&status_.baseline_mean, &status_.baseline_stddev);
  status_.baseline_samples = baseline_count_;
  status_.threshold_bytes_per_second = options_.floor_bytes_per_second;
  if (baseline_count_ >= options_.min_baseline_samples) {
    status_.threshold_bytes_per_second =
        std::max(status_.threshold_bytes_per_second, status_.baseline_mean + options_.sigmas * status_.baseline_stddev);
  }

  const bool anomalous = *rate > status_.threshold_bytes_per_second;
  if (anomalous) {
    ++above_run_;
    below_run_ = 0;
  } else {
    ++below_run_;
    above_run_ = 0;
    Learn(at, std::max(*rate, 0.0));
  }
  if (!status_.leak_suspected && above_run_ >= options_.consecutive) {
    status_.leak_suspected = true;
    status_.changed = true;
  } else if (status_.leak_suspected && below_run_ >= options_.consecutive) {
    status_.leak_suspected = false;
    status_.changed = true;
  }
  return status_;
}

}  // namespace graydebug::agent
