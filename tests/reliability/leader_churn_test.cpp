// `make reliability`: the controller leader SIGKILLed ten times while 100 sessions churn, with two
// replicas always present (a killed one is replaced, as its Deployment would). Afterwards no session
// is stuck, none is lost, and the breaker counted every attach attempt exactly once.
//
// How double counting would show: every attempt the controller makes is one GET /probe/dlv at the
// pod's agent, which counts each answer in graydebug_agent_probe_requests_total (probed, shared,
// cached; "busy" answers are not attempts). The breaker's window in ConfigMap graydebug-circuits
// holds one entry per attempt it recorded (the window is widened so nothing ages out and nothing
// trips). A leader that records an attempt twice, or a new leader that adds its predecessor's
// attempts again on top of the loaded window, makes the window longer than what the agent saw.
// The other way, every attempt a session's status reports (attach.attempts, written after the
// attempt was recorded) must be in the window: a window shorter than that sum lost attempts.
#include <doctest/doctest.h>
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <thread>

#include "support/gray_pod.h"

using namespace graydebug::testing;
namespace fs = std::filesystem;

TEST_CASE("reliability: controller leader SIGKILLed 10 times while 100 sessions churn") {
  LocalCluster& c = LocalCluster::Shared();
  REQUIRE_MESSAGE(c.ok(), c.error());
  REQUIRE(InstallCrd(c));
  std::string ns = "rel-churn";
  REQUIRE(c.Kubectl({"create", "namespace", ns}).exit_code == 0);
  std::string dir = (fs::temp_directory_path() / ("graydebug-rel-churn-" + std::to_string(getpid()))).string();
  fs::create_directories(dir);
  GrayPod pod(dir, "order-v2-churn");
  REQUIRE_MESSAGE(pod.StartProcesses(), (pod.agent ? pod.agent->Output() : ""));
  REQUIRE(CreateRunningPod(c, pod, ns));
  const int agent_before = AgentProbeRequests(pod);  // the readiness probes of StartProcesses

  // No re-probes of Active sessions during the run, and a window that neither forgets nor trips:
  // every attempt of the run stays countable.
  std::string config = dir + "/controller.yaml";
  std::ofstream(config) << "reprobeInterval: 1h\nbreaker:\n  window: 2h\n  maxWindowAttempts: 100000\n"
                           "  minAttempts: 100000\n";
  int replica = 0;
  auto start_replica = [&] {
    std::string log = dir + "/controller-" + std::to_string(replica++) + ".log";
    return Child::Spawn({Bin("graydebug-controller"), "--kubeconfig=" + c.kubeconfig(), "--metrics-addr=127.0.0.1:0",
                         "--health-addr=127.0.0.1:0", "--leader-elect", "--lease-namespace=" + ns, "--namespace=" + ns,
                         "--config=" + config},
                        log);
  };
  std::vector<std::unique_ptr<Child>> replicas;
  replicas.push_back(start_replica());
  replicas.push_back(start_replica());
  auto leader = [&]() -> Child* {
    for (auto& r : replicas) {
      if (r->Wait(std::chrono::milliseconds(0)) != -2) continue;
      const std::string port = LogField(r->Output(), "controller started", "metrics_port");
      if (port.empty()) continue;
      const std::string m = Run({"curl", "-sS", "--max-time", "5", "http://127.0.0.1:" + port + "/metrics"}).out;
      if (MetricValue(m, "graydebug_manager_runnable_up{runnable=\"workers\"}") == 1) return r.get();
    }
    return nullptr;
  };
  REQUIRE(Eventually([&] { return leader() != nullptr; }, 60s));

  // Churn: session i is created; once session i-10 is Active it is read and ended (deleted).
  constexpr int kSessions = 100;
  std::atomic<int> created{0};
  std::map<std::string, int> status_attempts;  // attach.attempts of each session while Active
  std::vector<std::string> stuck;
  std::mutex mu;
  auto settle = [&](const std::string& name) {
    json s;
    bool active = Eventually([&] { return Phase(s = GetSession(c, ns, name)) == "Active"; }, 120s);
    std::lock_guard l(mu);
    if (!active) {
      stuck.push_back(name + ": " + s.dump());
      return;
    }
    status_attempts[name] = s["status"]["attach"].value("attempts", 0);
  };
  std::thread churn([&] {
    for (int i = 0; i < kSessions; ++i) {
      std::string name = "churn-" + std::to_string(i);
      Eventually(
          [&] {
            return c.Kubectl({"create", "-n", ns, "-f", "-"}, Session(name, pod.name).dump()).exit_code == 0;
          },
          30s);
      created++;
      if (i >= 10) {
        std::string old = "churn-" + std::to_string(i - 10);
        settle(old);
        c.Kubectl({"delete", "debugsession", "-n", ns, old, "--wait=false"});
      }
      std::this_thread::sleep_for(500ms);  // pacing of the load, not a wait for a result
    }
  });

  // Ten hard kills of whoever leads; each time a fresh replica replaces the dead one and the
  // survivor must take over (lease 15 s) before the next kill.
  int kills = 0;
  for (int k = 0; k < 10; ++k) {
    Child* l = nullptr;
    REQUIRE_MESSAGE(Eventually([&] { return (l = leader()) != nullptr; }, 60s), "no leader before kill ", k);
    // Let the leader do some work first: at least two more sessions were created under it.
    int mark = created;
    Eventually([&] { return created >= std::min(kSessions, mark + 2); }, 30s);
    l->Signal(SIGKILL);
    CHECK(l->Wait(10s) == -1);
    ++kills;
    replicas.push_back(start_replica());
  }
  churn.join();
  for (int i = kSessions - 10; i < kSessions; ++i) settle("churn-" + std::to_string(i));
  REQUIRE(Eventually([&] { return leader() != nullptr; }, 60s));

  CHECK(kills == 10);
  CHECK_MESSAGE(stuck.empty(), json(stuck).dump());
  CHECK(static_cast<int>(status_attempts.size()) == kSessions);  // none lost: every one became Active
  // The ended sessions are gone (their finalizer was handled), the last ten remain and are Active.
  json all;
  CHECK(Eventually(
      [&] {
        all = json::parse(c.Kubectl({"get", "debugsessions", "-n", ns, "-o", "json"}).out, nullptr, false);
        return all.is_object() && all["items"].size() == 10;
      },
      60s));
  for (const auto& s : all["items"]) CHECK_MESSAGE(Phase(s) == "Active", s.dump());

  // The breaker's count against the agent's.
  int status_sum = 0;
  for (const auto& [name, n] : status_attempts) status_sum += n;
  const int agent = AgentProbeRequests(pod) - agent_before;
  int window = -1;
  CHECK(Eventually(
      [&] {
        auto cm = c.Kubectl({"get", "configmap", "-n", ns, "graydebug-circuits", "-o", "json"});
        json j = json::parse(cm.out, nullptr, false);
        if (cm.exit_code != 0 || !j.is_object()) return false;
        json b = json::parse(j["data"].value(ns + ".v2-alpha", "{}"), nullptr, false);
        window = b.is_object() && b.contains("window") ? static_cast<int>(b["window"].size()) : -1;
        return window >= status_sum;  // the leader flushes at most a second after an attempt
      },
      30s));
  MESSAGE("leader kills: " << kills << "; sessions: " << status_attempts.size() << "; attempts in statuses: "
                           << status_sum << ", in the breaker window: " << window << ", seen by the agent: " << agent);
  CHECK(window <= agent);       // no double counting
  CHECK(window >= status_sum);  // no attempt a session reports is missing from the breaker
  CHECK(status_sum >= kSessions);

  for (auto& r : replicas) r->Signal(SIGTERM);
  for (auto& r : replicas) r->Wait(30s);
  c.Kubectl({"delete", "namespace", ns, "--wait=false"});
  fs::remove_all(dir);
}
