// Leader election between real processes on a real Lease.
#include <doctest/doctest.h>
#include <signal.h>

#include <ctime>
#include <filesystem>
#include <thread>

#include "graydebug/kube/leader_election.h"
#include "support/local_cluster.h"

using graydebug::kube::Client;
using graydebug::kube::LeaderElectionConfig;
using graydebug::kube::LeaderElector;
using graydebug::kube::Resource;
using graydebug::testing::Child;
using graydebug::testing::LocalCluster;

namespace {

template <class Pred>
bool Eventually(Pred pred, std::chrono::seconds limit = std::chrono::seconds(60)) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return pred();
}

std::unique_ptr<Child> Candidate(LocalCluster& c, const std::string& id, const std::string& lease,
                                 const std::string& lease_duration) {
  auto child = Child::Spawn(
      {GRAYDEBUG_LEADER_MAIN, "--kubeconfig=" + c.kubeconfig(), "--identity=" + id, "--lease-name=" + lease,
       "--lease-duration=" + lease_duration, "--renew-deadline=2s", "--retry-period=200ms", "--log-level=warn"},
      c.dir() + "/" + id + ".out");
  REQUIRE(child != nullptr);
  return child;
}

// Seconds since the epoch of a Kubernetes MicroTime.
double Seconds(const std::string& micro) {
  std::tm tm{};
  REQUIRE(strptime(micro.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) != nullptr);
  double frac = 0;
  auto dot = micro.find('.');
  if (dot != std::string::npos) frac = std::stod("0" + micro.substr(dot, micro.size() - dot - 1));
  return static_cast<double>(timegm(&tm)) + frac;
}

nlohmann::json Lease(Client& client, const std::string& name) {
  auto r = client.Get(Resource::Leases(), "default", name);
  REQUIRE_MESSAGE(r.ok(), r.error().ToString());
  return r.value();
}

}  // namespace

TEST_CASE("leader election: the leader is killed with SIGKILL, the other takes over") {
  LocalCluster& c = LocalCluster::Shared();
  REQUIRE_MESSAGE(c.ok(), c.error());
  auto client = Client::Create(c.Rest()).value();
  auto a = Candidate(c, "alpha", "kill-lease", "3s");
  REQUIRE(Eventually([&] { return a->Output().find("LEADING alpha") != std::string::npos; }));
  auto b = Candidate(c, "beta", "kill-lease", "3s");
  // beta sees the lease held and waits; give it several retry periods to prove it does not lead.
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  CHECK(b->Output().find("LEADING") == std::string::npos);
  CHECK(Lease(*client, "kill-lease")["spec"]["holderIdentity"] == "alpha");

  a->Signal(SIGKILL);
  a->Wait(std::chrono::seconds(10));
  REQUIRE(Eventually([&] { return b->Output().find("LEADING beta") != std::string::npos; }));
  auto lease = Lease(*client, "kill-lease");
  CHECK(lease["spec"]["holderIdentity"] == "beta");
  CHECK(lease["spec"]["leaseTransitions"] == 1);
  b->Signal(SIGTERM);
  CHECK(b->Wait(std::chrono::seconds(30)) == 0);
  CHECK(b->Output().find("EXIT beta released") != std::string::npos);
}

TEST_CASE("leader election: a clean shutdown releases the lease and the successor takes over before it expires") {
  LocalCluster& c = LocalCluster::Shared();
  REQUIRE_MESSAGE(c.ok(), c.error());
  auto client = Client::Create(c.Rest()).value();
  auto a = Candidate(c, "gamma", "release-lease", "15s");
  REQUIRE(Eventually([&] { return a->Output().find("LEADING gamma") != std::string::npos; }));
  auto b = Candidate(c, "delta", "release-lease", "15s");
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  CHECK(b->Output().find("LEADING") == std::string::npos);
  double renewed = Seconds(Lease(*client, "release-lease")["spec"]["renewTime"]);

  a->Signal(SIGTERM);
  CHECK(a->Wait(std::chrono::seconds(30)) == 0);
  CHECK(a->Output().find("STOPPED gamma") != std::string::npos);
  CHECK(a->Output().find("EXIT gamma released") != std::string::npos);
  REQUIRE(Eventually([&] { return b->Output().find("LEADING delta") != std::string::npos; }));
  auto lease = Lease(*client, "release-lease");
  CHECK(lease["spec"]["holderIdentity"] == "delta");
  // delta acquired while gamma's 15 s lease was still valid: only the release allows that.
  double acquired = Seconds(lease["spec"]["acquireTime"]);
  CHECK(acquired - renewed < 15.0);
  MESSAGE("successor took over " << (acquired - renewed) << " s after the leader's last renewal");
  b->Signal(SIGTERM);
  CHECK(b->Wait(std::chrono::seconds(30)) == 0);
}

TEST_CASE("leader election: two candidates racing for one lease never both win") {
  LocalCluster& c = LocalCluster::Shared();
  REQUIRE_MESSAGE(c.ok(), c.error());
  for (int round = 0; round < 5; ++round) {
    std::string name = "race-lease-" + std::to_string(round);
    auto mk = [&](const std::string& id) {
      LeaderElectionConfig cfg;
      cfg.lease_namespace = "default";
      cfg.lease_name = name;
      cfg.identity = id;
      return std::make_unique<LeaderElector>(Client::Create(c.Rest()).value(), cfg);
    };
    auto x = mk("x");
    auto y = mk("y");
    bool wx = false, wy = false;
    std::thread tx([&] { wx = x->TryAcquireOrRenew(); });
    std::thread ty([&] { wy = y->TryAcquireOrRenew(); });
    tx.join();
    ty.join();
    CHECK(wx != wy);
  }
}
