#pragma once
// A local "gray pod" for integration tests (the leaky app, launch-dlv and the agent as local
// processes; its Pod object with podIP 127.0.0.1) and small helpers around DebugSessions.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <thread>

#include "support/eventually.h"
#include "support/local_cluster.h"
#include "support/ports.h"
#include "support/process.h"

namespace graydebug::testing {

using namespace std::chrono_literals;
using nlohmann::json;

inline std::string Bin(const std::string& name) {
  return std::string(GRAYDEBUG_BIN_DIR) + "/" + name;
}

inline std::string LogField(const std::string& output, const std::string& msg, const std::string& field) {
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    json j = json::parse(line, nullptr, false);
    if (j.is_object() && j.value("msg", "") == msg) return j.value(field, "");
  }
  return "";
}

// A local "gray pod": the leaky app, launch-dlv and the agent sidecar, plus its Pod object.
// The pinned dlv binary.
inline std::string DlvPath() {
  std::string dir = Run({SourceDir() + "/hack/tools/bin-dir", "dlv"}).out;
  while (!dir.empty() && dir.back() == '\n') dir.pop_back();
  return dir + "/dlv";
}

struct GrayPod {
  GrayPod(std::string d, std::string n) : dir(std::move(d)), name(std::move(n)) {}
  std::string dir, name;
  std::string release = "v2-alpha";
  json owner_references = json::array();
  // The app and the agent listen on port 0 and report the port they got (set by StartProcesses;
  // until then, and for a pod whose processes never start, the agent port refuses connections).
  // dlv gets a fixed port, as in a pod: launch-dlv starts it again on the same one when the app
  // restarts, and the agent keeps calling that address.
  int app_port = 0, dlv_port = FreePort(), agent_port = NothingListens();
  std::unique_ptr<Child> app, launcher, agent;

  bool StartProcesses() {
    std::string dlv = Run({graydebug::testing::SourceDir() + "/hack/tools/bin-dir", "dlv"}).out;
    while (!dlv.empty() && dlv.back() == '\n') dlv.pop_back();
    app = Child::Spawn({Bin("leaky-app"), "--listen", "127.0.0.1:0"}, dir + "/" + name + "-app.log");
    if (!app || (app_port = PortPrinted(*app, LeakyAppServing())) == 0) return false;
    launcher =
        Child::Spawn({Bin("graydebug-agent"), "launch-dlv", "--dlv-path=" + dlv + "/dlv",
                      "--target-pid=" + std::to_string(app->pid()), "--listen=127.0.0.1:" + std::to_string(dlv_port)},
                     dir + "/" + name + "-launcher.log");
    agent =
        Child::Spawn({Bin("graydebug-agent"), "--listen=127.0.0.1:0",
                      "--dlv-addr=127.0.0.1:" + std::to_string(dlv_port), "--target-pid=" + std::to_string(app->pid())},
                     dir + "/" + name + "-agent.log");
    if (!agent || (agent_port = PortPrinted(*agent, AgentServing())) == 0) return false;
    return launcher && Eventually([&] {
             return Run({"curl", "-sf", "http://127.0.0.1:" + std::to_string(agent_port) + "/probe/dlv"}).exit_code ==
                    0;
           });
  }

  json Object(const std::string& ns) const {
    json status = {{"containers", {"dlv-server", "graydebug-agent"}}, {"dlvPort", dlv_port}, {"agentPort", agent_port}};
    return {{"apiVersion", "v1"},
            {"kind", "Pod"},
            {"metadata",
             {{"name", name},
              {"namespace", ns},
              {"labels", {{"app", "order"}, {"version", release}, {"graydebug.io/injected", "true"}}},
              {"ownerReferences", owner_references},
              {"annotations", {{"graydebug.io/status", status.dump()}}}}},
            {"spec",
             {{"containers",
               {{{"name", "order"}, {"image", "leaky-app"}},
                {{"name", "dlv-server"}, {"image", "graydebug"}},
                {{"name", "graydebug-agent"},
                 {"image", "graydebug"},
                 {"ports", {{{"name", "gd-agent"}, {"containerPort", agent_port}}}}}}}}}};
  }
};

// /probe/dlv requests the pod's agent answered, from its metrics (each is one attach attempt of
// the controller, whether the agent called dlv, shared a call in flight or reused a recent one).
inline int AgentProbeRequests(const GrayPod& pod) {
  std::string m = Run({"curl", "-sS", "http://127.0.0.1:" + std::to_string(pod.agent_port) + "/metrics"}).out;
  std::regex series("graydebug_agent_probe_requests_total\\{answer=\"(probed|shared|cached)\"\\} ([0-9.e+]+)");
  int n = 0;
  for (auto it = std::sregex_iterator(m.begin(), m.end(), series); it != std::sregex_iterator(); ++it) {
    n += static_cast<int>(std::stod((*it)[2]));
  }
  return n;
}

inline bool CreateRunningPod(const LocalCluster& c, const GrayPod& p, const std::string& ns) {
  if (c.Kubectl({"create", "-f", "-"}, p.Object(ns).dump()).exit_code != 0) return false;
  json status = {{"status", {{"phase", "Running"}, {"podIP", "127.0.0.1"}, {"podIPs", {{{"ip", "127.0.0.1"}}}}}}};
  auto r = c.Kubectl({"patch", "pod", "-n", ns, p.name, "--subresource=status", "--type=merge", "-p", status.dump()});
  return r.exit_code == 0;
}

inline json Session(const std::string& name, const std::string& pod) {
  return {{"apiVersion", "graydebug.io/v1alpha1"},
          {"kind", "DebugSession"},
          {"metadata", {{"name", name}}},
          {"spec", {{"target", {{"pod", pod}}}, {"ttl", "15m"}, {"reason", "heap grows 40 MB/h"}}}};
}

inline json GetSession(const LocalCluster& c, const std::string& ns, const std::string& name) {
  auto r = c.Kubectl({"get", "debugsession", "-n", ns, name, "-o", "json"});
  return r.exit_code == 0 ? json::parse(r.out, nullptr, false) : json();
}

inline std::string Phase(const json& s) {
  return s.is_object() && s.contains("status") ? s["status"].value("phase", "") : "";
}

// Installs the DebugSession CRD (idempotent) and waits until the API server serves it.
inline bool InstallCrd(const LocalCluster& c) {
  return c.Kubectl({"apply", "-f", SourceDir() + "/manifests/crds/graydebug.io_debugsessions.yaml"}).exit_code == 0 &&
         c.Kubectl({"wait", "--for=condition=Established", "crd/debugsessions.graydebug.io", "--timeout=30s"})
                 .exit_code == 0;
}

// The metrics port a graydebug-controller child logged at start ("" if it did not within 30 s).
inline std::string ControllerMetricsPort(const Child& controller) {
  std::string port;
  Eventually([&] { return !(port = LogField(controller.Output(), "controller started", "metrics_port")).empty(); },
             30s);
  return port;
}

// The value of one series in a Prometheus text exposition, e.g.
// MetricValue(text, "workqueue_adds_total{name=\"debugsession\"}") (labels in the exposition's
// order: sorted by name); -1 when the series is absent.
inline double MetricValue(const std::string& exposition, const std::string& series) {
  std::size_t at = 0;
  while ((at = exposition.find(series + " ", at)) != std::string::npos) {
    if (at == 0 || exposition[at - 1] == '\n') return std::strtod(exposition.c_str() + at + series.size() + 1, nullptr);
    at += series.size();
  }
  return -1;
}

}  // namespace graydebug::testing
