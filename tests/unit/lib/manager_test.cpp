#include "graydebug/manager.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "graydebug/http_get.h"
#include "graydebug/metrics.h"
#include "support/eventually.h"

using namespace std::chrono_literals;
using graydebug::manager::Election;
using graydebug::manager::Manager;
using graydebug::manager::Options;
using graydebug::manager::Runnable;
using graydebug::testing::Eventually;

namespace {

// What happened, in order, from any thread.
struct Journal {
  std::mutex mu;
  std::vector<std::string> events;
  void Add(const std::string& e) {
    std::lock_guard lock(mu);
    events.push_back(e);
  }
  std::vector<std::string> Get() {
    std::lock_guard lock(mu);
    return events;
  }
  bool Has(const std::string& e) {
    auto all = Get();
    return std::find(all.begin(), all.end(), e) != all.end();
  }
};

Runnable Recorded(Journal& j, const std::string& name, std::string fail = "") {
  return Runnable{name,
                  [&j, name, fail](const std::atomic<bool>&) {
                    j.Add("start " + name);
                    return fail;
                  },
                  [&j, name] { j.Add("stop " + name); }};
}

// A stop the test gives: Run's wait_for_stop returns once Stop() is called.
struct StopLatch {
  std::mutex mu;
  std::condition_variable cv;
  bool stopped = false;
  void Stop() {
    {
      std::lock_guard lock(mu);
      stopped = true;
    }
    cv.notify_all();
  }
  std::function<std::string()> Waiter() {
    return [this] {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return stopped; });
      return std::string("test");
    };
  }
};

// An election the test drives: Lead() and Lose() call the manager's callbacks.
struct FakeElection {
  std::mutex mu;
  std::condition_variable cv;
  std::function<void()> started, stopped;
  bool running = false, stop = false;
  Journal* journal = nullptr;
  Election Make() {
    Election e;
    e.run = [this](std::function<void()> s, std::function<void()> t) {
      std::unique_lock lock(mu);
      started = std::move(s);
      stopped = std::move(t);
      running = true;
      cv.notify_all();
      cv.wait(lock, [&] { return stop; });
      running = false;
    };
    e.stop = [this] {
      if (journal) journal->Add("election stop");
      std::lock_guard lock(mu);
      stop = true;
      cv.notify_all();
    };
    return e;
  }
  void WaitRunning() {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return running; });
  }
  void Lead() {
    WaitRunning();
    started();
  }
  void Lose() {
    WaitRunning();
    stopped();
  }
};

}  // namespace

TEST_CASE("manager: runnables start in order, the leader's after them, and stop in reverse") {
  Journal j;
  Options o;
  Manager m(o);
  m.Add(Recorded(j, "a"));
  m.Add(Recorded(j, "b"));
  m.AddLeaderGated(Recorded(j, "x"));
  m.AddLeaderGated(Recorded(j, "y"));
  StopLatch latch;
  std::thread run([&] { CHECK(m.Run(latch.Waiter()) == 0); });
  REQUIRE(Eventually([&] { return j.Has("start y"); }));
  CHECK(m.Leading());
  auto up = [&](const std::string& name) {
    const std::string text = graydebug::metrics::Serialize(m.Registry());
    const std::string series = "graydebug_manager_runnable_up{runnable=\"" + name + "\"} ";
    auto at = text.find(series);
    return at == std::string::npos ? std::string("absent") : text.substr(at + series.size(), 1);
  };
  REQUIRE(Eventually([&] { return up("y") == "1"; }));
  CHECK(up("a") == "1");
  CHECK(up("x") == "1");
  latch.Stop();
  run.join();
  CHECK(up("a") == "0");
  CHECK(up("y") == "0");
  CHECK(j.Get() ==
        std::vector<std::string>{"start a", "start b", "start x", "start y", "stop y", "stop x", "stop b", "stop a"});
  CHECK_FALSE(m.Leading());
}

TEST_CASE("manager: a runnable that cannot start stops those before it, starts nothing after it, and Run returns 1") {
  Journal j;
  Manager m(Options{});
  m.Add(Recorded(j, "a"));
  m.Add(Recorded(j, "b", "address in use"));
  m.Add(Recorded(j, "c"));
  m.AddLeaderGated(Recorded(j, "x"));
  bool waited = false;
  CHECK(m.Run([&] {
    waited = true;
    return std::string("test");
  }) == 1);
  CHECK_FALSE(waited);
  CHECK(j.Get() == std::vector<std::string>{"start a", "start b", "stop a"});
}

TEST_CASE(
    "manager: the leader's work starts only when leading, stops before the lease is released, and a lost "
    "lease is fatal") {
  Journal j;
  std::vector<std::string> fatal;
  std::mutex fatal_mu;
  Options o;
  o.fatal = [&](const std::string& why) {
    std::lock_guard lock(fatal_mu);
    fatal.push_back(why);
  };
  Manager m(o);
  m.Add(Recorded(j, "informers"));
  m.AddLeaderGated(Recorded(j, "workers"));
  FakeElection election;
  election.journal = &j;
  m.SetElection(election.Make());
  StopLatch latch;
  std::thread run([&] { CHECK(m.Run(latch.Waiter()) == 0); });
  election.WaitRunning();
  // Standing by: ready, says so, and the leader's work has not started (started only by Lead below).
  CHECK(j.Get() == std::vector<std::string>{"start informers"});
  CHECK_FALSE(m.Leading());
  CHECK(m.Health(true, "", false).body == "ok (standby)\n");

  election.Lead();
  REQUIRE(Eventually([&] { return j.Has("start workers"); }));
  CHECK(m.Leading());
  CHECK(m.Health(true, "", false).body == "ok (leader)\n");

  election.Lose();
  {
    std::lock_guard lock(fatal_mu);
    REQUIRE(fatal.size() == 1);
    CHECK(fatal[0].find("leadership lost") != std::string::npos);
  }
  CHECK_FALSE(m.Leading());

  latch.Stop();
  run.join();
  CHECK(j.Get() == std::vector<std::string>{"start informers", "start workers", "stop workers", "election stop",
                                            "stop informers"});
  // Stopping releases the lease; the callback that reports it is not a loss.
  std::lock_guard lock(fatal_mu);
  CHECK(fatal.size() == 1);
}

TEST_CASE("manager: a leader's start that retries gives up on the stop signal, and is not stopped") {
  Journal j;
  Manager m(Options{});
  m.Add(Recorded(j, "a"));
  m.AddLeaderGated(Runnable{"load",
                            [&](const std::atomic<bool>& stopping) {
                              j.Add("start load");
                              while (!stopping) std::this_thread::sleep_for(1ms);
                              return std::string("stopping");
                            },
                            [&] { j.Add("stop load"); }});
  m.AddLeaderGated(Recorded(j, "after"));
  StopLatch latch;
  std::thread run([&] { CHECK(m.Run(latch.Waiter()) == 0); });
  REQUIRE(Eventually([&] { return j.Has("start load"); }));
  latch.Stop();
  run.join();
  CHECK(j.Get() == std::vector<std::string>{"start a", "start load", "stop a"});
}

TEST_CASE("manager: a leader's start that fails is fatal") {
  std::string fatal;
  Options o;
  o.fatal = [&](const std::string& why) { fatal = why; };
  Journal j;
  Manager m(o);
  m.AddLeaderGated(Recorded(j, "breakers", "forbidden"));
  m.AddLeaderGated(Recorded(j, "workers"));
  StopLatch latch;
  std::thread run([&] { CHECK(m.Run(latch.Waiter()) == 0); });
  REQUIRE(Eventually([&] { return j.Has("start breakers"); }));
  latch.Stop();
  run.join();
  CHECK(fatal == "cannot start the leader's work: breakers: forbidden");
  CHECK(j.Get() == std::vector<std::string>{"start breakers"});
}

TEST_CASE("manager: named checks, one line per failing check, verbose, one check alone, unknown names") {
  Manager m(Options{});
  std::atomic<bool> synced{false};
  m.AddReadyzCheck("informers", [&] { return synced ? "" : "informers not synced"; });
  m.AddReadyzCheck("tls", [] { return std::string(); });
  m.AddReadyzCheck("thrower", [&]() -> std::string {
    if (!synced) throw std::runtime_error("boom");
    return "";
  });
  m.AddHealthzCheck("ping", [] { return std::string(); });

  auto a = m.Health(true, "", false);
  CHECK(a.status == 503);
  CHECK(a.body ==
        "[-]informers failed: informers not synced\n[+]tls ok\n[-]thrower failed: the check threw: boom\n"
        "readyz check failed\n");
  CHECK(m.Health(true, "tls", false).status == 200);
  CHECK(m.Health(true, "informers", false).status == 503);
  CHECK(m.Health(true, "nope", false).status == 404);
  CHECK(m.Health(false, "", false).status == 200);

  synced = true;
  CHECK(m.Health(true, "", false).status == 200);
  CHECK(m.Health(true, "", false).body == "ok\n");
  CHECK(m.Health(true, "", true).body == "[+]informers ok\n[+]tls ok\n[+]thrower ok\nreadyz check passed\n");
}

TEST_CASE("manager: /readyz fails with \"shutting down\" before anything stops, during the shutdown delay") {
  Options o;
  o.shutdown_delay = 50ms;
  Manager m(o);
  m.AddReadyzCheck("always", [] { return std::string(); });
  Manager::Answer at_stop{0, ""};
  m.Add(Runnable{"server", [](const std::atomic<bool>&) { return std::string(); },
                 [&] { at_stop = m.Health(true, "", false); }});
  StopLatch latch;
  std::thread run([&] { CHECK(m.Run(latch.Waiter()) == 0); });
  REQUIRE(Eventually([&] { return m.Health(true, "", false).status == 200; }));
  latch.Stop();
  run.join();
  CHECK(at_stop.status == 503);
  CHECK(at_stop.body.find("shutting down") != std::string::npos);
}

TEST_CASE("manager: serves /metrics and the health endpoints on ports of its own") {
  Options o;
  o.metrics_addr = "127.0.0.1:0";
  o.health_addr = "127.0.0.1:0";
  Manager m(o);
  std::atomic<bool> synced{false};
  m.AddReadyzCheck("informers", [&] { return synced ? "" : "informers not synced"; });
  StopLatch latch;
  std::thread run([&] { CHECK(m.Run(latch.Waiter()) == 0); });
  REQUIRE(Eventually([&] { return m.health_port() != 0 && m.metrics_port() != 0; }));
  const std::string health = "http://127.0.0.1:" + std::to_string(m.health_port());
  auto r = graydebug::HttpGet(health + "/readyz", 10s);
  CHECK(r.status == 503);
  CHECK(r.body.find("[-]informers failed: informers not synced") != std::string::npos);
  CHECK(graydebug::HttpGet(health + "/readyz/informers", 10s).status == 503);
  CHECK(graydebug::HttpGet(health + "/healthz", 10s).status == 200);
  synced = true;
  r = graydebug::HttpGet(health + "/readyz?verbose", 10s);
  CHECK(r.status == 200);
  CHECK(r.body == "[+]informers ok\nreadyz check passed\n");
  CHECK(graydebug::HttpGet("http://127.0.0.1:" + std::to_string(m.metrics_port()) + "/metrics", 10s).status == 200);
  latch.Stop();
  run.join();
  CHECK(graydebug::HttpGet(health + "/healthz", 10s).refused);
}

TEST_CASE("manager: a health address in use makes Run return 1 before anything starts") {
  Options first;
  first.health_addr = "127.0.0.1:0";
  Manager a(first);
  StopLatch latch;
  std::thread run([&] { CHECK(a.Run(latch.Waiter()) == 0); });
  REQUIRE(Eventually([&] { return a.health_port() != 0; }));
  Journal j;
  Options second;
  second.health_addr = "127.0.0.1:" + std::to_string(a.health_port());
  Manager b(second);
  b.Add(Recorded(j, "a"));
  CHECK(b.Run([] { return std::string("test"); }) == 1);
  CHECK(j.Get().empty());
  latch.Stop();
  run.join();
}

TEST_CASE("manager: Every ticks on its own thread until stopped") {
  std::atomic<int> ticks{0};
  Runnable r = graydebug::manager::Every("tick", 5ms, [&] { ++ticks; });
  std::atomic<bool> stopping{false};
  CHECK(r.start(stopping).empty());
  CHECK(Eventually([&] { return ticks >= 3; }));
  r.stop();  // joins its thread
}
