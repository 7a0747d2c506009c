#include "agent/leak_detector.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <vector>

using graydebug::agent::LeakDetector;
using graydebug::agent::LeakDetectorOptions;
using graydebug::agent::LeakStatus;
using namespace std::chrono_literals;

namespace {

constexpr double kKiB = 1024;
constexpr double kMiB = 1024 * 1024;
const LeakDetector::TimePoint kStart{std::chrono::hours(1000)};

// Feeds samples every `interval`, the i-th one of `bytes(i)`, and keeps every verdict.
struct Feed {
  LeakDetector& detector;
  std::chrono::milliseconds interval{5000};
  int next = 0;

  template <class F>
  std::vector<LeakStatus> Run(int count, F bytes) {
    std::vector<LeakStatus> out;
    for (int i = 0; i < count; ++i, ++next) {
      out.push_back(detector.Add(kStart + interval * next, static_cast<uint64_t>(bytes(next))));
    }
    return out;
  }
};

int CountSuspected(const std::vector<LeakStatus>& verdicts) {
  int n = 0;
  for (const auto& v : verdicts) n += v.leak_suspected ? 1 : 0;
  return n;
}

// The index of the first verdict that is suspected (or not, with `want` false); -1 when none.
int FirstWith(const std::vector<LeakStatus>& verdicts, bool want) {
  for (std::size_t i = 0; i < verdicts.size(); ++i) {
    if (verdicts[i].leak_suspected == want) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace

TEST_CASE("leak detector: a flat series never alarms, and its rate is zero") {
  LeakDetector d;
  Feed feed{d};
  auto verdicts = feed.Run(2000, [](int) { return 100 * kMiB; });
  CHECK(CountSuspected(verdicts) == 0);
  CHECK(verdicts.back().has_rate);
  CHECK(verdicts.back().growth_bytes_per_second == doctest::Approx(0.0));
  CHECK(verdicts.back().baseline_samples >= 10);
}

TEST_CASE("leak detector: no rate until the window is half full") {
  LeakDetector d;  // 60 s window
  Feed feed{d};
  auto verdicts = feed.Run(8, [](int i) { return 100 * kMiB + i * 5 * kMiB; });
  for (int i = 0; i < 6; ++i) CHECK_FALSE(verdicts[static_cast<std::size_t>(i)].has_rate);  // spans 0..25 s
  CHECK(verdicts[6].has_rate);                                                              // spans 30 s
  CHECK(verdicts[6].growth_bytes_per_second == doctest::Approx(kMiB));
}

TEST_CASE("leak detector: a steady leak is suspected within N samples of the first rate") {
  LeakDetectorOptions o;
  o.consecutive = 3;
  LeakDetector d(o);
  Feed feed{d};
  auto verdicts = feed.Run(40, [](int i) { return 50 * kMiB + i * 5 * 256 * kKiB; });  // 256 KiB/s
  int first_rate = -1;
  for (std::size_t i = 0; i < verdicts.size() && first_rate < 0; ++i) {
    if (verdicts[i].has_rate) first_rate = static_cast<int>(i);
  }
  REQUIRE(first_rate >= 0);
  int suspected = FirstWith(verdicts, true);
  CHECK(suspected == first_rate + 2);  // the third anomalous sample
  CHECK(verdicts[static_cast<std::size_t>(suspected)].changed);
  CHECK(verdicts[static_cast<std::size_t>(suspected)].growth_bytes_per_second == doctest::Approx(256 * kKiB));
  CHECK(CountSuspected(verdicts) == static_cast<int>(verdicts.size()) - suspected);  // and it stays
}

TEST_CASE("leak detector: a leak after a flat hour is caught, stays flagged while it lasts, clears after it stops") {
  LeakDetector d;
  Feed feed{d};
  double bytes = 80 * kMiB;
  CHECK(CountSuspected(feed.Run(720, [&](int) { return bytes; })) == 0);

  // 200 KiB/s for an hour: the baseline must not learn the leak as normal.
  auto leaking = feed.Run(720, [&](int) { return bytes += 5 * 200 * kKiB; });
  int caught = FirstWith(leaking, true);
  REQUIRE(caught >= 0);
  CHECK(caught <= 12 / 2 + 3);  // at most half a window plus N samples
  CHECK(CountSuspected(leaking) == static_cast<int>(leaking.size()) - caught);
  CHECK(leaking.back().growth_bytes_per_second == doctest::Approx(200 * kKiB));

  // The leak stops: the retained memory stays (that is what a leak looks like) but stops growing.
  auto after = feed.Run(60, [&](int) { return bytes; });
  int cleared = FirstWith(after, false);
  REQUIRE(cleared >= 0);
  CHECK(cleared <= 12 + 3);  // a window plus N samples
  CHECK(after[static_cast<std::size_t>(cleared)].changed);
  CHECK(CountSuspected(after) == cleared);
  int flips = 0;
  for (const auto& v : after) flips += v.changed ? 1 : 0;
  CHECK(flips == 1);

  // ... and a second leak is caught as quickly as the first.
  auto again = feed.Run(30, [&](int) { return bytes += 5 * 200 * kKiB; });
  int caught_again = FirstWith(again, true);
  REQUIRE(caught_again >= 0);
  CHECK(caught_again <= 12 / 2 + 3);
}

TEST_CASE("leak detector: hysteresis — one normal sample among anomalous ones neither raises nor clears") {
  LeakDetectorOptions o;
  o.window = 10s;  // three samples at 5 s: the slope is (b[i] - b[i-2]) / 10 s
  LeakDetector d(o);
  Feed feed{d};
  std::vector<double> b = {0, 0};
  // Rates by sample: two anomalous, one normal, two anomalous: never three in a row.
  std::vector<double> rates = {0, 0, 0, 1 * kMiB, 1 * kMiB, 0, 1 * kMiB, 1 * kMiB, 0};
  for (std::size_t i = 2; i < rates.size(); ++i) b.push_back(b[i - 2] + 10 * rates[i]);
  auto verdicts =
      feed.Run(static_cast<int>(b.size()), [&](int i) { return 100 * kMiB + b[static_cast<std::size_t>(i)]; });
  CHECK(CountSuspected(verdicts) == 0);
}

TEST_CASE("leak detector: noisy flat series and a GC sawtooth raise no false alarm") {
  SUBCASE("uniform jitter of +-1 MiB every sample for six hours") {
    LeakDetector d;
    Feed feed{d};
    std::mt19937 rng(42);
    std::uniform_real_distribution<double> jitter(-kMiB, kMiB);
    auto verdicts = feed.Run(6 * 720, [&](int) { return 200 * kMiB + jitter(rng); });
    CHECK(CountSuspected(verdicts) == 0);
  }
  SUBCASE("a heap that grows 4 MiB and is collected every 20 s") {
    LeakDetector d;
    Feed feed{d};
    auto verdicts = feed.Run(6 * 720, [](int i) { return 60 * kMiB + (i % 4) * kMiB * 4 / 3; });
    CHECK(CountSuspected(verdicts) == 0);
  }
}

TEST_CASE("leak detector: above the floor but within baseline mean + 3 sigma is normal; far above is a leak") {
  LeakDetectorOptions o;
  o.window = 10s;  // three samples at 5 s: the slope is (b[i] - b[i-2]) / 10 s
  LeakDetector d(o);
  Feed feed{d};
  // Learned rates cycle 0, 20, 40, 60 KiB/s (all under the 64 KiB/s floor): mean 30, sigma ~22.4,
  // so the threshold is ~97 KiB/s.
  std::vector<double> b = {0, 0};
  auto rate_at = [](std::size_t i) { return static_cast<double>(i % 4) * 20 * kKiB; };
  for (std::size_t i = 2; i < 200; ++i) b.push_back(b[i - 2] + 10 * rate_at(i));
  auto warm = feed.Run(200, [&](int i) { return 10 * kMiB + b[static_cast<std::size_t>(i)]; });
  CHECK(CountSuspected(warm) == 0);
  CHECK(warm.back().threshold_bytes_per_second == doctest::Approx(30 * kKiB + 3 * 22.3607 * kKiB).epsilon(0.01));

  auto steady = [&](double rate, int count) {
    return feed.Run(count, [&](int) {
      b.push_back(b[b.size() - 2] + 10 * rate);
      return 10 * kMiB + b.back();
    });
  };
  CHECK(CountSuspected(steady(80 * kKiB, 20)) == 0);  // above the floor, inside the band
  auto leak = steady(200 * kKiB, 10);
  CHECK(FirstWith(leak, true) >= 0);
}

TEST_CASE("leak detector: a release of memory does not widen the baseline") {
  LeakDetector d;
  Feed feed{d};
  double bytes = 500 * kMiB;
  feed.Run(200, [&](int) { return bytes; });
  bytes = 100 * kMiB;  // a cache flush: -400 MiB at once
  auto drop = feed.Run(200, [&](int) { return bytes; });
  CHECK(CountSuspected(drop) == 0);
  CHECK(drop.back().baseline_stddev == doctest::Approx(0.0));
  auto leak = feed.Run(20, [&](int) { return bytes += 5 * 100 * kKiB; });
  CHECK(FirstWith(leak, true) >= 0);
}

TEST_CASE("leak detector: memory stays bounded whatever the sample count and interval") {
  LeakDetectorOptions o;
  o.window = 10s;
  o.max_window_samples = 600;  // 6 s of samples: still half a window, so rates are computed
  o.baseline_capacity = 50;
  LeakDetector d(o);
  Feed feed{d, 10ms};  // 1000 samples would fit the window
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> jitter(0, kMiB);
  std::size_t max_window = 0, max_baseline = 0;
  for (int round = 0; round < 100; ++round) {
    feed.Run(2000, [&](int) { return 10 * kMiB + jitter(rng); });
    max_window = std::max(max_window, d.window_size());
    max_baseline = std::max(max_baseline, d.baseline_size());
  }
  CHECK(max_window == 600);
  CHECK(max_baseline == 50);
}

TEST_CASE("leak detector: old or repeated timestamps are ignored; Reset forgets everything") {
  LeakDetector d;
  Feed feed{d};
  auto verdicts = feed.Run(40, [](int i) { return 50 * kMiB + i * 5 * kMiB; });
  REQUIRE(verdicts.back().leak_suspected);
  std::size_t window = d.window_size();
  auto same = d.Add(kStart + 5s * (feed.next - 1), 1);
  CHECK(same.leak_suspected);
  CHECK_FALSE(same.changed);
  CHECK(d.window_size() == window);

  d.Reset();
  CHECK(d.window_size() == 0);
  CHECK(d.baseline_size() == 0);
  CHECK_FALSE(d.status().leak_suspected);
  CHECK_FALSE(d.status().has_rate);
  auto flat = feed.Run(100, [](int) { return 50 * kMiB; });
  CHECK(CountSuspected(flat) == 0);
}
