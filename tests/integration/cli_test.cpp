// kubectl-graydebug against the real control plane and the real graydebug-controller, attaching to a
// local gray pod (the real leaky app, launch-dlv, dlv and agent; podIP 127.0.0.1). The control plane
// has no kubelet, so a real `kubectl port-forward` fails: that is tested as the failure path, and a
// stand-in kubectl (a shell script that says "Forwarding from" and sleeps) tests the happy path.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "support/gray_pod.h"
#include "support/local_cluster.h"
#include "support/process.h"

using namespace graydebug::testing;
using nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

constexpr const char* kNs = "cli-shop";
constexpr const char* kCircuitsNs = "cli-system";

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::vector<std::string> Lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

std::string LastLine(const std::string& s) {
  auto lines = Lines(s);
  return lines.empty() ? "" : lines.back();
}

// The session name from "debugsession <ns>/<name> created" on stderr.
std::string CreatedName(const std::string& err) {
  std::string prefix = std::string("debugsession ") + kNs + "/";
  for (const auto& l : Lines(err)) {
    if (l.rfind(prefix, 0) == 0 && l.find(" created") != std::string::npos) {
      return l.substr(prefix.size(), l.find(' ', prefix.size()) - prefix.size());
    }
  }
  return "";
}

bool ProcessGone(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string content;
  if (!std::getline(stat, content)) return true;
  auto close = content.rfind(')');
  return close != std::string::npos && close + 2 < content.size() && content[close + 2] == 'Z';
}

// A stand-in for `kubectl port-forward ... LOCAL:REMOTE`: records its arguments ($dir/fake.args)
// and pid ($dir/fake.pid), prints kubectl's "Forwarding from" line and relays every connection on
// 127.0.0.1:LOCAL to 127.0.0.1:REMOTE. While $dir/refuse exists it accepts and closes instead,
// as a dlv that refuses other users does. Returns the script's path.
std::string WriteFakeKubectl(const std::string& dir) {
  const std::string relay = dir + "/relay.py", fake = dir + "/fake-kubectl";
  std::ofstream(relay) << R"(import os, re, socket, sys, threading
ports = [a for a in sys.argv[1:] if re.fullmatch(r"[0-9]+:[0-9]+", a)][0].split(":")
refuse = os.path.join(os.path.dirname(os.path.abspath(__file__)), "refuse")
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", int(ports[0])))
server.listen(16)
print("Forwarding from 127.0.0.1:%s -> %s" % (ports[0], ports[1]), flush=True)
def pipe(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
while True:
    conn, _ = server.accept()
    if os.path.exists(refuse):
        conn.close()
        continue
    upstream = socket.create_connection(("127.0.0.1", int(ports[1])))
    threading.Thread(target=pipe, args=(conn, upstream), daemon=True).start()
    threading.Thread(target=pipe, args=(upstream, conn), daemon=True).start()
)";
  {
    std::ofstream script(fake);
    script << "#!/bin/sh\necho \"$@\" > " << dir << "/fake.args\necho $$ > " << dir << "/fake.pid\nexec python3 "
           << relay << " \"$@\"\n";
  }
  fs::permissions(fake, fs::perms::owner_all);
  return fake;
}

// Everything the cases share: the cluster, the CRD, the controller, a live gray pod, a gray pod
// whose agent refuses (its own release, so its failures trip only its breaker).
struct Fixture {
  LocalCluster& c = LocalCluster::Shared();
  std::string dir, kubectl, error;
  std::unique_ptr<GrayPod> live, dead;
  std::unique_ptr<Child> controller;

  Fixture() {
    if (!c.ok()) {
      error = c.error();
      return;
    }
    dir = (fs::temp_directory_path() / ("graydebug-cli-" + std::to_string(getpid()))).string();
    fs::create_directories(dir);
    kubectl = Trim(Run({SourceDir() + "/hack/tools/bin-dir", "kubernetes"}).out) + "/kubectl";
    setenv("KUBECTL", kubectl.c_str(), 1);
    auto must = [&](const ProcessResult& r, const std::string& what) {
      if (r.exit_code != 0 && error.empty()) error = what + ": " + r.err;
    };
    must(c.Kubectl({"apply", "-f", SourceDir() + "/manifests/crds/graydebug.io_debugsessions.yaml"}), "crd");
    must(c.Kubectl({"wait", "--for=condition=Established", "crd/debugsessions.graydebug.io", "--timeout=30s"}),
         "crd wait");
    must(c.Kubectl({"create", "namespace", kNs}), "namespace");
    must(c.Kubectl({"create", "namespace", kCircuitsNs}), "namespace");
    live = std::make_unique<GrayPod>(dir, "order-v2-alpha-live");
    if (!live->StartProcesses()) error = "gray pod: " + (live->agent ? live->agent->Output() : std::string("no agent"));
    if (error.empty() && !CreateRunningPod(c, *live, kNs)) error = "live pod object";
    dead = std::make_unique<GrayPod>(dir, "order-v9-doomed-dead");
    dead->release = "v9-doomed";
    if (error.empty() && !CreateRunningPod(c, *dead, kNs)) error = "dead pod object";  // no processes: refused
    controller = Child::Spawn({Bin("graydebug-controller"), "--kubeconfig=" + c.kubeconfig(),
                               "--namespace=" + std::string(kNs), "--lease-namespace=" + std::string(kCircuitsNs),
                               "--metrics-addr=127.0.0.1:0", "--health-addr=127.0.0.1:0", "--probe-interval=5s"},
                              dir + "/controller.log");
    if (!controller) error = "controller did not start";
    if (error.empty() &&
        !Eventually([&] { return !LogField(controller->Output(), "controller started", "metrics_port").empty(); },
                    30s)) {
      error = "controller: " + controller->Output();
    }
  }
  ~Fixture() {
    controller.reset();
    for (auto* p : {live.get(), dead.get()}) {
      if (p == nullptr) continue;
      for (auto* child : {p->agent.get(), p->launcher.get(), p->app.get()}) {
        if (child != nullptr) child->Signal(SIGTERM);
      }
    }
    if (c.ok()) c.Kubectl({"delete", "namespace", kNs, kCircuitsNs, "--wait=false"});
    if (!dir.empty()) fs::remove_all(dir);
  }

  static Fixture& Get() {
    static Fixture f;
    return f;
  }

  // Runs the plugin with the test cluster's kubeconfig.
  ProcessResult Plugin(std::vector<std::string> args, std::chrono::seconds timeout = 120s) const {
    args.insert(args.begin(), Bin("kubectl-graydebug"));
    args.push_back("--kubeconfig=" + c.kubeconfig());
    return Run(args, "", timeout);
  }
  std::string Diagnostics() const { return controller ? controller->Output().substr(0, 4000) : ""; }
};

#define REQUIRE_FIXTURE(f) REQUIRE_MESSAGE((f).error.empty(), (f).error)

}  // namespace

TEST_CASE("kubectl-graydebug attach: a pod becomes Active, prints the connect line and launch.json") {
  Fixture& f = Fixture::Get();
  REQUIRE_FIXTURE(f);
  const int local = FreePort();
  auto r = f.Plugin({"attach", f.live->name, "-n", kNs, "--no-port-forward", "--local-port", std::to_string(local),
                     "--reason", "heap grows 40 MB/h", "--ttl", "20m"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err, f.Diagnostics());
  const std::string name = CreatedName(r.err);
  REQUIRE_MESSAGE(!name.empty(), r.err);
  CHECK(name.rfind(f.live->name + "-", 0) == 0);
  CHECK(name.size() == f.live->name.size() + 6);
  // Progress on stderr, the result on stdout.
  CHECK_MESSAGE(r.err.find("Active: attached in ") != std::string::npos, r.err);
  const std::string dlv = std::to_string(f.live->dlv_port);
  CHECK_MESSAGE(r.out.find("connect: kubectl port-forward -n " + std::string(kNs) + " pod/" + f.live->name + " " + dlv +
                           ":" + dlv + " && dlv connect 127.0.0.1:" + dlv) != std::string::npos,
                r.out);
  CHECK(r.out.find("debugsession " + std::string(kNs) + "/" + name + " is Active on pod " + f.live->name +
                   " (release v2-alpha)") != std::string::npos);
  CHECK(r.out.find("attached in ") != std::string::npos);
  CHECK(r.out.find("; expires at ") != std::string::npos);
  auto brace = r.out.find('{');
  REQUIRE(brace != std::string::npos);
  json launch = json::parse(r.out.substr(brace), nullptr, false);
  CHECK(launch == json{{"name", "graydebug " + name},
                       {"type", "go"},
                       {"request", "attach"},
                       {"mode", "remote"},
                       {"port", local},
                       {"host", "127.0.0.1"}});
  CHECK(r.err.find("No port-forward") != std::string::npos);

  // The object the plugin created.
  json s = GetSession(f.c, kNs, name);
  CHECK(Phase(s) == "Active");
  CHECK(s["spec"]["target"] == json{{"pod", f.live->name}});
  CHECK(s["spec"]["ttl"] == "20m");
  CHECK(s["spec"]["reason"] == "heap grows 40 MB/h");
}

TEST_CASE("kubectl-graydebug attach deploy/NAME: the session selects the deployment's pods") {
  Fixture& f = Fixture::Get();
  REQUIRE_FIXTURE(f);
  json selector = {{"matchLabels", {{"app", "order"}, {"version", "v2-alpha"}}}};
  json deploy = {{"apiVersion", "apps/v1"},
                 {"kind", "Deployment"},
                 {"metadata", {{"name", "order-v2-alpha"}, {"namespace", kNs}}},
                 {"spec",
                  {{"selector", selector},
                   {"template",
                    {{"metadata", {{"labels", selector["matchLabels"]}}},
                     {"spec", {{"containers", {{{"name", "order"}, {"image", "leaky-app"}}}}}}}}}}};
  auto created = f.c.Kubectl({"create", "-f", "-"}, deploy.dump());
  REQUIRE_MESSAGE(created.exit_code == 0, created.err);

  auto r = f.Plugin({"attach", "deploy/order-v2-alpha", "-n", kNs, "--no-port-forward"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err, f.Diagnostics());
  const std::string name = CreatedName(r.err);
  CHECK(name.rfind("order-v2-alpha-", 0) == 0);
  json s = GetSession(f.c, kNs, name);
  CHECK(s["spec"]["target"] == json{{"selector", selector}});
  CHECK(s["status"]["pod"] == f.live->name);  // the controller picked the ready injected pod
  CHECK(r.out.find("is Active on pod " + f.live->name) != std::string::npos);
  // Without --local-port the local port is the pod's dlv port.
  CHECK(r.out.find("\"port\": " + std::to_string(f.live->dlv_port)) != std::string::npos);

  // The same with a label selector (-l), as with kubectl.
  auto l = f.Plugin({"attach", "-l", "app=order,version=v2-alpha,!canary", "-n", kNs, "--no-port-forward"});
  REQUIRE_MESSAGE(l.exit_code == 0, l.err, f.Diagnostics());
  json ls = GetSession(f.c, kNs, CreatedName(l.err));
  CHECK(ls["spec"]["target"]["selector"]["matchLabels"] == selector["matchLabels"]);
  CHECK(ls["spec"]["target"]["selector"]["matchExpressions"][0]["operator"] == "DoesNotExist");
  CHECK(ls["status"]["pod"] == f.live->name);
  auto bad = f.Plugin({"attach", "-l", "app in (a,b)", "-n", kNs});
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("set-based selectors are not supported") != std::string::npos);

  // A deployment whose pods do not exist: progress says why, then the timeout, and the session it
  // gave up on is deleted.
  json lonely = deploy;
  lonely["metadata"]["name"] = "lonely";
  lonely["spec"]["selector"] = {{"matchLabels", {{"app", "lonely"}}}};
  lonely["spec"]["template"]["metadata"]["labels"] = {{"app", "lonely"}};
  REQUIRE(f.c.Kubectl({"create", "-f", "-"}, lonely.dump()).exit_code == 0);
  auto t = f.Plugin({"attach", "deploy/lonely", "-n", kNs, "--no-port-forward", "--timeout", "10s"});
  CHECK(t.exit_code == 1);
  CHECK_MESSAGE(t.err.find("Pending: PodNotFound: ") != std::string::npos, t.err);
  CHECK_MESSAGE(LastLine(t.err).find("timed out after 10s waiting for debugsession " + std::string(kNs) + "/lonely-") !=
                    std::string::npos,
                t.err);
  CHECK(LastLine(t.err).find("deleted it") != std::string::npos);
  const std::string abandoned = CreatedName(t.err);
  CHECK(Eventually([&] { return GetSession(f.c, kNs, abandoned).is_null(); }, 30s));
}

TEST_CASE("kubectl-graydebug attach: the real kubectl port-forward fails without a kubelet: one line, exit 1") {
  Fixture& f = Fixture::Get();
  REQUIRE_FIXTURE(f);
  setenv("KUBECTL", f.kubectl.c_str(), 1);
  auto r = f.Plugin({"attach", f.live->name, "-n", kNs, "--local-port", std::to_string(FreePort())}, 180s);
  CHECK_FALSE(r.timed_out);
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("dlv connect 127.0.0.1:") != std::string::npos);  // it got as far as Active
  const std::string last = LastLine(r.err);
  CHECK_MESSAGE(last.rfind("kubectl graydebug attach: port-forward to pod/" + f.live->name +
                               " failed (kubectl exited with status ",
                           0) == 0,
                r.err);
  CHECK(r.err.find("Starting port-forward: port-forward -n " + std::string(kNs) + " pod/" + f.live->name) !=
        std::string::npos);
  CHECK(r.out.find("Port-forward ready") == std::string::npos);
  // The port-forward never worked: the session is ended (issue #19: it stayed Active with nobody
  // able to attach) ...
  CHECK_MESSAGE(last.find("; ended debugsession " + std::string(kNs) + "/" + CreatedName(r.err) +
                          " (nobody can attach; --keep would leave it Active)") != std::string::npos,
                last);
  CHECK(Eventually([&] { return GetSession(f.c, kNs, CreatedName(r.err)).is_null(); }, 30s));
  // ... unless --keep.
  auto kept = f.Plugin({"attach", f.live->name, "-n", kNs, "--keep", "--local-port", std::to_string(FreePort())}, 180s);
  CHECK(kept.exit_code == 1);
  CHECK(LastLine(kept.err).find("stays Active until it expires at") != std::string::npos);
  CHECK(Phase(GetSession(f.c, kNs, CreatedName(kept.err))) == "Active");

  // No kubectl at all: one line.
  setenv("KUBECTL", (f.dir + "/no-such-kubectl").c_str(), 1);
  auto missing = f.Plugin({"attach", f.live->name, "-n", kNs});
  setenv("KUBECTL", f.kubectl.c_str(), 1);
  CHECK(missing.exit_code == 1);
  CHECK(LastLine(missing.err).find("is not an executable file") != std::string::npos);
}

TEST_CASE("kubectl-graydebug attach: the port-forward runs until SIGTERM; --keep keeps the session, else it ends") {
  Fixture& f = Fixture::Get();
  REQUIRE_FIXTURE(f);
  // A stand-in kubectl: records its arguments and pid, says what kubectl says and forwards
  // LOCAL to 127.0.0.1:REMOTE (the local gray pod's dlv), as kubectl port-forward would.
  const std::string fake = WriteFakeKubectl(f.dir);
  auto fake_pid = [&] {
    std::ifstream in(f.dir + "/fake.pid");
    pid_t pid = 0;
    in >> pid;
    return pid;
  };
  const std::string context = Trim(f.c.Kubectl({"config", "current-context"}).out);
  REQUIRE(!context.empty());
  setenv("KUBECTL", fake.c_str(), 1);
  const int local = FreePort();
  auto plugin =
      Child::Spawn({Bin("kubectl-graydebug"), "attach", f.live->name, "-n", kNs, "--local-port", std::to_string(local),
                    "--keep", "--kubeconfig=" + f.c.kubeconfig(), "--context=" + context},
                   f.dir + "/attach.log");
  setenv("KUBECTL", f.kubectl.c_str(), 1);
  REQUIRE(plugin);
  REQUIRE_MESSAGE(
      Eventually(
          [&] {
            return plugin->Output().find("Port-forward ready (dlv answered through it): dlv connect 127.0.0.1:" +
                                         std::to_string(local)) != std::string::npos;
          },
          60s),
      plugin->Output());
  std::string args;
  std::getline(std::ifstream(f.dir + "/fake.args"), args);
  CHECK(args == "port-forward -n " + std::string(kNs) + " pod/" + f.live->name + " " + std::to_string(local) + ":" +
                    std::to_string(f.live->dlv_port) + " --kubeconfig=" + f.c.kubeconfig() + " --context=" + context);
  const pid_t pid = fake_pid();
  REQUIRE(pid > 0);
  CHECK_FALSE(ProcessGone(pid));

  plugin->Signal(SIGTERM);
  CHECK(plugin->Wait(30s) == 0);
  std::string out = plugin->Output();
  CHECK_MESSAGE(out.find("Stopped the port-forward. debugsession " + std::string(kNs) + "/") != std::string::npos, out);
  CHECK(out.find("stays Active until it expires at") != std::string::npos);
  CHECK(ProcessGone(pid));  // kubectl stopped with it
  CHECK(Phase(GetSession(f.c, kNs, CreatedName(out))) == "Active");

  // Without --keep, an interrupt ends the session.
  setenv("KUBECTL", fake.c_str(), 1);
  auto ending = Child::Spawn({Bin("kubectl-graydebug"), "attach", f.live->name, "-n", kNs, "--port",
                              std::to_string(FreePort()), "--kubeconfig=" + f.c.kubeconfig()},
                             f.dir + "/attach-ending.log");
  setenv("KUBECTL", f.kubectl.c_str(), 1);
  REQUIRE(ending);
  REQUIRE_MESSAGE(Eventually([&] { return ending->Output().find("Port-forward ready") != std::string::npos; }, 60s),
                  ending->Output());
  ending->Signal(SIGINT);
  CHECK(ending->Wait(30s) == 0);
  std::string ended = ending->Output();
  CHECK_MESSAGE(ended.find("Stopped the port-forward and ended debugsession") != std::string::npos, ended);
  CHECK(Eventually([&] { return GetSession(f.c, kNs, CreatedName(ended)).is_null(); }, 30s));

  // SIGKILLed, the plugin still takes kubectl with it (parent-death signal).
  fs::remove(f.dir + "/fake.pid");
  setenv("KUBECTL", fake.c_str(), 1);
  auto killed = Child::Spawn({Bin("kubectl-graydebug"), "attach", f.live->name, "-n", kNs, "--local-port",
                              std::to_string(FreePort()), "--kubeconfig=" + f.c.kubeconfig()},
                             f.dir + "/attach-killed.log");
  setenv("KUBECTL", f.kubectl.c_str(), 1);
  REQUIRE(killed);
  REQUIRE_MESSAGE(Eventually([&] { return killed->Output().find("Port-forward ready") != std::string::npos; }, 60s),
                  killed->Output());
  const pid_t orphan = fake_pid();
  REQUIRE(orphan > 0);
  killed->Signal(SIGKILL);
  killed->Wait(10s);
  CHECK(Eventually([&] { return ProcessGone(orphan); }, 10s));
}

TEST_CASE("kubectl-graydebug attach: dlv refusing the forwarded connection ends the session with one line") {
  // issue #19: kubectl said "Forwarding from", the plugin said "Port-forward ready", and every
  // `dlv connect` was shut down by dlv (another user). Now one dlv call goes through the forward
  // first.
  Fixture& f = Fixture::Get();
  REQUIRE_FIXTURE(f);
  const std::string fake = WriteFakeKubectl(f.dir);
  std::ofstream(f.dir + "/refuse") << "";
  setenv("KUBECTL", fake.c_str(), 1);
  auto r = f.Plugin({"attach", f.live->name, "-n", kNs, "--local-port", std::to_string(FreePort())}, 120s);
  auto kept = f.Plugin({"attach", f.live->name, "-n", kNs, "--keep", "--local-port", std::to_string(FreePort())}, 120s);
  setenv("KUBECTL", f.kubectl.c_str(), 1);
  fs::remove(f.dir + "/refuse");
  CHECK_FALSE(r.timed_out);
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("Port-forward ready") == std::string::npos);
  const std::string last = LastLine(r.err);
  CHECK_MESSAGE(
      last.rfind("kubectl graydebug attach: dlv in pod/" + f.live->name + " did not answer through the port-forward (",
                 0) == 0,
      r.err);
  CHECK(last.find("--only-same-user=false") != std::string::npos);
  CHECK(last.find("; ended debugsession " + std::string(kNs) + "/" + CreatedName(r.err)) != std::string::npos);
  CHECK(Eventually([&] { return GetSession(f.c, kNs, CreatedName(r.err)).is_null(); }, 30s));
  CHECK(kept.exit_code == 1);
  CHECK(LastLine(kept.err).find("stays Active until it expires at") != std::string::npos);
  CHECK(Phase(GetSession(f.c, kNs, CreatedName(kept.err))) == "Active");
}

TEST_CASE("kubectl-graydebug attach: Failed and Rejected sessions exit 1 with the reason") {
  Fixture& f = Fixture::Get();
  REQUIRE_FIXTURE(f);
  auto r = f.Plugin({"attach", f.dead->name, "-n", kNs, "--no-port-forward"});
  CHECK(r.exit_code == 1);
  CHECK_MESSAGE(r.err.find("Attaching") != std::string::npos, r.err);
  const std::string last = LastLine(r.err);
  CHECK_MESSAGE(
      last.rfind("kubectl graydebug attach: debugsession " + std::string(kNs) + "/" + f.dead->name + "-", 0) == 0,
      r.err);
  CHECK(last.find(" Failed: AttachFailed: ") != std::string::npos);
  CHECK(last.find("refused") != std::string::npos);
  CHECK(last.find("(3 attempts)") != std::string::npos);
  CHECK(r.out.empty());

  // More failures on the same release trip its breaker (>= 20 attempts, all failed) ...
  json list = {{"apiVersion", "v1"}, {"kind", "List"}, {"items", json::array()}};
  for (int i = 0; i < 6; ++i) list["items"].push_back(Session("doomed-" + std::to_string(i), f.dead->name));
  REQUIRE(f.c.Kubectl({"create", "-n", kNs, "-f", "-"}, list.dump()).exit_code == 0);
  ProcessResult status;
  REQUIRE_MESSAGE(
      Eventually(
          [&] {
            status = f.Plugin({"status", "--circuits-namespace", kCircuitsNs});
            for (const auto& l : Lines(status.out)) {
              if (l.rfind(std::string(kNs) + "/v9-doomed ", 0) == 0 && l.find(" open ") != std::string::npos)
                return true;
            }
            return false;
          },
          90s),
      status.out, status.err, f.Diagnostics());
  // ... `status` shows it open with its retry time ...
  CHECK(status.out.find("RELEASE ") == 0);
  for (const auto& l : Lines(status.out)) {
    if (l.rfind(std::string(kNs) + "/v9-doomed ", 0) != 0) continue;
    CHECK_MESSAGE(l.find(" (in ") != std::string::npos, status.out);  // RETRY AT ... (in 59s)
    CHECK(l.find("Z (") != std::string::npos);
  }
  // ... and a new session for the release is Rejected.
  auto rejected = f.Plugin({"attach", f.dead->name, "-n", kNs, "--no-port-forward"});
  CHECK(rejected.exit_code == 1);
  CHECK_MESSAGE(LastLine(rejected.err).find(" Rejected: CircuitOpen: ") != std::string::npos, rejected.err);
}

TEST_CASE("kubectl-graydebug attach: wrong targets fail before anything is created") {
  Fixture& f = Fixture::Get();
  REQUIRE_FIXTURE(f);
  auto missing = f.Plugin({"attach", "no-such-pod", "-n", kNs});
  CHECK(missing.exit_code == 1);
  CHECK(missing.err == "kubectl graydebug attach: pod " + std::string(kNs) + "/no-such-pod not found\n");

  json plain = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata", {{"name", "plain"}, {"namespace", kNs}}},
                {"spec", {{"containers", {{{"name", "app"}, {"image", "busybox"}}}}}}};
  REQUIRE(f.c.Kubectl({"create", "-f", "-"}, plain.dump()).exit_code == 0);
  auto not_injected = f.Plugin({"attach", "plain", "-n", kNs});
  CHECK(not_injected.exit_code == 1);
  CHECK(not_injected.err.find("has no graydebug sidecars") != std::string::npos);
  CHECK(Lines(not_injected.err).size() == 1);

  auto no_deploy = f.Plugin({"attach", "deploy/nothing", "-n", kNs});
  CHECK(no_deploy.exit_code == 1);
  CHECK(no_deploy.err == "kubectl graydebug attach: deployment " + std::string(kNs) + "/nothing not found\n");

  auto bad = f.Plugin({"attach", "svc/order", "-n", kNs});
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("unsupported kind \"svc\"") != std::string::npos);
  auto hostile = f.Plugin({"attach", "../../etc/passwd\x1b[2J", "-n", kNs});
  CHECK(hostile.exit_code == 2);
  CHECK(hostile.err.find('\x1b') == std::string::npos);
  auto bad_ns = f.Plugin({"list", "-n", "Not/A/Namespace"});
  CHECK(bad_ns.exit_code == 2);

  // An unreachable API server (a port held bound, never listened on): one line, exit 1.
  const std::string kc = f.dir + "/unreachable.kubeconfig";
  std::ofstream(kc) << "apiVersion: v1\nkind: Config\nclusters:\n- name: x\n  cluster: {server: \"https://127.0.0.1:"
                    << NothingListens()
                    << "\", insecure-skip-tls-verify: false}\nusers:\n- name: x\n  user: {token: t}\n"
                    << "contexts:\n- name: x\n  context: {cluster: x, user: x}\ncurrent-context: x\n";
  auto down = Run({Bin("kubectl-graydebug"), "list", "--kubeconfig=" + kc});
  CHECK(down.exit_code == 1);
  CHECK(LastLine(down.err).rfind("kubectl graydebug list: cannot list debugsessions: ", 0) == 0);
  // A kubeconfig that does not exist.
  auto none = Run({Bin("kubectl-graydebug"), "end", "x", "--kubeconfig=" + f.dir + "/nope"});
  CHECK(none.exit_code == 1);
  CHECK(Lines(none.err).size() == 1);
}

TEST_CASE("kubectl-graydebug list and end") {
  Fixture& f = Fixture::Get();
  REQUIRE_FIXTURE(f);
  auto a = f.Plugin({"attach", f.live->name, "-n", kNs, "--no-port-forward"});
  REQUIRE_MESSAGE(a.exit_code == 0, a.err);
  const std::string name = CreatedName(a.err);

  auto list = f.Plugin({"list", "-n", kNs});
  REQUIRE(list.exit_code == 0);
  auto lines = Lines(list.out);
  REQUIRE(lines.size() >= 2);
  CHECK(lines[0].rfind("NAME", 0) == 0);
  for (const char* col : {"PHASE", "POD", "RELEASE", "LATENCY", "EXPIRES", "AGE"})
    CHECK(lines[0].find(col) != std::string::npos);
  bool found = false;
  const auto phase_col = lines[0].find("PHASE"), pod_col = lines[0].find("POD"), rel_col = lines[0].find("RELEASE");
  for (const auto& l : lines) {
    if (l.rfind(name + " ", 0) != 0) continue;
    found = true;
    CHECK(l.substr(phase_col, 7) == "Active ");
    CHECK(l.substr(pod_col, f.live->name.size()) == f.live->name);
    CHECK(l.substr(rel_col, 8) == "v2-alpha");
    CHECK(l.find("ms ") != std::string::npos);    // latency
    CHECK(l.find(" in 1") != std::string::npos);  // expires in 14m/15m
  }
  CHECK_MESSAGE(found, list.out);

  auto all = f.Plugin({"list", "-A"});
  REQUIRE(all.exit_code == 0);
  CHECK(all.out.rfind("NAMESPACE   NAME", 0) == 0);
  CHECK(all.out.find(std::string(kNs) + " ") != std::string::npos);

  auto as_json = f.Plugin({"list", "-n", kNs, "-o", "json"});
  REQUIRE(as_json.exit_code == 0);
  json parsed = json::parse(as_json.out, nullptr, false);
  REQUIRE(parsed.is_object());
  CHECK(parsed["kind"] == "DebugSessionList");
  CHECK(parsed["items"].size() >= 1);
  auto as_yaml = f.Plugin({"list", "-n", kNs, "-o", "yaml"});
  CHECK(as_yaml.exit_code == 0);
  CHECK(as_yaml.out.find("kind: DebugSessionList") != std::string::npos);

  auto empty = f.Plugin({"list", "-n", "cli-empty"});
  CHECK(empty.exit_code == 0);
  CHECK(empty.out.empty());
  CHECK(empty.err == "No resources found in cli-empty namespace.\n");

  auto end = f.Plugin({"end", name, "-n", kNs});
  CHECK_MESSAGE(end.exit_code == 0, end.err);
  CHECK(end.out == "debugsession " + std::string(kNs) + "/" + name + " ended\n");
  CHECK(GetSession(f.c, kNs, name).is_null());
  auto again = f.Plugin({"end", name, "-n", kNs});
  CHECK(again.exit_code == 1);
  CHECK(again.err == "kubectl graydebug end: debugsession " + std::string(kNs) + "/" + name + " not found\n");
  auto bad = f.Plugin({"end", "Bad_Name", "-n", kNs});
  CHECK(bad.exit_code == 2);
}

TEST_CASE("kubectl-graydebug status: no ConfigMap, a hand-made one, the controller's") {
  Fixture& f = Fixture::Get();
  REQUIRE_FIXTURE(f);
  auto none = f.Plugin({"status", "--circuits-namespace", "cli-nothing"});
  CHECK(none.exit_code == 0);
  CHECK(none.out == "no circuit breakers recorded yet (no configmap cli-nothing/graydebug-circuits)\n");

  REQUIRE(f.c.Kubectl({"create", "namespace", "cli-hand"}).exit_code == 0);
  const int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  json window = json::array();
  for (int i = 0; i < 25; ++i) window.push_back({now_ms - 1000 * i, i < 3 ? 0 : 1});
  json cm = {{"apiVersion", "v1"},
             {"kind", "ConfigMap"},
             {"metadata", {{"name", "graydebug-circuits"}, {"namespace", "cli-hand"}}},
             {"data",
              {{"shop.v2-alpha",
                json{{"state", "open"}, {"retryAt", now_ms + 3600000}, {"trips", 2}, {"window", window}}.dump()},
               {"shop.v1", json{{"state", "closed"}, {"retryAt", 0}, {"trips", 0}, {"window", {{now_ms, 1}}}}.dump()},
               {"pay.v3", "{garbage"}}}};
  REQUIRE(f.c.Kubectl({"create", "-f", "-"}, cm.dump()).exit_code == 0);
  auto hand = f.Plugin({"status", "--circuits-namespace", "cli-hand"});
  CHECK(hand.exit_code == 0);
  auto lines = Lines(hand.out);
  REQUIRE_MESSAGE(lines.size() == 4, hand.out);
  CHECK(lines[0] == "RELEASE         STATE        ATTEMPTS   FAILURES   TRIPS   RETRY AT");
  CHECK(lines[1] == "pay/v3          unreadable   -          -          -       -");
  CHECK(lines[2] == "shop/v1         closed       1          0          0       -");
  CHECK(lines[3].rfind("shop/v2-alpha   open         25         3          2       ", 0) == 0);
  CHECK(lines[3].find("(in 59m") != std::string::npos);
  CHECK(hand.err == "warning: breaker pay/v3 is unreadable: not a JSON object\n");

  auto only_shop = f.Plugin({"status", "--circuits-namespace", "cli-hand", "-n", "shop"});
  CHECK(Lines(only_shop.out).size() == 3);
  auto as_json = f.Plugin({"status", "--circuits-namespace", "cli-hand", "-o", "json"});
  json j = json::parse(as_json.out, nullptr, false);
  CHECK(j["shop/v2-alpha"]["state"] == "open");
  CHECK(j["shop/v2-alpha"]["attempts"] == 25);

  // The controller's own ConfigMap: the live pod's attaches are recorded for its release.
  ProcessResult real;
  CHECK_MESSAGE(Eventually(
                    [&] {
                      real = f.Plugin({"status", "--circuits-namespace", kCircuitsNs});
                      return real.out.find(std::string(kNs) + "/v2-alpha ") != std::string::npos;
                    },
                    30s),
                real.out, real.err);
  f.c.Kubectl({"delete", "namespace", "cli-hand", "--wait=false"});
}
