// Faults on the real control plane (issue #11), each a test that can fail: the kube-apiserver and
// etcd restarted under live sessions, the webhook killed during a burst of pod creations, the agent
// or dlv killed while a session attaches, and a stalled network path between the controller and
// the API server. Sessions run against the real agent, dlv and leaky app (pod IP 127.0.0.1).
#include <doctest/doctest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <thread>

#include "support/gray_pod.h"
#include "support/stall_proxy.h"
#include "support/webhook_process.h"

using namespace graydebug::testing;
namespace fs = std::filesystem;

namespace {

std::string TempDir(const std::string& what) {
  std::string dir = (fs::temp_directory_path() / ("graydebug-flt-" + what + "-" + std::to_string(getpid()))).string();
  fs::create_directories(dir);
  return dir;
}

bool Running(Child& child) {
  return child.Wait(std::chrono::milliseconds(0)) == -2;
}

std::unique_ptr<Child> StartController(const std::string& kubeconfig, const std::string& ns, const std::string& log,
                                       std::vector<std::string> extra = {}) {
  std::vector<std::string> argv = {Bin("graydebug-controller"),  "--kubeconfig=" + kubeconfig,
                                   "--metrics-addr=127.0.0.1:0", "--health-addr=127.0.0.1:0",
                                   "--namespace=" + ns,          "--lease-namespace=" + ns,
                                   "--probe-interval=2s"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return Child::Spawn(argv, log);
}

// name -> phase of every DebugSession in `ns` ({} when the API server does not answer).
std::map<std::string, std::string> Phases(const LocalCluster& c, const std::string& ns) {
  std::map<std::string, std::string> out;
  auto r = c.Kubectl({"get", "debugsessions", "-n", ns, "-o", "json"});
  json all = json::parse(r.out, nullptr, false);
  if (r.exit_code != 0 || !all.is_object()) return out;
  for (const auto& s : all["items"]) out[s["metadata"]["name"].get<std::string>()] = Phase(s);
  return out;
}

int CountPhase(const std::map<std::string, std::string>& phases, const std::string& phase) {
  int n = 0;
  for (const auto& [name, p] : phases) n += p == phase;
  return n;
}

bool CreateSession(const LocalCluster& c, const std::string& ns, const std::string& name, const std::string& pod) {
  return c.Kubectl({"create", "-n", ns, "-f", "-"}, Session(name, pod).dump()).exit_code == 0;
}

json GrayPodSpec(const std::string& name) {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata",
           {{"name", name}, {"labels", {{"app", "order"}, {"version", "v2"}, {"graydebug.io/inject", "true"}}}}},
          {"spec", {{"containers", {{{"name", "order"}, {"image", "registry.example.com/order:v2"}}}}}}};
}

int InjectedContainers(const LocalCluster& c, const std::string& ns) {
  auto r = c.Kubectl({"create", "-n", ns, "--dry-run=server", "-o", "json", "-f", "-"}, GrayPodSpec("probe").dump());
  json pod = json::parse(r.out, nullptr, false);
  return r.exit_code == 0 && pod.is_object() ? static_cast<int>(pod["spec"]["containers"].size()) : -1;
}

// The API server (or etcd under it) goes away and comes back while sessions are Active: the
// controller and the webhook keep running and recover on their own, the sessions keep their
// phase, and new sessions and new gray pods are served afterwards.
void OutageUnderSessions(const std::string& what, const std::function<bool()>& stop, const std::function<bool()>& start,
                         bool expect_watch_break) {
  LocalCluster& c = LocalCluster::Shared();
  REQUIRE_MESSAGE(c.ok(), c.error());
  REQUIRE(InstallCrd(c));
  std::string ns = "flt-" + what;
  REQUIRE(c.Kubectl({"create", "namespace", ns}).exit_code == 0);
  std::string dir = TempDir(what);
  GrayPod pod(dir, "order-v2-" + what);
  REQUIRE_MESSAGE(pod.StartProcesses(), (pod.agent ? pod.agent->Output() : ""));
  REQUIRE(CreateRunningPod(c, pod, ns));
  auto controller = StartController(c.kubeconfig(), ns, dir + "/controller.log");
  REQUIRE(controller);
  Webhook w;
  REQUIRE(w.Start(c.kubeconfig(), "", {"--circuits-namespace=" + ns}));
  REQUIRE_MESSAGE(w.WaitReady(), w.child->Output());
  std::string hook = "graydebug-flt-" + what;
  REQUIRE(c.Kubectl({"apply", "-f", "-"}, WebhookConfiguration(w, hook)).exit_code == 0);
  REQUIRE(Eventually([&] { return InjectedContainers(c, ns) == 3; }, 30s));

  for (int i = 0; i < 5; ++i) REQUIRE(CreateSession(c, ns, "before-" + std::to_string(i), pod.name));
  REQUIRE_MESSAGE(Eventually([&] { return CountPhase(Phases(c, ns), "Active") == 5; }, 60s), controller->Output());

  const int probes_before = AgentProbeRequests(pod);
  const std::string metrics_port = ControllerMetricsPort(*controller);
  REQUIRE(!metrics_port.empty());
  // Broken watches of the sessions' informer (a broken stream or a failed start), from /metrics.
  auto watch_errors = [&] {
    std::string m = Run({"curl", "-sS", "http://127.0.0.1:" + metrics_port + "/metrics"}).out;
    return std::max(
        0.0, MetricValue(m, "graydebug_informer_watch_restarts_total{informer=\"debugsessions\",reason=\"error\"}"));
  };
  const double watch_errors_before = watch_errors();
  REQUIRE(stop());
  // The outage is real (the API server is not ready: gone, or its storage is) and lasts while the
  // controller keeps working: at least five more re-probes (one per session and 2 s), whose status
  // writes meet the outage.
  CHECK(Eventually([&] { return c.Kubectl({"get", "--raw", "/readyz"}).out != "ok"; }, 30s));
  CHECK(Eventually([&] { return AgentProbeRequests(pod) >= probes_before + 5; }, 30s));
  if (expect_watch_break) {
    CHECK_MESSAGE(Eventually([&] { return watch_errors() > watch_errors_before; }, 30s), controller->Output());
  }
  CHECK(c.Kubectl({"get", "--raw", "/readyz"}).out != "ok");
  REQUIRE(start());

  CHECK(Running(*controller));
  CHECK(Running(*w.child));
  // Nothing lost, nothing moved: the five sessions are still there and still Active (probes went on
  // during the outage; their status writes waited for the API server).
  auto phases = Phases(c, ns);
  CHECK_MESSAGE(CountPhase(phases, "Active") == 5, json(phases).dump());
  // New work is served once the API server is back.
  REQUIRE(Eventually([&] { return CreateSession(c, ns, "after", pod.name); }, 30s));
  json s;
  CHECK_MESSAGE(Eventually([&] { return Phase(s = GetSession(c, ns, "after")) == "Active"; }, 60s), s.dump(),
                controller->Output());
  CHECK(Eventually([&] { return InjectedContainers(c, ns) == 3; }, 30s));
  CHECK(w.Curl("/readyz").out.ends_with("200"));
  phases = Phases(c, ns);
  CHECK_MESSAGE(CountPhase(phases, "Active") == 6, json(phases).dump());
  // Re-probes keep the sessions' status current after the outage (an Active session whose probe
  // keeps failing would say Ready=False).
  CHECK(GetSession(c, ns, "before-0")["status"].dump().find("ProbeFailed") == std::string::npos);

  controller->Signal(SIGTERM);
  CHECK(controller->Wait(30s) == 0);
  w.child->Signal(SIGTERM);
  CHECK(w.child->Wait(20s) == 0);
  c.Kubectl({"delete", "mutatingwebhookconfiguration", hook, "--ignore-not-found"});
  c.Kubectl({"delete", "namespace", ns, "--wait=false"});
  fs::remove_all(dir);
}

// A copy of the cluster's kubeconfig in `dir` that reaches the API server through a new
// StallProxy (in *proxy); "" when it cannot be made.
std::string ProxiedKubeconfig(const LocalCluster& c, const std::string& dir, std::unique_ptr<StallProxy>* proxy) {
  std::string kubeconfig;
  {
    std::ifstream in(c.kubeconfig());
    kubeconfig.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::smatch m;
  if (!std::regex_search(kubeconfig, m, std::regex("server: https://127\\.0\\.0\\.1:([0-9]+)"))) return "";
  auto p = std::make_unique<StallProxy>(std::stoi(m[1]));
  if (p->port() == 0) return "";
  kubeconfig =
      std::regex_replace(kubeconfig, std::regex("127\\.0\\.0\\.1:[0-9]+"), "127.0.0.1:" + std::to_string(p->port()));
  std::string path = dir + "/kubeconfig-proxied";
  std::ofstream(path) << kubeconfig;
  *proxy = std::move(p);
  return path;
}

}  // namespace

TEST_CASE("faults: kube-apiserver restarted during active sessions") {
  LocalCluster& c = LocalCluster::Shared();
  OutageUnderSessions(
      "apiserver", [&] { return c.StopApiServer(); }, [&] { return c.StartApiServer(); }, true);
}

TEST_CASE("faults: etcd restarted during active sessions") {
  LocalCluster& c = LocalCluster::Shared();
  OutageUnderSessions(
      "etcd", [&] { return c.StopEtcd(); }, [&] { return c.StartEtcd(); },
      false);  // the API server keeps its watches open while etcd is away
}

TEST_CASE("faults: webhook SIGKILLed during a burst of gray pod creations: all admitted, none half-injected") {
  LocalCluster& c = LocalCluster::Shared();
  REQUIRE_MESSAGE(c.ok(), c.error());
  std::string ns = "flt-burst";
  REQUIRE(c.Kubectl({"create", "namespace", ns}).exit_code == 0);
  Webhook w;
  REQUIRE(w.Start(c.kubeconfig()));
  REQUIRE_MESSAGE(w.WaitReady(), w.child->Output());
  // Only the pod webhook (failurePolicy Ignore): the DebugSession one fails closed by design.
  auto pods_only = [](const Webhook& hook) {
    json cfg = json::parse(WebhookConfiguration(hook, "graydebug-flt-burst"));
    cfg["webhooks"].erase(1);
    return cfg.dump();
  };
  REQUIRE(c.Kubectl({"apply", "-f", "-"}, pods_only(w)).exit_code == 0);
  REQUIRE(Eventually([&] { return InjectedContainers(c, ns) == 3; }, 30s));

  // 8 clients create 15 gray pods each; the webhook is killed once a third of them exist.
  constexpr int kClients = 8, kPerClient = 15, kPods = kClients * kPerClient;
  std::atomic<int> created{0}, failed{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < kClients; ++t) {
    clients.emplace_back([&, t] {
      for (int i = 0; i < kPerClient; ++i) {
        auto r = c.Kubectl({"create", "-n", ns, "-f", "-"},
                           GrayPodSpec("burst-" + std::to_string(t) + "-" + std::to_string(i)).dump());
        (r.exit_code == 0 ? created : failed)++;
      }
    });
  }
  REQUIRE(Eventually([&] { return created >= kPods / 3; }, 120s));
  w.child->Signal(SIGKILL);
  CHECK(w.child->Wait(10s) == -1);
  for (auto& t : clients) t.join();
  CHECK(failed == 0);
  CHECK(created == kPods);

  auto r = c.Kubectl({"get", "pods", "-n", ns, "-o", "json"});
  REQUIRE(r.exit_code == 0);
  json pods = json::parse(r.out)["items"];
  int injected = 0, plain = 0, half = 0;
  for (const json& p : pods) {
    std::vector<std::string> names;
    for (const auto& ct : p["spec"]["containers"]) names.push_back(ct["name"]);
    const json& md = p["metadata"];
    bool label = md["labels"].contains("graydebug.io/injected");
    bool status = md.contains("annotations") && md["annotations"].contains("graydebug.io/status");
    bool shared = p["spec"].value("shareProcessNamespace", false);
    if (names == std::vector<std::string>{"order", "dlv-server", "graydebug-agent"} && label && status && shared) {
      ++injected;
    } else if (names == std::vector<std::string>{"order"} && !label && !status && !shared) {
      ++plain;
    } else {
      ++half;
      INFO(p.dump());
      CHECK_MESSAGE(false, "half-injected pod");
    }
  }
  CHECK(static_cast<int>(pods.size()) == kPods);
  CHECK(half == 0);
  CHECK(injected >= kPods / 3);  // those before the kill
  CHECK(plain >= 1);             // those after it (failurePolicy Ignore)
  MESSAGE("burst: " << injected << " injected, " << plain << " admitted unmodified, " << half << " half-injected");

  // A new webhook process (a restarted replica) injects again.
  Webhook w2;
  REQUIRE(w2.Start(c.kubeconfig()));
  REQUIRE(w2.WaitReady());
  REQUIRE(c.Kubectl({"apply", "-f", "-"}, pods_only(w2)).exit_code == 0);
  CHECK(Eventually([&] { return InjectedContainers(c, ns) == 3; }, 30s));
  w2.child->Signal(SIGTERM);
  CHECK(w2.child->Wait(20s) == 0);
  c.Kubectl({"delete", "mutatingwebhookconfiguration", "graydebug-flt-burst", "--ignore-not-found"});
  c.Kubectl({"delete", "namespace", ns, "--wait=false"});
}

TEST_CASE("faults: dlv or the agent killed while a session attaches") {
  LocalCluster& c = LocalCluster::Shared();
  REQUIRE_MESSAGE(c.ok(), c.error());
  REQUIRE(InstallCrd(c));
  std::string ns = "flt-attach";
  REQUIRE(c.Kubectl({"create", "namespace", ns}).exit_code == 0);
  std::string dir = TempDir("attach");
  GrayPod p1(dir, "order-v2-dlvkill"), p2(dir, "order-v2-agentkill");
  REQUIRE_MESSAGE(p1.StartProcesses(), (p1.agent ? p1.agent->Output() : ""));
  REQUIRE_MESSAGE(p2.StartProcesses(), (p2.agent ? p2.agent->Output() : ""));
  REQUIRE(CreateRunningPod(c, p1, ns));
  REQUIRE(CreateRunningPod(c, p2, ns));
  auto controller = StartController(c.kubeconfig(), ns, dir + "/controller.log");
  REQUIRE(controller);
  std::string metrics_port = ControllerMetricsPort(*controller);
  REQUIRE(!metrics_port.empty());

  // dlv frozen, so the first attach is in flight (the agent waits on dlv) when dlv is killed; the
  // launcher goes first so nothing restarts dlv. SPEC §4: up to 3 tries, then Failed.
  auto dlv_pid = Run({"pgrep", "-P", std::to_string(p1.launcher->pid()), "dlv"});
  REQUIRE(dlv_pid.exit_code == 0);
  pid_t dlv = std::atoi(dlv_pid.out.c_str());
  kill(dlv, SIGSTOP);
  REQUIRE(CreateSession(c, ns, "dlv-dies", p1.name));
  json s;
  REQUIRE_MESSAGE(Eventually([&] { return Phase(s = GetSession(c, ns, "dlv-dies")) == "Attaching"; }, 30s), s.dump());
  p1.launcher->Signal(SIGKILL);
  p1.launcher->Wait(10s);
  kill(dlv, SIGKILL);
  // The controller writes the Failed status first and removes its finalizer in a second update:
  // wait for both, not for the first write alone.
  CHECK_MESSAGE(Eventually(
                    [&] {
                      s = GetSession(c, ns, "dlv-dies");
                      return Phase(s) == "Failed" && !s["metadata"].contains("finalizers");
                    },
                    60s),
                s.dump());
  CHECK(s["status"]["attach"]["attempts"] == 3);
  CHECK(!s["status"]["attach"]["lastError"].get<std::string>().empty());
  CHECK_FALSE(s["metadata"].contains("finalizers"));

  // The agent frozen mid-attach, then killed and started again at once (as the kubelet restarts a
  // sidecar): the failed try is retried and the session becomes Active.
  p2.agent->Signal(SIGSTOP);
  REQUIRE(CreateSession(c, ns, "agent-dies", p2.name));
  REQUIRE_MESSAGE(Eventually([&] { return Phase(s = GetSession(c, ns, "agent-dies")) == "Attaching"; }, 30s), s.dump());
  p2.agent->Signal(SIGKILL);
  p2.agent->Wait(10s);
  p2.agent = Child::Spawn(
      {Bin("graydebug-agent"), "--listen=127.0.0.1:" + std::to_string(p2.agent_port),
       "--dlv-addr=127.0.0.1:" + std::to_string(p2.dlv_port), "--target-pid=" + std::to_string(p2.app->pid())},
      dir + "/agent-2.log");
  REQUIRE(p2.agent);
  CHECK_MESSAGE(Eventually([&] { return Phase(s = GetSession(c, ns, "agent-dies")) == "Active"; }, 60s), s.dump(),
                p2.agent->Output());
  CHECK(s["status"]["attach"]["attempts"].get<int>() >= 2);
  CHECK(s["status"]["attach"]["attempts"].get<int>() <= 3);

  // Nothing stuck: every session of the namespace is final or Active, and the failure counts are
  // the tries made (3 for dlv-dies, at least 1 for agent-dies).
  auto phases = Phases(c, ns);
  CHECK(phases["dlv-dies"] == "Failed");
  CHECK(phases["agent-dies"] == "Active");
  std::string m = Run({"curl", "-sS", "http://127.0.0.1:" + metrics_port + "/metrics"}).out;
  std::smatch match;
  CHECK(std::regex_search(m, match,
                          std::regex("graydebug_attach_attempts_total\\{namespace=\"" + ns +
                                     "\",release=\"v2-alpha\",result=\"failure\"\\} ([0-9]+)")));
  if (!match.empty()) CHECK(std::stoi(match[1]) >= 4);

  controller->Signal(SIGTERM);
  CHECK(controller->Wait(30s) == 0);
  c.Kubectl({"delete", "namespace", ns, "--wait=false"});
  fs::remove_all(dir);
}

TEST_CASE("faults: the webhook's watches behind a black-holed network path recover within the idle timeout") {
  LocalCluster& c = LocalCluster::Shared();
  REQUIRE_MESSAGE(c.ok(), c.error());
  std::string ns = "flt-wh-stall";
  REQUIRE(c.Kubectl({"create", "namespace", ns}).exit_code == 0);
  std::string dir = TempDir("wh-stall");
  std::unique_ptr<StallProxy> proxy;
  const std::string proxied = ProxiedKubeconfig(c, dir, &proxy);
  REQUIRE(proxy);
  // The webhook reads namespaces and its circuit breakers through the proxy; the API server calls
  // the webhook directly.
  Webhook w;
  REQUIRE(w.Start(proxied, "", {"--circuits-namespace=" + ns, "--watch-idle-timeout=4s", "--kube-api-timeout=4s"}));
  REQUIRE_MESSAGE(w.WaitReady(), w.child->Output());
  std::string hook = "graydebug-flt-wh-stall";
  REQUIRE(c.Kubectl({"apply", "-f", "-"}, WebhookConfiguration(w, hook)).exit_code == 0);
  REQUIRE(Eventually([&] { return InjectedContainers(c, ns) == 3; }, 30s));

  // Its watch connections go silent (never closed, never answered); then the breaker of the
  // release opens. Only a reopened watch can tell the webhook.
  const int before = proxy->accepted();
  proxy->BlackHoleExisting();
  const int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  json breaker = {{"state", "open"}, {"retryAt", now_ms + 3600000}, {"trips", 1}, {"window", {{now_ms, 0}}}};
  json cm = {{"apiVersion", "v1"},
             {"kind", "ConfigMap"},
             {"metadata", {{"name", "graydebug-circuits"}, {"namespace", ns}}},
             {"data", {{ns + ".v2", breaker.dump()}}}};  // release <namespace>/<version label>
  REQUIRE(c.Kubectl({"create", "-f", "-"}, cm.dump()).exit_code == 0);
  // Bound: the idle timeout, a request timeout for the relist, slack for a loaded machine. With the
  // default idle timeout (330 s) the webhook would keep injecting far beyond it.
  const auto bound = 4s + 2 * 4s + 15s;
  CHECK_MESSAGE(Eventually([&] { return InjectedContainers(c, ns) == 1; }, bound), w.child->Output());
  CHECK(proxy->accepted() > before);  // it got there on new connections
  CHECK(w.Curl("/readyz").out.ends_with("200"));

  w.child->Signal(SIGTERM);
  CHECK(w.child->Wait(20s) == 0);
  c.Kubectl({"delete", "mutatingwebhookconfiguration", hook, "--ignore-not-found"});
  c.Kubectl({"delete", "namespace", ns, "--wait=false"});
  fs::remove_all(dir);
}

TEST_CASE("faults: a stalled network path between the controller and the API server") {
  LocalCluster& c = LocalCluster::Shared();
  REQUIRE_MESSAGE(c.ok(), c.error());
  REQUIRE(InstallCrd(c));
  std::string ns = "flt-stall";
  REQUIRE(c.Kubectl({"create", "namespace", ns}).exit_code == 0);
  std::string dir = TempDir("stall");
  GrayPod pod(dir, "order-v2-stall");
  REQUIRE_MESSAGE(pod.StartProcesses(), (pod.agent ? pod.agent->Output() : ""));
  REQUIRE(CreateRunningPod(c, pod, ns));

  // The controller reaches the API server only through the proxy.
  std::unique_ptr<StallProxy> stall;
  const std::string proxied = ProxiedKubeconfig(c, dir, &stall);
  REQUIRE(stall);
  StallProxy& proxy = *stall;
  // The configured times under test: a watch silent for 4 s is reopened, a request unanswered for
  // 4 s is retried on a new connection.
  constexpr auto kIdle = 4s, kApi = 4s;
  auto controller =
      StartController(proxied, ns, dir + "/controller.log", {"--watch-idle-timeout=4s", "--kube-api-timeout=4s"});
  REQUIRE(controller);
  REQUIRE(CreateSession(c, ns, "before", pod.name));
  json s;
  REQUIRE_MESSAGE(Eventually([&] { return Phase(s = GetSession(c, ns, "before")) == "Active"; }, 30s), s.dump(),
                  controller->Output());
  // Recovery bound: the watch idle timeout, then (on connections that went dead under them) one
  // request timeout per in-flight write and the retry backoff, with slack for a loaded machine.
  const auto bound = std::chrono::duration_cast<std::chrono::seconds>(kIdle + 3 * kApi) + 15s;

  {
    INFO("everything stalls (old and new connections) for longer than the idle timeout, then resumes");
    proxy.Stall();
    REQUIRE(CreateSession(c, ns, "during-stall", pod.name));
    // The controller noticed: its silent watch timed out and the reconnect through the stalled path
    // failed too.
    REQUIRE_MESSAGE(
        Eventually([&] { return controller->Output().find("watch failed to start") != std::string::npos; }, bound),
        controller->Output());
    CHECK(Phase(GetSession(c, ns, "during-stall")) == "");
    proxy.Resume();
    CHECK_MESSAGE(Eventually([&] { return Phase(s = GetSession(c, ns, "during-stall")) == "Active"; }, bound), s.dump(),
                  controller->Output());
  }
  {
    INFO("the open connections become a black hole (never closed, never answered); new ones work");
    int before = proxy.accepted();
    proxy.BlackHoleExisting();
    REQUIRE(CreateSession(c, ns, "after-black-hole", pod.name));
    CHECK_MESSAGE(Eventually([&] { return Phase(s = GetSession(c, ns, "after-black-hole")) == "Active"; }, bound),
                  s.dump(), controller->Output());
    CHECK(proxy.accepted() > before);  // it got there on new connections
  }
  {
    INFO("every connection is reset");
    proxy.DropAll();
    REQUIRE(CreateSession(c, ns, "after-reset", pod.name));
    CHECK_MESSAGE(Eventually([&] { return Phase(s = GetSession(c, ns, "after-reset")) == "Active"; }, bound), s.dump(),
                  controller->Output());
  }
  CHECK(Running(*controller));
  auto phases = Phases(c, ns);
  CHECK_MESSAGE(CountPhase(phases, "Active") == 4, json(phases).dump());
  controller->Signal(SIGTERM);
  CHECK(controller->Wait(30s) == 0);
  c.Kubectl({"delete", "namespace", ns, "--wait=false"});
  fs::remove_all(dir);
}
