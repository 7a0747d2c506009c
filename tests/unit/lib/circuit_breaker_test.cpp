#include "graydebug/circuit_breaker.h"

#include <doctest/doctest.h>

#include "graydebug/kube/time.h"

using namespace graydebug;
using namespace std::chrono_literals;

namespace {

const Clock::Wall kT0 = *kube::ParseTime("2026-11-26T10:00:00Z");

// Records `attempts` outcomes one second apart with failures spread evenly; returns the state.
BreakerState Feed(CircuitBreaker& b, int attempts, int failures, Clock::Wall start = kT0) {
  int failed = 0;
  for (int i = 0; i < attempts; ++i) {
    // The failures go last, so the ratio is judged on the complete series.
    bool fail = i >= attempts - failures;
    failed += fail;
    b.Record(!fail, start + std::chrono::seconds(i));
  }
  (void)failed;
  return b.State(start + std::chrono::seconds(attempts));
}

}  // namespace

TEST_CASE("breaker: trips only with >= 20 attempts, >= 2 failures and > 5 %") {
  struct Case {
    int attempts, failures;
    BreakerState want;
  };
  for (const Case& c : {Case{3, 1, BreakerState::kClosed}, Case{20, 1, BreakerState::kClosed},
                        Case{40, 2, BreakerState::kClosed},  // exactly 5 %: not strictly greater
                        Case{21, 2, BreakerState::kOpen}, Case{40, 3, BreakerState::kOpen},
                        Case{19, 19, BreakerState::kClosed},  // too few attempts, however bad
                        Case{100, 5, BreakerState::kClosed}, Case{100, 6, BreakerState::kOpen}}) {
    CircuitBreaker b({});
    CAPTURE(c.attempts);
    CAPTURE(c.failures);
    CHECK(Feed(b, c.attempts, c.failures) == c.want);
  }
}

TEST_CASE("breaker: the attempt that trips it says so; the window forgets old failures") {
  CircuitBreaker b({});
  for (int i = 0; i < 19; ++i) CHECK(b.Record(true, kT0 + std::chrono::seconds(i)) == CircuitBreaker::Change::kNone);
  CHECK(b.Record(false, kT0 + 19s) == CircuitBreaker::Change::kNone);
  CHECK(b.Record(false, kT0 + 20s) == CircuitBreaker::Change::kOpened);  // 2 of 21
  CircuitBreaker old({});
  old.Record(false, kT0);
  old.Record(false, kT0 + 1s);
  // Eleven minutes later the two failures are outside the 10-minute window.
  CHECK(Feed(old, 21, 1, kT0 + 11min) == BreakerState::kClosed);
  CHECK(old.attempts() == 21);
}

TEST_CASE("breaker: the window holds at most 200 attempts") {
  CircuitBreaker b({});
  for (int i = 0; i < 500; ++i) b.Record(true, kT0 + std::chrono::milliseconds(i));
  CHECK(b.attempts() == 200);
  // 10 failures among the last 200 = 5 % is not > 5 %; the 11th trips.
  for (int i = 0; i < 10; ++i) b.Record(false, kT0 + 1s + std::chrono::milliseconds(i));
  CHECK(b.State(kT0 + 2s) == BreakerState::kClosed);
  b.Record(false, kT0 + 3s);
  CHECK(b.State(kT0 + 3s) == BreakerState::kOpen);
}

TEST_CASE("breaker: cool-down 60 s doubling per trip in a row, capped at 10 min; half-open paths") {
  CircuitBreaker b({});
  Clock::Wall t = kT0;
  Feed(b, 21, 2, t);
  t += 21s;
  REQUIRE(b.State(t) == BreakerState::kOpen);
  CHECK(b.RetryAt() - (t - 1s) == 60s);
  CHECK(b.State(b.RetryAt() - 1ms) == BreakerState::kOpen);
  CHECK(b.State(b.RetryAt()) == BreakerState::kHalfOpen);
  // Half-open: a failure reopens with twice the cool-down.
  t = b.RetryAt();
  CHECK(b.Record(false, t) == CircuitBreaker::Change::kOpened);
  CHECK(b.RetryAt() - t == 120s);
  std::vector<std::chrono::seconds> cools;
  for (int i = 0; i < 6; ++i) {
    t = b.RetryAt();
    b.Record(false, t);
    cools.push_back(std::chrono::duration_cast<std::chrono::seconds>(b.RetryAt() - t));
  }
  CHECK(cools == std::vector<std::chrono::seconds>{240s, 480s, 600s, 600s, 600s, 600s});
  // Half-open: 5 successes close it, clear the window and reset the doubling.
  t = b.RetryAt();
  for (int i = 0; i < 4; ++i) CHECK(b.Record(true, t + std::chrono::seconds(i)) != CircuitBreaker::Change::kClosed);
  CHECK(b.Record(true, t + 5s) == CircuitBreaker::Change::kClosed);
  CHECK(b.State(t + 5s) == BreakerState::kClosed);
  CHECK(b.attempts() == 0);
  CHECK(b.consecutive_trips() == 0);
  CHECK(b.trips() == 8);
  Feed(b, 21, 2, t + 10s);
  CHECK(b.RetryAt() - (t + 30s) == 60s);
}

TEST_CASE("breaker: the shared JSON form round-trips and refuses garbage") {
  CircuitBreaker b({});
  Feed(b, 30, 3);
  auto copy = CircuitBreaker::FromJson(b.ToJson(), {});
  REQUIRE(copy);
  CHECK(copy->State(kT0 + 31s) == BreakerState::kOpen);
  CHECK(copy->RetryAt() == b.RetryAt());
  CHECK(copy->attempts() == 30);
  CHECK(copy->trips() == 1);
  for (const auto& bad : {nlohmann::json(), nlohmann::json(3), nlohmann::json{{"state", "melted"}}}) {
    CHECK_FALSE(CircuitBreaker::FromJson(bad, {}));
  }
  auto odd = CircuitBreaker::FromJson({{"state", "closed"}, {"window", {1, "x", {1, 2, 3}}}, {"trips", "many"}}, {});
  REQUIRE(odd);
  CHECK(odd->attempts() == 0);
}

TEST_CASE("breaker: shared state of the wrong shape reads as malformed or clamped, never throws or overflows") {
  // Found with the config fuzz target's edge seeds: json::value("state", "") threw type_error on
  // {"state":5}, and a millisecond time beyond year 2262 overflowed the nanosecond Wall in the
  // conversion (signed overflow, reported by UBSan).
  for (const char* bad : {R"({"state":5})", R"({"state":null,"window":"x"})", R"({"state":["open"]})"}) {
    CAPTURE(bad);
    std::optional<CircuitBreaker> b;
    CHECK_NOTHROW(b = CircuitBreaker::FromJson(nlohmann::json::parse(bad), BreakerConfig{}));
    CHECK_FALSE(b.has_value());
  }
  auto b = CircuitBreaker::FromJson(
      nlohmann::json::parse(R"({"state":"open","openedAt":9223372036854775807,"retryAt":-9223372036854775808,)"
                            R"("window":[[9223372036854775807,0]]})"),
      BreakerConfig{});
  REQUIRE(b.has_value());
  CHECK(b->RetryAt() == Clock::Wall{});  // clamped to the epoch: the cool-down is long over
  CHECK(b->State(kT0) == BreakerState::kHalfOpen);
}
