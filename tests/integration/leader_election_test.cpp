// Leader election between real processes on a real Lease.
#include <doctest/doctest.h>
#include <signal.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include "graydebug/kube/leader_election.h"
#include "support/eventually.h"
#include "support/local_cluster.h"
#include "support/stall_proxy.h"

using graydebug::kube::Client;
using graydebug::kube::LeaderElectionConfig;
using graydebug::kube::LeaderElector;
using graydebug::kube::Resource;
using graydebug::testing::Child;
using graydebug::testing::LocalCluster;
using graydebug::testing::StallProxy;

namespace {

using graydebug::testing::Eventually;

std::unique_ptr<Child> Candidate(LocalCluster& c, const std::string& id, const std::string& lease,
                                 const std::string& lease_duration, const std::string& kubeconfig = "") {
  auto child =
      Child::Spawn({GRAYDEBUG_LEADER_MAIN, "--kubeconfig=" + (kubeconfig.empty() ? c.kubeconfig() : kubeconfig),
                    "--identity=" + id, "--lease-name=" + lease, "--lease-duration=" + lease_duration,
                    "--renew-deadline=2s", "--retry-period=200ms", "--log-level=warn"},
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

// A standby stands by: it has seen `leader` hold `lease`, and `leader` then renewed it `renewals`
// more times. The standby retries as often as the leader renews, so it has found the lease held
// again in between; judged by those events, not by a pause.
void StandsBy(Client& client, Child& standby, const std::string& id, const std::string& leader,
              const std::string& lease, int renewals) {
  REQUIRE_MESSAGE(
      Eventually([&] { return standby.Output().find("OBSERVED " + id + " " + leader) != std::string::npos; }),
      standby.Output());
  std::string last = Lease(client, lease)["spec"]["renewTime"];
  int seen = 0;
  REQUIRE(Eventually([&] {
    std::string now = Lease(client, lease)["spec"]["renewTime"];
    if (now != last) {
      last = now;
      ++seen;
    }
    return seen >= renewals;
  }));
  CHECK_MESSAGE(standby.Output().find("LEADING") == std::string::npos, standby.Output());
  CHECK(Lease(client, lease)["spec"]["holderIdentity"] == leader);
}

}  // namespace

TEST_CASE("leader election: the leader is killed with SIGKILL, the other takes over") {
  LocalCluster& c = LocalCluster::Shared();
  REQUIRE_MESSAGE(c.ok(), c.error());
  auto client = Client::Create(c.Rest()).value();
  auto a = Candidate(c, "alpha", "kill-lease", "3s");
  REQUIRE(Eventually([&] { return a->Output().find("LEADING alpha") != std::string::npos; }));
  auto b = Candidate(c, "beta", "kill-lease", "3s");
  // beta sees the lease held and waits while alpha renews it.
  StandsBy(*client, *b, "beta", "alpha", "kill-lease", 3);

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
  StandsBy(*client, *b, "delta", "gamma", "release-lease", 2);
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

TEST_CASE("leader election: a leader behind a stalled network stops leading before a standby takes over") {
  LocalCluster& c = LocalCluster::Shared();
  REQUIRE_MESSAGE(c.ok(), c.error());
  // zeta reaches the API server only through the proxy, eta directly.
  std::string kubeconfig;
  {
    std::ifstream in(c.kubeconfig());
    kubeconfig.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::smatch m;
  REQUIRE(std::regex_search(kubeconfig, m, std::regex("server: https://127\\.0\\.0\\.1:([0-9]+)")));
  StallProxy proxy(std::stoi(m[1]));
  REQUIRE(proxy.port() != 0);
  std::string proxied = c.dir() + "/kubeconfig-stalled-leader";
  std::ofstream(proxied) << std::regex_replace(kubeconfig, std::regex("127\\.0\\.0\\.1:[0-9]+"),
                                               "127.0.0.1:" + std::to_string(proxy.port()));
  // leader_main keeps the default client (request timeout 30 s, retries): only the elector's renew
  // deadline (2 s) can end zeta's leadership before eta's 4 s lease wait is over.
  auto a = Candidate(c, "zeta", "stall-lease", "4s", proxied);
  REQUIRE(Eventually([&] { return a->Output().find("LEADING zeta") != std::string::npos; }));
  auto b = Candidate(c, "eta", "stall-lease", "4s");
  StandsBy(*Client::Create(c.Rest()).value(), *b, "eta", "zeta", "stall-lease", 2);

  auto stalled = std::chrono::steady_clock::now();
  proxy.Stall();  // zeta's connections stay open and silent, new ones too
  REQUIRE_MESSAGE(
      Eventually([&] { return b->Output().find("LEADING eta") != std::string::npos; }, std::chrono::seconds(30)),
      a->Output());
  // When the standby leads, the cut-off leader has already said it stopped: never two leaders.
  CHECK_MESSAGE(a->Output().find("STOPPED zeta") != std::string::npos, a->Output());
  MESSAGE("standby led " << std::chrono::duration<double>(std::chrono::steady_clock::now() - stalled).count()
                         << " s after the stall began");
  CHECK(Lease(*Client::Create(c.Rest()).value(), "stall-lease")["spec"]["holderIdentity"] == "eta");

  // Forwarding resumes: zeta's hung request finishes, and it does not lead again.
  proxy.Resume();
  CHECK(a->Wait(std::chrono::seconds(60)) == 0);
  std::string out = a->Output();
  CHECK_MESSAGE(out.find("EXIT zeta not-released") != std::string::npos, out);
  CHECK(out.find("LEADING zeta") == out.rfind("LEADING zeta"));
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
