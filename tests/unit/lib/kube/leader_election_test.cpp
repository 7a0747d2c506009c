// The elector's renew deadline over the fake API server and a fake clock: a leader whose renewal
// hangs (a black-holed connection) stops leading at the deadline, a renewing leader keeps leading.
#include "graydebug/kube/leader_election.h"

#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "support/eventually.h"
#include "support/fake_apiserver.h"
#include "support/fake_clock.h"

using namespace std::chrono_literals;
using graydebug::FakeClock;
using graydebug::kube::ClientOptions;
using graydebug::kube::HttpRequest;
using graydebug::kube::HttpResponse;
using graydebug::kube::LeaderElectionConfig;
using graydebug::kube::LeaderElector;
using graydebug::kube::ValidateLeaderElectionConfig;
using nlohmann::json;

namespace {

// The Lease on the fake API server (GET, POST, conditional PUT). Writes can be made to hang until
// released, as on a connection that went silent; a released write then goes through (a late
// success).
class LeaseServer {
 public:
  LeaseServer() {
    api.Intercept([this](const HttpRequest& r) -> std::optional<HttpResponse> {
      if (r.method != "POST" && r.method != "PUT") return std::nullopt;
      std::unique_lock lock(mu_);
      if (hang_writes_) {
        ++hung_;
        cv_.wait(lock, [this] { return !hang_writes_; });
      }
      return std::nullopt;
    });
  }
  void HangWrites(bool hang) {
    {
      std::lock_guard lock(mu_);
      hang_writes_ = hang;
    }
    cv_.notify_all();
  }
  int hung() const {
    std::lock_guard lock(mu_);
    return hung_;
  }
  // Writes that went through.
  int writes() const { return api.Answered("POST " + kLeases, 201) + api.Answered("PUT " + kLeases, 200); }
  int requests() const { return static_cast<int>(api.Requests().size()); }
  json lease() const {
    auto l = api.Get(graydebug::kube::Resource::Leases(), "graydebug-system", "graydebug-controller");
    return l ? *l : json();
  }
  graydebug::testing::FakeApiServer api;

 private:
  inline static const std::string kLeases = "/apis/coordination.k8s.io/v1/namespaces/graydebug-system/leases";
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool hang_writes_ = false;
  int hung_ = 0;
};

// The fake clock decides; the 10 s bound only keeps a broken test from hanging.
template <class Pred>
bool Eventually(Pred pred) {
  return graydebug::testing::Eventually(pred, 10s, 1ms);
}

// Moves the fake clock by `step`, then on by 1 ms per real millisecond until `pred` holds: the
// elector may start its wait only after the first move, and then needs a little more.
template <class Pred>
bool AdvanceUntil(FakeClock& clock, std::chrono::milliseconds step, Pred pred) {
  clock.Advance(step);
  return Eventually([&] {
    if (pred()) return true;
    clock.Advance(1ms);
    return false;
  });
}

LeaderElectionConfig Config() {
  LeaderElectionConfig c;
  c.lease_namespace = "graydebug-system";
  c.lease_name = "graydebug-controller";
  c.identity = "me";
  return c;  // 15 s / 10 s / 2 s
}

// An elector running on its own thread over a LeaseServer, counting its callbacks.
struct Election {
  FakeClock clock;
  std::unique_ptr<LeaseServer> owned = std::make_unique<LeaseServer>();
  LeaseServer* server = owned.get();
  LeaderElectionConfig config = Config();
  std::unique_ptr<LeaderElector> elector;
  std::atomic<int> started{0}, stopped{0}, writes_when_started{-1};
  std::atomic<graydebug::Clock::Steady> stopped_at{};
  std::atomic<bool> done{false}, result{false};
  std::thread runner;

  explicit Election(bool hang_first_write = false) {
    server->HangWrites(hang_first_write);
    ClientOptions o;
    o.clock = &clock;
    auto client = server->api.NewClient(o);
    config.on_started_leading = [this] {
      writes_when_started = server->writes();
      ++started;
    };
    config.on_stopped_leading = [this] {
      stopped_at = clock.Now();
      ++stopped;
    };
    elector = std::make_unique<LeaderElector>(client, config);
    runner = std::thread([this] {
      result = elector->Run();
      done = true;
    });
  }
  ~Election() {
    server->HangWrites(false);
    elector->Stop();
    runner.join();
  }
};

}  // namespace

TEST_CASE("leader election: a lease write that never answers ends leadership at the renew deadline") {
  Election e;
  REQUIRE(Eventually([&] { return e.started.load() == 1; }));
  const auto t0 = e.clock.Now();  // the acquisition (the fake clock has not moved yet)
  CHECK(e.server->lease()["spec"]["holderIdentity"] == "me");
  const int writes_before = e.server->writes();

  // The next renewal (about T0 + retry period) hangs in its PUT: the connection went silent.
  e.server->HangWrites(true);
  REQUIRE(AdvanceUntil(e.clock, e.config.retry_period, [&] { return e.server->hung() == 1; }));
  REQUIRE(e.clock.Now() < t0 + e.config.renew_deadline - 1ms);

  // Just before T0 + renew deadline it still leads: the watchdog, the only thread reading the clock
  // while the renewal hangs, has compared that time with the deadline (read it twice more) and waits on...
  e.clock.Advance(t0 + e.config.renew_deadline - 1ms - e.clock.Now());
  const auto reads = e.clock.Reads();
  REQUIRE(Eventually([&] { return e.clock.Reads() >= reads + 3; }));
  CHECK(e.elector->IsLeader());
  CHECK(e.stopped.load() == 0);
  // ...and at the deadline it stops, although the renewal has not returned.
  e.clock.Advance(1ms);
  REQUIRE(Eventually([&] { return e.stopped.load() == 1; }));
  CHECK(e.stopped_at.load() == t0 + e.config.renew_deadline);  // not one tick before
  CHECK_FALSE(e.elector->IsLeader());
  CHECK_FALSE(e.done.load());  // Run still waits for the hung request: the deadline alone ended leadership

  // The write then succeeds late: that neither re-grants leadership nor ends it a second time.
  e.server->HangWrites(false);
  REQUIRE(Eventually([&] { return e.done.load(); }));
  CHECK(e.server->writes() == writes_before + 1);
  CHECK_FALSE(e.result.load());
  CHECK_FALSE(e.elector->IsLeader());
  CHECK(e.started.load() == 1);
  CHECK(e.stopped.load() == 1);
}

TEST_CASE("leader election: a leader that renews keeps leading for many lease durations, then releases") {
  Election e;
  REQUIRE(Eventually([&] { return e.started.load() == 1; }));
  // 20 renewals: over 40 s of fake time, well past the 15 s lease and the 10 s renew deadline.
  for (int i = 0; i < 20; ++i) {
    int before = e.server->writes();
    REQUIRE(AdvanceUntil(e.clock, e.config.retry_period, [&] { return e.server->writes() > before; }));
  }
  CHECK(e.elector->IsLeader());
  CHECK(e.stopped.load() == 0);
  json lease = e.server->lease();
  CHECK(lease["spec"]["holderIdentity"] == "me");
  CHECK(lease["spec"]["leaseTransitions"] == 0);

  e.elector->Stop();
  REQUIRE(Eventually([&] { return e.done.load(); }));
  CHECK(e.result.load());  // released
  CHECK(e.stopped.load() == 1);
  CHECK(e.server->lease()["spec"]["holderIdentity"] == "");
}

TEST_CASE("leader election: an acquisition that answers only after the renew deadline does not count") {
  Election e(/*hang_first_write=*/true);
  REQUIRE(Eventually([&] { return e.server->hung() == 1; }));  // the create hangs
  e.clock.Advance(e.config.renew_deadline);
  e.server->HangWrites(false);  // the create lands, too late to lead on
  REQUIRE(Eventually([&] { return e.server->writes() == 1; }));
  // The next attempt renews the lease it now holds, and only then does it lead.
  REQUIRE(AdvanceUntil(e.clock, e.config.retry_period, [&] { return e.started.load() == 1; }));
  CHECK(e.writes_when_started.load() == 2);
  CHECK(e.elector->IsLeader());
}

TEST_CASE("leader election: the configuration follows client-go's rules") {
  CHECK(ValidateLeaderElectionConfig(Config()) == "");
  LeaderElectionConfig c = Config();
  c.renew_deadline = c.lease_duration;
  CHECK(ValidateLeaderElectionConfig(c).find("longer than the renew deadline") != std::string::npos);
  c = Config();
  c.retry_period = c.renew_deadline;
  CHECK(ValidateLeaderElectionConfig(c).find("longer than the retry period") != std::string::npos);
  c = Config();
  c.retry_period = 0ms;
  CHECK(ValidateLeaderElectionConfig(c) != "");
  c = Config();
  c.identity.clear();
  CHECK(ValidateLeaderElectionConfig(c) == "no identity");

  // Run refuses an invalid configuration without a request.
  LeaseServer server;
  c = Config();
  c.renew_deadline = 20s;
  LeaderElector elector(server.api.NewClient(), c);
  CHECK_FALSE(elector.Run());
  CHECK(server.requests() == 0);
}
