#include "graydebug/workqueue.h"

#include <doctest/doctest.h>

#include "support/eventually.h"
#include "support/fake_clock.h"
#include "support/recording_sink.h"

#include <atomic>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using graydebug::FakeClock;
using graydebug::WorkQueue;

TEST_CASE("workqueue: a key is queued once however often it is added") {
  FakeClock clock;
  WorkQueue q(clock);
  q.Add("a");
  q.Add("b");
  q.Add("a");
  CHECK(q.Len() == 2);
  CHECK(q.Get() == "a");
  CHECK(q.Get() == "b");
  q.Done("a");
  q.Done("b");
  CHECK(q.Len() == 0);
}

TEST_CASE("workqueue: a key being processed is not handed out again until Done, then runs again") {
  FakeClock clock;
  WorkQueue q(clock);
  q.Add("a");
  REQUIRE(q.Get() == "a");
  q.Add("a");  // while processing
  q.Add("a");
  CHECK(q.Len() == 0);  // not handed to a second worker
  q.Done("a");
  CHECK(q.Len() == 1);  // runs once more
  CHECK(q.Get() == "a");
  q.Done("a");
  CHECK(q.Len() == 0);
}

TEST_CASE("workqueue: per-key exponential backoff with a cap, reset by Forget") {
  FakeClock clock;
  WorkQueue q(clock, 10ms, 80ms);
  q.AddRateLimited("a");  // due in 10ms
  CHECK(q.NumRequeues("a") == 1);
  CHECK(q.Len() == 0);
  clock.Advance(9ms);
  q.Add("x");
  CHECK(q.Get() == "x");  // "a" is not due yet
  q.Done("x");
  clock.Advance(1ms);
  CHECK(q.Get() == "a");
  q.Done("a");
  for (int i = 0; i < 5; ++i) q.AddRateLimited("b");  // 10, 20, 40, 80, 80 (capped)
  CHECK(q.NumRequeues("b") == 5);
  // The earliest pending delay wins: the first call made it due after 10ms.
  clock.Advance(10ms);
  CHECK(q.Get() == "b");
  q.Done("b");
  q.AddRateLimited("b");  // 6th failure: capped at 80ms
  clock.Advance(79ms);
  q.Add("y");
  CHECK(q.Get() == "y");
  q.Done("y");
  clock.Advance(1ms);
  CHECK(q.Get() == "b");
  q.Done("b");
  q.Forget("b");
  CHECK(q.NumRequeues("b") == 0);
}

TEST_CASE("workqueue: Get blocks until a delayed key is due (fake clock moved by another thread)") {
  FakeClock clock;
  WorkQueue q(clock);
  const auto due = clock.Now() + 5s;
  q.AddAfter("later", 5s);
  std::atomic<bool> got{false};
  std::atomic<graydebug::Clock::Steady::rep> returned_at{0};
  std::thread worker([&] {
    auto k = q.Get();
    returned_at = clock.Now().time_since_epoch().count();  // fake time only moves forward
    got = k.has_value() && *k == "later";
  });
  // Time moves in 100 ms steps; Get must not return before the key is due (judged in fake time,
  // not by sleeping and looking).
  REQUIRE(graydebug::testing::Eventually(
      [&] {
        if (got) return true;
        clock.Advance(100ms);
        return false;
      },
      10s, 1ms));
  worker.join();
  CHECK(returned_at.load() >= due.time_since_epoch().count());
}

TEST_CASE("workqueue: shutdown wakes blocked workers and drops delayed keys") {
  FakeClock clock;
  WorkQueue q(clock);
  std::atomic<int> ended{0};
  std::thread a([&] {
    if (!q.Get()) ended++;
  });
  std::thread b([&] {
    if (!q.Get()) ended++;
  });
  q.AddAfter("never", 1h);
  std::this_thread::sleep_for(20ms);
  q.ShutDown();
  a.join();
  b.join();
  CHECK(ended.load() == 2);
  CHECK(q.ShuttingDown());
  q.Add("after");
  CHECK_FALSE(q.Get().has_value());
}

TEST_CASE("workqueue: concurrent workers never process the same key at once") {
  graydebug::RealClock clock;
  WorkQueue q(clock);
  std::mutex mu;
  std::set<std::string> in_flight;
  std::atomic<bool> overlap{false};
  std::atomic<int> processed{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&] {
      while (auto key = q.Get()) {
        {
          std::lock_guard lock(mu);
          if (!in_flight.insert(*key).second) overlap = true;
        }
        std::this_thread::sleep_for(100us);
        {
          std::lock_guard lock(mu);
          in_flight.erase(*key);
        }
        processed++;
        q.Done(*key);
      }
    });
  }
  for (int i = 0; i < 2000; ++i) q.Add("k" + std::to_string(i % 7));
  while (q.Len() > 0) std::this_thread::sleep_for(1ms);
  std::this_thread::sleep_for(20ms);
  q.ShutDown();
  for (auto& t : workers) t.join();
  CHECK_FALSE(overlap.load());
  CHECK(processed.load() >= 7);
}

TEST_CASE("workqueue: an instrumented queue reports adds, depth, time queued, time in process and retries") {
  graydebug::testing::RecordingSink sink;
  FakeClock clock;
  WorkQueue q(clock);
  q.Instrument("sessions");
  auto m = sink.queue("sessions");
  REQUIRE(m != nullptr);
  q.Add("shop/a");
  q.Add("shop/a");  // deduplicated: not an add
  q.Add("shop/b");
  clock.Advance(3s);
  auto key = q.Get();
  REQUIRE(key == "shop/a");
  clock.Advance(1500ms);
  q.Done(*key);
  q.AddRateLimited("shop/a");
  std::lock_guard l(m->mu);
  CHECK(m->adds == 2);
  CHECK(m->depths == std::vector<std::int64_t>{1, 2, 1});
  CHECK(m->waited == std::vector<double>{3.0});
  CHECK(m->worked == std::vector<double>{1.5});
  CHECK(m->retries == 1);
}

TEST_CASE("workqueue: an uninstrumented queue reports nothing") {
  graydebug::testing::RecordingSink sink;
  FakeClock clock;
  WorkQueue q(clock);
  q.Add("k");
  q.Done(*q.Get());
  CHECK(sink.queue("") == nullptr);
  CHECK(sink.calls().empty());
}
