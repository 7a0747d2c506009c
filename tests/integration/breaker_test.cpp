// SPEC §6 end to end: attach failures of one gray release open its breaker; the webhook stops
// injecting that release, new sessions are Rejected, the Deployment is paused; other releases are
// unaffected; the state survives a controller restart; half-open trials close it again.
#include <doctest/doctest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>

#include "support/gray_pod.h"
#include "support/webhook_process.h"

using namespace graydebug::testing;
namespace fs = std::filesystem;

namespace {

json GrayPodSpec(const std::string& name, const std::string& release) {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata",
           {{"name", name}, {"labels", {{"app", "order"}, {"version", release}, {"graydebug.io/inject", "true"}}}}},
          {"spec", {{"containers", {{{"name", "order"}, {"image", "registry.example.com/order:v3"}}}}}}};
}

int Containers(const LocalCluster& c, const std::string& ns, const json& pod) {
  auto r = c.Kubectl({"create", "-n", ns, "--dry-run=server", "-o", "json", "-f", "-"}, pod.dump());
  if (r.exit_code != 0) return -1;
  return static_cast<int>(json::parse(r.out)["spec"]["containers"].size());
}

}  // namespace

TEST_CASE("breaker: failures open it, injection and sessions stop, rollout pauses, trials close it") {
  LocalCluster& c = LocalCluster::Shared();
  REQUIRE_MESSAGE(c.ok(), c.error());
  REQUIRE(InstallCrd(c));
  std::string ns = "brk-shop", system = "brk-system";
  REQUIRE(c.Kubectl({"create", "namespace", ns}).exit_code == 0);
  REQUIRE(c.Kubectl({"create", "namespace", system}).exit_code == 0);
  std::string dir = (fs::temp_directory_path() / ("graydebug-brk-" + std::to_string(getpid()))).string();
  fs::create_directories(dir);

  // Deployment -> ReplicaSet -> pod, so a trip can find the rollout to pause.
  json deploy = {{"apiVersion", "apps/v1"},
                 {"kind", "Deployment"},
                 {"metadata", {{"name", "order-v3"}}},
                 {"spec",
                  {{"replicas", 1},
                   {"selector", {{"matchLabels", {{"app", "order"}}}}},
                   {"template",
                    {{"metadata", {{"labels", {{"app", "order"}}}}},
                     {"spec", {{"containers", {{{"name", "order"}, {"image", "order:v3"}}}}}}}}}}};
  auto d = c.Kubectl({"create", "-n", ns, "-o", "json", "-f", "-"}, deploy.dump());
  REQUIRE_MESSAGE(d.exit_code == 0, d.err);
  json rs = {{"apiVersion", "apps/v1"},
             {"kind", "ReplicaSet"},
             {"metadata",
              {{"name", "order-v3-5d8f"},
               {"ownerReferences",
                {{{"apiVersion", "apps/v1"},
                  {"kind", "Deployment"},
                  {"name", "order-v3"},
                  {"uid", json::parse(d.out)["metadata"]["uid"]},
                  {"controller", true}}}}}},
             {"spec", deploy["spec"]}};
  auto r = c.Kubectl({"create", "-n", ns, "-o", "json", "-f", "-"}, rs.dump());
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);

  GrayPod pod(dir, "order-v3-5d8f-abcde");
  pod.release = "v3-beta";
  pod.owner_references = {{{"apiVersion", "apps/v1"},
                           {"kind", "ReplicaSet"},
                           {"name", "order-v3-5d8f"},
                           {"uid", json::parse(r.out)["metadata"]["uid"]},
                           {"controller", true}}};
  REQUIRE_MESSAGE(pod.StartProcesses(), (pod.agent ? pod.agent->Output() : ""));
  REQUIRE(CreateRunningPod(c, pod, ns));

  // Short cool-down so half-open comes within the test; the trip rule itself is SPEC's.
  std::string config = dir + "/controller.yaml";
  std::ofstream(config) << "breaker:\n  coolDown: 5s\n  pauseRollout: true\n";
  auto start_controller = [&](const std::string& log) {
    return Child::Spawn(
        {Bin("graydebug-controller"), "--kubeconfig=" + c.kubeconfig(), "--metrics-addr=127.0.0.1:0",
         "--health-addr=127.0.0.1:0", "--probe-interval=1s", "--lease-namespace=" + system, "--config=" + config},
        dir + "/" + log);
  };
  auto controller = start_controller("controller-1.log");
  REQUIRE(controller);
  std::string metrics_port;
  REQUIRE(!(metrics_port = ControllerMetricsPort(*controller)).empty());
  auto metrics = [&] { return Run({"curl", "-sS", "http://127.0.0.1:" + metrics_port + "/metrics"}).out; };

  Webhook w;
  REQUIRE(w.Start(c.kubeconfig(), "", {"--circuits-namespace=" + system}));
  REQUIRE_MESSAGE(w.WaitReady(), w.child->Output());
  REQUIRE(c.Kubectl({"apply", "-f", "-"}, WebhookConfiguration(w, "graydebug-brk")).exit_code == 0);
  REQUIRE(Eventually([&] { return Containers(c, ns, GrayPodSpec("probe", "v3-beta")) == 3; }, 30s));

  // Three Active sessions re-probing every second: successes pile up in the window.
  for (const char* s : {"s1", "s2", "s3"}) {
    REQUIRE(c.Kubectl({"create", "-n", ns, "-f", "-"}, Session(s, pod.name).dump()).exit_code == 0);
  }
  std::string ok_series =
      "graydebug_attach_attempts_total{namespace=\"" + ns + "\",release=\"v3-beta\",result=\"success\"} ";
  REQUIRE_MESSAGE(Eventually(
                      [&] {
                        std::string m = metrics();
                        auto at = m.find(ok_series);
                        return at != std::string::npos && std::stoi(m.substr(at + ok_series.size())) >= 25;
                      },
                      60s),
                  metrics());
  CHECK(metrics().find("graydebug_circuit_state{namespace=\"" + ns + "\",release=\"v3-beta\"} 0") != std::string::npos);

  // dlv dies: re-probes fail; > 5 % of >= 20 attempts with >= 2 failures opens the breaker.
  auto dlv_pid = Run({"pgrep", "-P", std::to_string(pod.launcher->pid()), "dlv"});
  pod.launcher->Signal(SIGKILL);
  pod.launcher->Wait(10s);
  REQUIRE(dlv_pid.exit_code == 0);
  kill(std::atoi(dlv_pid.out.c_str()), SIGKILL);
  REQUIRE_MESSAGE(Eventually(
                      [&] {
                        return metrics().find("graydebug_circuit_state{namespace=\"" + ns +
                                              "\",release=\"v3-beta\"} 2") != std::string::npos;
                      },
                      30s),
                  metrics());
  CHECK(metrics().find("graydebug_circuit_trips_total{namespace=\"" + ns + "\",release=\"v3-beta\"} 1") !=
        std::string::npos);
  auto cm = c.Kubectl({"get", "configmap", "-n", system, "graydebug-circuits", "-o", "json"});
  REQUIRE(cm.exit_code == 0);
  CHECK(cm.out.find("\\\"state\\\":\\\"open\\\"") != std::string::npos);

  // Effects: no sidecars for the release, a new session Rejected, the rollout paused; another
  // release is unaffected.
  CHECK(Eventually([&] { return Containers(c, ns, GrayPodSpec("gray-while-open", "v3-beta")) == 1; }, 30s));
  CHECK(Containers(c, ns, GrayPodSpec("other-release", "v9-other")) == 3);
  CHECK(w.Metrics().find("reason=\"circuit-open\"") != std::string::npos);
  REQUIRE(c.Kubectl({"create", "-n", ns, "-f", "-"}, Session("rejected", pod.name).dump()).exit_code == 0);
  json s;
  CHECK_MESSAGE(Eventually([&] { return Phase(s = GetSession(c, ns, "rejected")) == "Rejected"; }, 30s), s.dump());
  CHECK(s["status"].dump().find("CircuitOpen") != std::string::npos);
  CHECK(s["status"].dump().find("retries at") != std::string::npos);
  auto paused = c.Kubectl({"get", "deployment", "-n", ns, "order-v3", "-o", "json"});
  json dj = json::parse(paused.out);
  CHECK(dj["spec"].value("paused", false));
  CHECK(dj["metadata"]["annotations"].dump().find("circuit breaker of release " + ns + "/v3-beta") !=
        std::string::npos);
  auto events =
      c.Kubectl({"get", "events", "-n", ns, "--field-selector", "involvedObject.name=order-v3", "-o", "json"});
  CHECK(events.out.find("DebugCircuitOpen") != std::string::npos);

  // A controller restart keeps it open (the state lives in the ConfigMap).
  controller->Signal(SIGTERM);
  CHECK(controller->Wait(30s) == 0);
  controller = start_controller("controller-2.log");
  REQUIRE(!(metrics_port = ControllerMetricsPort(*controller)).empty());
  CHECK(Eventually([&] { return controller->Output().find("circuit breakers loaded") != std::string::npos; }, 30s));
  CHECK(controller->Output().find("\"not_closed\":\"1\"") != std::string::npos);

  // dlv is back; after the cool-down the breaker is half-open and 5 successful trials close it.
  pod.launcher = Child::Spawn(
      {Bin("graydebug-agent"), "launch-dlv", "--dlv-path=" + DlvPath(),
       "--target-pid=" + std::to_string(pod.app->pid()), "--listen=127.0.0.1:" + std::to_string(pod.dlv_port)},
      dir + "/launcher-2.log");
  REQUIRE(Eventually(
      [&] {
        return Run({"curl", "-sf", "http://127.0.0.1:" + std::to_string(pod.agent_port) + "/probe/dlv"}).exit_code == 0;
      },
      30s));
  // The cool-down (5 s) ends: half-open, published by the controller without any attempt.
  CHECK_MESSAGE(Eventually(
                    [&] {
                      return metrics().find("graydebug_circuit_state{namespace=\"" + ns +
                                            "\",release=\"v3-beta\"} 1") != std::string::npos;
                    },
                    30s),
                metrics());
  // Half-open: new pods of the release get sidecars again (a bounded number per webhook replica),
  // so trials have pods even when the release's pods were replaced while it was open (issue #19).
  // A dry run uses none of them.
  CHECK(Eventually([&] { return Containers(c, ns, GrayPodSpec("gray-half-open", "v3-beta")) == 3; }, 30s));
  // The sessions kept through the restart are still Active (the restarted controller waited for
  // its caches before deciding anything).
  CHECK(Phase(GetSession(c, ns, "s1")) == "Active");
  REQUIRE(c.Kubectl({"create", "-n", ns, "-f", "-"}, Session("trial", pod.name).dump()).exit_code == 0);
  CHECK_MESSAGE(Eventually(
                    [&] {
                      return metrics().find("graydebug_circuit_state{namespace=\"" + ns +
                                            "\",release=\"v3-beta\"} 0") != std::string::npos;
                    },
                    60s),
                metrics(), controller->Output());
  CHECK(Eventually([&] { return Containers(c, ns, GrayPodSpec("gray-after", "v3-beta")) == 3; }, 30s));

  controller->Signal(SIGTERM);
  controller->Wait(30s);
  w.child->Signal(SIGTERM);
  w.child->Wait(20s);
  for (auto* child : {pod.launcher.get(), pod.agent.get(), pod.app.get()}) {
    if (child != nullptr) child->Signal(SIGTERM);
  }
  c.Kubectl({"delete", "mutatingwebhookconfiguration", "graydebug-brk", "--ignore-not-found"});
  c.Kubectl({"delete", "namespace", ns, system, "--wait=false"});
  fs::remove_all(dir);
}

TEST_CASE("breaker: an operator resets an open breaker by removing its ConfigMap entry") {
  // issue #19: docs/operations.md tells operators how to reset a breaker; the leader must take the
  // edit over within seconds and never write the removed entry back.
  LocalCluster& c = LocalCluster::Shared();
  REQUIRE_MESSAGE(c.ok(), c.error());
  REQUIRE(InstallCrd(c));
  std::string ns = "brk-reset", system = "brk-reset-system";
  REQUIRE(c.Kubectl({"create", "namespace", ns}).exit_code == 0);
  REQUIRE(c.Kubectl({"create", "namespace", system}).exit_code == 0);
  std::string dir = (fs::temp_directory_path() / ("graydebug-brk-reset-" + std::to_string(getpid()))).string();
  fs::create_directories(dir);
  // An injected pod with no processes (its agent refuses), and two open breakers far from retrying.
  GrayPod pod(dir, "order-v7-abcde");
  pod.release = "v7";
  REQUIRE(CreateRunningPod(c, pod, ns));
  const int64_t far = 4'000'000'000'000;
  auto open = [&](int trips) {
    return json{{"state", "open"},       {"openedAt", far - 1000}, {"retryAt", far},         {"trips", trips},
                {"consecutiveTrips", 1}, {"trialSuccesses", 0},    {"window", json::array()}}
        .dump();
  };
  json cm = {{"apiVersion", "v1"},
             {"kind", "ConfigMap"},
             {"metadata", {{"name", "graydebug-circuits"}, {"namespace", system}}},
             {"data", {{ns + ".v7", open(1)}, {ns + ".v8", open(2)}}}};
  REQUIRE(c.Kubectl({"create", "-f", "-"}, cm.dump()).exit_code == 0);
  auto controller =
      Child::Spawn({Bin("graydebug-controller"), "--kubeconfig=" + c.kubeconfig(), "--metrics-addr=127.0.0.1:0",
                    "--health-addr=127.0.0.1:0", "--namespace=" + ns, "--lease-namespace=" + system},
                   dir + "/controller.log");
  REQUIRE(controller);
  std::string metrics_port;
  REQUIRE(!(metrics_port = ControllerMetricsPort(*controller)).empty());
  auto metrics = [&] { return Run({"curl", "-sS", "http://127.0.0.1:" + metrics_port + "/metrics"}).out; };
  auto state = [&](const std::string& release) {
    std::string m = metrics(),
                series = "graydebug_circuit_state{namespace=\"" + ns + "\",release=\"" + release + "\"} ";
    auto at = m.find(series);
    return at == std::string::npos ? std::string() : m.substr(at + series.size(), 1);
  };
  REQUIRE_MESSAGE(Eventually([&] { return state("v7") == "2"; }, 30s), metrics());
  REQUIRE(c.Kubectl({"create", "-n", ns, "-f", "-"}, Session("before", pod.name).dump()).exit_code == 0);
  CHECK(Eventually([&] { return Phase(GetSession(c, ns, "before")) == "Rejected"; }, 30s));

  auto removed = c.Kubectl({"patch", "configmap", "-n", system, "graydebug-circuits", "--type=json", "-p",
                            "[{\"op\":\"remove\",\"path\":\"/data/" + ns + ".v7\"}]"});
  REQUIRE_MESSAGE(removed.exit_code == 0, removed.err);
  CHECK_MESSAGE(Eventually([&] { return state("v7") == "0"; }, 30s), metrics(), controller->Output());
  CHECK(controller->Output().find("circuit breaker reset: its entry was removed") != std::string::npos);
  CHECK(state("v8") == "2");  // the other entry is untouched
  // New sessions are not Rejected any more: this one goes on to attach (and fails: no agent).
  REQUIRE(c.Kubectl({"create", "-n", ns, "-f", "-"}, Session("after", pod.name).dump()).exit_code == 0);
  json after;
  CHECK_MESSAGE(Eventually([&] { return Phase(after = GetSession(c, ns, "after")) == "Failed"; }, 60s), after.dump());
  CHECK(after["status"].dump().find("CircuitOpen") == std::string::npos);
  // The failures were stored (the controller wrote the ConfigMap again), without the old entry.
  auto now = c.Kubectl({"get", "configmap", "-n", system, "graydebug-circuits", "-o", "json"});
  REQUIRE(now.exit_code == 0);
  json data = json::parse(now.out)["data"];
  CHECK(data.contains(ns + ".v8"));
  REQUIRE(data.contains(ns + ".v7"));                                     // a fresh breaker with the new attempts ...
  CHECK(json::parse(data[ns + ".v7"].get<std::string>())["trips"] == 0);  // ... not the removed one

  // Deleting the ConfigMap resets them all.
  REQUIRE(c.Kubectl({"delete", "configmap", "-n", system, "graydebug-circuits"}).exit_code == 0);
  CHECK_MESSAGE(Eventually([&] { return state("v8") == "0"; }, 30s), metrics(), controller->Output());

  controller->Signal(SIGTERM);
  controller->Wait(30s);
  c.Kubectl({"delete", "namespace", ns, system, "--wait=false"});
  fs::remove_all(dir);
}
