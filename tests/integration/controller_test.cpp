// graydebug-controller against the real control plane, attaching through the real agent to a real
// dlv attached to the real leaky app (the pod's IP is 127.0.0.1; ports are per test pod).
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "support/gray_pod.h"
#include "support/local_cluster.h"
#include "support/process.h"

using graydebug::testing::Child;
using graydebug::testing::LocalCluster;
using graydebug::testing::ProcessResult;
using graydebug::testing::Run;
using namespace graydebug::testing;
using nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

TEST_CASE("controller: a session on a gray pod becomes Active, is measured, ends when the pod goes") {
  LocalCluster& c = LocalCluster::Shared();
  REQUIRE_MESSAGE(c.ok(), c.error());
  REQUIRE(InstallCrd(c));
  std::string ns = "ctl-shop";
  REQUIRE(c.Kubectl({"create", "namespace", ns}).exit_code == 0);
  std::string dir = (fs::temp_directory_path() / ("graydebug-ctl-" + std::to_string(getpid()))).string();
  fs::create_directories(dir);

  GrayPod pod{dir, "order-v2-alpha-1"};
  REQUIRE_MESSAGE(pod.StartProcesses(), (pod.agent ? pod.agent->Output() : ""),
                  (pod.launcher ? pod.launcher->Output() : ""));
  REQUIRE(CreateRunningPod(c, pod, ns));

  // Scoped to its namespace: the request counts below are this namespace's alone (other tests leave
  // sessions in the shared cluster, whose finalizers an all-namespaces controller would patch).
  auto controller =
      Child::Spawn({Bin("graydebug-controller"), "--kubeconfig=" + c.kubeconfig(), "--metrics-addr=127.0.0.1:0",
                    "--health-addr=127.0.0.1:0", "--probe-interval=2s", "--namespace=" + ns},
                   dir + "/controller.log");
  REQUIRE(controller);
  std::string metrics_port;
  REQUIRE(!(metrics_port = ControllerMetricsPort(*controller)).empty());
  auto metrics = [&] { return Run({"curl", "-sS", "http://127.0.0.1:" + metrics_port + "/metrics"}).out; };

  // Created as the webhook admits it, with the controller's finalizer already set: the controller's
  // only writes are then the status and its Event, no PATCH of the session.
  json first = Session("leak-hunt", pod.name);
  first["metadata"]["finalizers"] = {"graydebug.io/session-cleanup"};
  REQUIRE(c.Kubectl({"create", "-n", ns, "-f", "-"}, first.dump()).exit_code == 0);
  json s;
  REQUIRE_MESSAGE(Eventually([&] { return Phase(s = GetSession(c, ns, "leak-hunt")) == "Active"; }, 30s), s.dump(),
                  controller->Output());
  std::string before_others = metrics();
  CHECK_MESSAGE(before_others.find("verb=\"PATCH\"") == std::string::npos, before_others);
  const json& st = s["status"];
  CHECK(st["pod"] == pod.name);
  CHECK(st["podIP"] == "127.0.0.1");
  CHECK(st["release"] == "v2-alpha");
  CHECK(st["attach"]["attempts"] == 1);
  CHECK(st["attach"]["latencySeconds"].get<double>() > 0);
  CHECK(st["connect"] == "kubectl port-forward -n " + ns + " pod/" + pod.name + " " + std::to_string(pod.dlv_port) +
                             ":" + std::to_string(pod.dlv_port) +
                             " && dlv connect 127.0.0.1:" + std::to_string(pod.dlv_port));
  CHECK(s["metadata"]["finalizers"] == json{"graydebug.io/session-cleanup"});
  std::string m = metrics();
  CHECK(m.find("debug_session_active{namespace=\"" + ns + "\",pod=\"" + pod.name + "\",release=\"v2-alpha\"} 1") !=
        std::string::npos);
  CHECK(m.find("dlv_attach_latency_seconds_count{status=\"success\"}") != std::string::npos);
  // The libraries' own series (issue #17 item 5): the work queue, the informers, the kube client
  // (leadership: the next test case; without --leader-elect there is no such series).
  CHECK(MetricValue(m, "leader_election_master_status{name=\"graydebug-controller\"}") == -1);
  CHECK(MetricValue(m, "workqueue_adds_total{name=\"debugsession\"}") >= 1);
  CHECK(MetricValue(m, "workqueue_queue_duration_seconds_count{name=\"debugsession\"}") >= 1);
  CHECK(MetricValue(m, "workqueue_work_duration_seconds_count{name=\"debugsession\"}") >= 1);
  CHECK(MetricValue(m, "workqueue_depth{name=\"debugsession\"}") >= 0);
  CHECK(MetricValue(m, "graydebug_informer_lists_total{informer=\"debugsessions\",result=\"ok\"}") >= 1);
  CHECK(MetricValue(m, "graydebug_informer_lists_total{informer=\"injected-pods\",result=\"ok\"}") >= 1);
  CHECK(MetricValue(m, "graydebug_kube_requests_total{code=\"200\",verb=\"GET\"}") >= 2);
  CHECK(MetricValue(m, "graydebug_kube_requests_total{code=\"200\",verb=\"PUT\"}") >= 1);  // status, lease
  CHECK(MetricValue(m, "graydebug_kube_request_duration_seconds_count{verb=\"GET\"}") >= 2);
  // The printed address really is dlv (through the pod's loopback here).
  auto version = Run({"python3", "-c",
                      "import socket,sys; s=socket.create_connection(('127.0.0.1'," + std::to_string(pod.dlv_port) +
                          "),5); s.sendall(b'{\"method\":\"RPCServer.GetVersion\",\"params\":[{}],\"id\":1}\\n'); "
                          "print(s.recv(65536).decode())"});
  CHECK(version.out.find("DelveVersion") != std::string::npos);
  // Events on the session for the phase changes (the recorder sends them in the background).
  ProcessResult events;
  CHECK_MESSAGE(Eventually(
                    [&] {
                      events = c.Kubectl({"get", "events", "-n", ns, "--field-selector",
                                          "involvedObject.name=leak-hunt", "-o", "json"});
                      return events.out.find("\"reason\": \"Active\"") != std::string::npos;
                    },
                    30s),
                events.out);

  // Re-probes keep going (probe interval 2 s).
  CHECK(Eventually(
      [&] { return metrics().find("dlv_attach_latency_seconds_count{status=\"success\"} 2") != std::string::npos; },
      30s));

  // A session on a pod whose agent does not answer fails after 3 attempts.
  GrayPod dead{dir, "order-v2-alpha-dead"};
  REQUIRE(CreateRunningPod(c, dead, ns));  // processes never started: the agent port refuses
  REQUIRE(c.Kubectl({"create", "-n", ns, "-f", "-"}, Session("doomed", dead.name).dump()).exit_code == 0);
  REQUIRE_MESSAGE(Eventually([&] { return Phase(s = GetSession(c, ns, "doomed")) == "Failed"; }, 60s), s.dump());
  CHECK(s["status"]["attach"]["attempts"] == 3);
  CHECK(s["status"]["attach"]["lastError"].get<std::string>().find("refused") != std::string::npos);
  CHECK(metrics().find("graydebug_attach_attempts_total{namespace=\"" + ns +
                       "\",release=\"v2-alpha\",result=\"failure\"} 3") != std::string::npos);
  // A session created without the webhook gets the finalizer from the controller (one PATCH).
  CHECK(MetricValue(metrics(), "graydebug_kube_requests_total{code=\"200\",verb=\"PATCH\"}") >= 1);
  // Final sessions lose the finalizer, so deleting them never waits for the controller.
  CHECK(Eventually([&] { return !GetSession(c, ns, "doomed")["metadata"].contains("finalizers"); }, 30s));

  // A session on a pod that does not exist stays Pending with a reason.
  REQUIRE(c.Kubectl({"create", "-n", ns, "-f", "-"}, Session("early", "not-yet").dump()).exit_code == 0);
  REQUIRE(Eventually([&] { return Phase(s = GetSession(c, ns, "early")) == "Pending"; }, 30s));
  CHECK(s["status"]["conditions"].dump().find("PodNotFound") != std::string::npos);

  // The pod goes away: the session is Terminated and its series removed.
  REQUIRE(c.Kubectl({"delete", "pod", "-n", ns, pod.name, "--wait=false"}).exit_code == 0);
  REQUIRE_MESSAGE(Eventually([&] { return Phase(s = GetSession(c, ns, "leak-hunt")) == "Terminated"; }, 30s), s.dump());
  // (Other tests' sessions may be left in terminating namespaces: look at this namespace only.)
  CHECK_MESSAGE(
      Eventually([&] { return metrics().find("debug_session_active{namespace=\"" + ns + "\"") == std::string::npos; },
                 10s),
      metrics(), controller->Output());

  // Deleting a session returns at once (finalizer handled).
  CHECK(c.Kubectl({"delete", "debugsession", "-n", ns, "early", "--timeout=30s"}).exit_code == 0);

  controller->Signal(SIGTERM);
  CHECK(controller->Wait(30s) == 0);
  for (auto* p : {&pod}) {
    for (auto* child : {p->agent.get(), p->launcher.get(), p->app.get()}) {
      if (child != nullptr) child->Signal(SIGTERM);
    }
  }
  c.Kubectl({"delete", "namespace", ns, "--wait=false"});
  fs::remove_all(dir);
}

TEST_CASE("controller: 200 sessions at once, leader killed, dlv killed, ttl expiry") {
  LocalCluster& c = LocalCluster::Shared();
  REQUIRE_MESSAGE(c.ok(), c.error());
  REQUIRE(InstallCrd(c));
  std::string ns = "ctl-load";
  REQUIRE(c.Kubectl({"create", "namespace", ns}).exit_code == 0);
  std::string dir = (fs::temp_directory_path() / ("graydebug-ctl2-" + std::to_string(getpid()))).string();
  fs::create_directories(dir);
  GrayPod pod(dir, "order-v2-alpha-load");
  REQUIRE_MESSAGE(pod.StartProcesses(), (pod.agent ? pod.agent->Output() : ""));
  REQUIRE(CreateRunningPod(c, pod, ns));

  // The session that expires: the CRD's shortest ttl is 1m, so it is created first.
  json expiring = Session("expiring", pod.name);
  expiring["spec"]["ttl"] = "1m";
  REQUIRE(c.Kubectl({"create", "-n", ns, "-f", "-"}, expiring.dump()).exit_code == 0);

  std::string lease = "graydebug-it-" + std::to_string(getpid());
  auto start_controller = [&](const std::string& name) {
    return Child::Spawn({Bin("graydebug-controller"), "--kubeconfig=" + c.kubeconfig(), "--metrics-addr=127.0.0.1:0",
                         "--health-addr=127.0.0.1:0", "--leader-elect", "--lease-namespace=" + ns,
                         "--lease-name=" + lease, "--namespace=" + ns},
                        dir + "/" + name + ".log");
  };
  auto a = start_controller("a");
  auto b = start_controller("b");
  REQUIRE((a && b));
  Child* leader = nullptr;
  Child* follower = nullptr;
  // Who leads, from each replica's leader_election_master_status.
  const std::string port_a = ControllerMetricsPort(*a), port_b = ControllerMetricsPort(*b);
  REQUIRE((!port_a.empty() && !port_b.empty()));
  auto leads = [&](const std::string& port) {
    std::string m = Run({"curl", "-sS", "http://127.0.0.1:" + port + "/metrics"}).out;
    return MetricValue(m, "leader_election_master_status{name=\"" + lease + "\"}") == 1;
  };
  REQUIRE(Eventually(
      [&] {
        if (leads(port_a)) {
          leader = a.get();
          follower = b.get();
        } else if (leads(port_b)) {
          leader = b.get();
          follower = a.get();
        }
        return leader != nullptr;
      },
      60s));
  // Only one leads.
  CHECK(!leads(follower == a.get() ? port_a : port_b));
  auto workers_up = [&](const std::string& port) {
    std::string m = Run({"curl", "-sS", "http://127.0.0.1:" + port + "/metrics"}).out;
    return MetricValue(m, "graydebug_manager_runnable_up{runnable=\"workers\"}");
  };
  CHECK(workers_up(follower == a.get() ? port_a : port_b) == 0);
  CHECK(Eventually([&] { return workers_up(leader == a.get() ? port_a : port_b) == 1; }, 60s));

  // 200 sessions at once.
  json list = {{"apiVersion", "v1"}, {"kind", "List"}, {"items", json::array()}};
  for (int i = 0; i < 200; ++i) list["items"].push_back(Session("load-" + std::to_string(i), pod.name));
  auto created = c.Kubectl({"create", "-n", ns, "-f", "-"}, list.dump());
  REQUIRE_MESSAGE(created.exit_code == 0, created.err);
  auto count_phase = [&](const std::string& phase) {
    auto r = c.Kubectl({"get", "debugsessions", "-n", ns, "-o", "json"});
    json all = json::parse(r.out, nullptr, false);
    int n = 0;
    if (all.is_object()) {
      for (const auto& s : all["items"]) {
        if (s["metadata"]["name"].get<std::string>().rfind("load-", 0) == 0 && Phase(s) == phase) ++n;
      }
    }
    return n;
  };
  CHECK_MESSAGE(Eventually([&] { return count_phase("Active") == 200; }, 120s), leader->Output().substr(0, 3000));

  // The leader dies hard: the follower takes over within the lease and serves new sessions.
  leader->Signal(SIGKILL);
  leader->Wait(10s);
  const std::string& follower_port = follower == a.get() ? port_a : port_b;
  CHECK(Eventually([&] { return leads(follower_port); }, 60s));
  CHECK(Eventually([&] { return workers_up(follower_port) == 1; }, 60s));
  REQUIRE(c.Kubectl({"create", "-n", ns, "-f", "-"}, Session("after-failover", pod.name).dump()).exit_code == 0);
  json s;
  CHECK(Eventually([&] { return Phase(s = GetSession(c, ns, "after-failover")) == "Active"; }, 60s));
  CHECK(count_phase("Active") == 200);  // nothing lost in the handover

  // dlv dies (the launcher with it): a new session fails after 3 tries with the probe's error.
  auto dlv_pid = Run({"pgrep", "-P", std::to_string(pod.launcher->pid()), "dlv"});
  pod.launcher->Signal(SIGKILL);  // the launcher first, so nothing restarts dlv
  pod.launcher->Wait(10s);
  REQUIRE(dlv_pid.exit_code == 0);
  kill(std::atoi(dlv_pid.out.c_str()), SIGKILL);
  REQUIRE(c.Kubectl({"create", "-n", ns, "-f", "-"}, Session("after-dlv", pod.name).dump()).exit_code == 0);
  CHECK_MESSAGE(Eventually([&] { return Phase(s = GetSession(c, ns, "after-dlv")) == "Failed"; }, 60s), s.dump());
  CHECK(s["status"]["attach"]["attempts"] == 3);
  CHECK_MESSAGE(s["status"]["attach"]["lastError"].get<std::string>().find("refused") != std::string::npos, s.dump());

  // The 1m ttl has passed by now (or soon): Expired.
  CHECK_MESSAGE(Eventually([&] { return Phase(s = GetSession(c, ns, "expiring")) == "Expired"; }, 90s), s.dump());

  follower->Signal(SIGTERM);
  CHECK(follower->Wait(30s) == 0);
  for (auto* child : {pod.agent.get(), pod.app.get()}) child->Signal(SIGTERM);
  c.Kubectl({"delete", "namespace", ns, "--wait=false"});
  fs::remove_all(dir);
}
