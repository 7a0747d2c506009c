// The local control plane (hack/cluster) with the DebugSession CRD, driven by the real kubectl.
#include <doctest/doctest.h>

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "support/eventually.h"
#include "support/local_cluster.h"

using graydebug::testing::LocalCluster;
using graydebug::testing::ProcessResult;
using graydebug::testing::SourceDir;
using nlohmann::json;

namespace {

LocalCluster& Cluster() {
  LocalCluster& c = LocalCluster::Shared();
  REQUIRE_MESSAGE(c.ok(), c.error());
  return c;
}

// Applies the CRD once and waits until it is Established.
LocalCluster& ClusterWithCrd() {
  LocalCluster& c = Cluster();
  static bool applied = false;
  if (!applied) {
    auto apply = c.Kubectl({"apply", "-f", SourceDir() + "/manifests/crds/"});
    REQUIRE_MESSAGE(apply.exit_code == 0, apply.err);
    auto wait = c.Kubectl({"wait", "--for=condition=Established", "--timeout=60s", "crd/debugsessions.graydebug.io"});
    REQUIRE_MESSAGE(wait.exit_code == 0, wait.err);
    applied = true;
  }
  return c;
}

json Session(const std::string& name, const json& spec) {
  return {{"apiVersion", "graydebug.io/v1alpha1"},
          {"kind", "DebugSession"},
          {"metadata", {{"name", name}}},
          {"spec", spec}};
}

// True while the process exists and is not a zombie waiting to be reaped.
bool Running(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'Z';
}

ProcessResult Create(LocalCluster& c, const json& obj) {
  return c.Kubectl({"create", "-f", "-"}, obj.dump());
}

}  // namespace

TEST_CASE("the control plane is ready, has namespace default and enforces RBAC") {
  LocalCluster& c = Cluster();
  auto readyz = c.Kubectl({"get", "--raw", "/readyz"});
  CHECK(readyz.exit_code == 0);
  CHECK(readyz.out == "ok");
  CHECK(c.Kubectl({"get", "namespace", "default"}).exit_code == 0);
  // An unknown user may do nothing: RBAC, not AlwaysAllow.
  auto anon = c.Kubectl({"auth", "can-i", "create", "pods", "--as=someone"});
  CHECK(anon.out.find("no") == 0);
  auto admin = c.Kubectl({"auth", "can-i", "create", "pods"});
  CHECK(admin.out.find("yes") == 0);
  auto version = c.Kubectl({"version", "-o", "json"});
  REQUIRE(version.exit_code == 0);
  auto v = json::parse(version.out);
  CHECK(v["serverVersion"]["gitVersion"] == "v1.37.2");
  CHECK(v["clientVersion"]["gitVersion"] == "v1.37.2");
}

TEST_CASE("the DebugSession CRD is established with short name, status subresource and printer columns") {
  LocalCluster& c = ClusterWithCrd();
  auto crd = c.Kubectl({"get", "crd", "debugsessions.graydebug.io", "-o", "json"});
  REQUIRE(crd.exit_code == 0);
  json j = json::parse(crd.out);
  CHECK(j["spec"]["names"]["shortNames"] == json::array({"dbgs"}));
  const json& version = j["spec"]["versions"][0];
  CHECK(version["name"] == "v1alpha1");
  CHECK(version["subresources"].contains("status"));
  std::vector<std::string> columns;
  for (const auto& col : version["additionalPrinterColumns"]) columns.push_back(col["name"]);
  CHECK(columns == std::vector<std::string>{"Phase", "Pod", "Release", "Expires", "Age"});
}

TEST_CASE("a DebugSession is created, defaulted, read back and shown with the printer columns") {
  LocalCluster& c = ClusterWithCrd();
  auto created = Create(c, Session("leak-hunt", {{"target", {{"pod", "order-v2-alpha-7d9f-x2x"}}},
                                                 {"reason", "heap grows 40 MB/h after v2-alpha"}}));
  REQUIRE_MESSAGE(created.exit_code == 0, created.err);
  auto got = c.Kubectl({"get", "debugsession", "leak-hunt", "-o", "json"});
  REQUIRE(got.exit_code == 0);
  json s = json::parse(got.out);
  CHECK(s["spec"]["target"]["pod"] == "order-v2-alpha-7d9f-x2x");
  CHECK(s["spec"]["ttl"] == "15m");  // schema default
  CHECK(s["spec"]["reason"] == "heap grows 40 MB/h after v2-alpha");

  // The status subresource: a status written on the main resource is ignored, on /status it sticks.
  auto status = c.Kubectl(
      {"patch", "dbgs", "leak-hunt", "--subresource=status", "--type=merge", "-p",
       R"({"status":{"phase":"Active","pod":"order-v2-alpha-7d9f-x2x","release":"v2-alpha","expiresAt":"2026-01-01T00:15:00Z"}})"});
  REQUIRE_MESSAGE(status.exit_code == 0, status.err);
  auto table = c.Kubectl({"get", "dbgs", "leak-hunt"});
  REQUIRE(table.exit_code == 0);
  CHECK(table.out.rfind("NAME        PHASE    POD                       RELEASE    EXPIRES                AGE", 0) ==
        0);
  CHECK(table.out.find("leak-hunt   Active   order-v2-alpha-7d9f-x2x   v2-alpha   2026-01-01T00:15:00Z") !=
        std::string::npos);
  auto main_patch = c.Kubectl({"patch", "dbgs", "leak-hunt", "--type=merge", "-p", R"({"status":{"phase":"Failed"}})"});
  CHECK(main_patch.exit_code == 0);  // accepted, but the status part is dropped
  CHECK(json::parse(c.Kubectl({"get", "dbgs", "leak-hunt", "-o", "json"}).out)["status"]["phase"] == "Active");
}

TEST_CASE("the schema rejects invalid DebugSessions with a message naming the field") {
  LocalCluster& c = ClusterWithCrd();
  struct Case {
    std::string name;
    json spec;
    std::string want;
  };
  for (const Case& k : std::vector<Case>{
           {"no-target", {{"ttl", "5m"}}, "spec.target: Required value"},
           {"empty-target", {{"target", json::object()}}, "exactly one of spec.target.pod and spec.target.selector"},
           {"both", {{"target", {{"pod", "a"}, {"selector", {{"matchLabels", {{"app", "x"}}}}}}}}, "exactly one of"},
           {"bad-ttl", {{"target", {{"pod", "a"}}}, {"ttl", "forever"}}, "spec.ttl"},
           {"long-ttl", {{"target", {{"pod", "a"}}}, {"ttl", "200h"}}, "spec.ttl must be between 1m and 168h"},
           {"bad-pod", {{"target", {{"pod", "Not_A_Pod"}}}}, "spec.target.pod"},
           {"bad-op",
            {{"target", {{"selector", {{"matchExpressions", {{{"key", "a"}, {"operator", "Near"}}}}}}}}},
            "Unsupported value: \"Near\""},
       }) {
    CAPTURE(k.name);
    auto r = Create(c, Session("invalid-" + k.name, k.spec));
    CHECK(r.exit_code != 0);
    CHECK(r.err.find(k.want) != std::string::npos);
    CHECK(c.Kubectl({"get", "dbgs", "invalid-" + k.name}).exit_code != 0);  // nothing was stored
  }
}

TEST_CASE("the spec is immutable except that ttl may be shortened") {
  LocalCluster& c = ClusterWithCrd();
  REQUIRE(Create(c, Session("immutable", {{"target", {{"pod", "p1"}}}, {"ttl", "1h"}})).exit_code == 0);
  auto patch = [&](const std::string& p) { return c.Kubectl({"patch", "dbgs", "immutable", "--type=merge", "-p", p}); };
  auto retarget = patch(R"({"spec":{"target":{"pod":"p2"}}})");
  CHECK(retarget.exit_code != 0);
  CHECK(retarget.err.find("spec.target is immutable") != std::string::npos);
  auto longer = patch(R"({"spec":{"ttl":"2h"}})");
  CHECK(longer.exit_code != 0);
  CHECK(longer.err.find("spec.ttl may only be shortened") != std::string::npos);
  auto reason = patch(R"({"spec":{"reason":"changed my mind"}})");
  CHECK(reason.exit_code != 0);
  CHECK(reason.err.find("spec.reason is immutable") != std::string::npos);
  auto shorter = patch(R"({"spec":{"ttl":"30m"}})");
  CHECK_MESSAGE(shorter.exit_code == 0, shorter.err);
  CHECK(json::parse(c.Kubectl({"get", "dbgs", "immutable", "-o", "json"}).out)["spec"]["ttl"] == "30m");
}

TEST_CASE("a Pod is stored and its IP is set through the pods/status subresource") {
  LocalCluster& c = Cluster();
  json pod = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata",
               {{"name", "order-v2-alpha-1"}, {"labels", {{"graydebug.io/inject", "true"}, {"version", "v2-alpha"}}}}},
              {"spec", {{"containers", {{{"name", "app"}, {"image", "shop/order:v2-alpha"}}}}}}};
  auto created = c.Kubectl({"create", "-f", "-"}, pod.dump());
  REQUIRE_MESSAGE(created.exit_code == 0, created.err);
  auto patched = c.Kubectl({"patch", "pod", "order-v2-alpha-1", "--subresource=status", "--type=merge", "-p",
                            R"({"status":{"phase":"Running","podIP":"127.0.0.1","podIPs":[{"ip":"127.0.0.1"}]}})"});
  REQUIRE_MESSAGE(patched.exit_code == 0, patched.err);
  json got = json::parse(c.Kubectl({"get", "pod", "order-v2-alpha-1", "-o", "json"}).out);
  CHECK(got["status"]["podIP"] == "127.0.0.1");
  CHECK(got["status"]["phase"] == "Running");
  // An invalid IP is refused by the API server's validation.
  auto bad = c.Kubectl({"patch", "pod", "order-v2-alpha-1", "--subresource=status", "--type=merge", "-p",
                        R"({"status":{"podIP":"not-an-ip","podIPs":[{"ip":"not-an-ip"}]}})"});
  CHECK(bad.exit_code != 0);
  CHECK(c.Kubectl({"delete", "pod", "order-v2-alpha-1", "--grace-period=0", "--wait=false"}).exit_code == 0);
}

TEST_CASE("a second cluster runs beside the first and stops when its owner process exits") {
  LocalCluster& first = Cluster();  // keeps running throughout
  std::string tmpl = (std::filesystem::temp_directory_path() / "graydebug-owner-XXXXXX").string();
  REQUIRE(mkdtemp(tmpl.data()) != nullptr);
  // The owner is a shell that starts the cluster with its own PID as owner, then exits.
  auto up =
      graydebug::testing::Run({"bash", "-c",
                               SourceDir() + "/hack/cluster up --dir " + tmpl + " --owner-pid $$ >/dev/null && cat " +
                                   tmpl + "/kube-apiserver.pid " + tmpl + "/etcd.pid"},
                              "", std::chrono::seconds(300));
  REQUIRE_MESSAGE(up.exit_code == 0, up.err);
  std::istringstream pids(up.out);
  pid_t apiserver = 0, etcd = 0;
  pids >> apiserver >> etcd;
  REQUIRE(apiserver > 0);
  REQUIRE(etcd > 0);
  // The watchdog notices the owner is gone and stops both processes; wait for it (bounded). Its
  // `down` removes `ready` last, after the processes: until then it is still deleting files in
  // the directory, and removing the directory beside it would race with it.
  CHECK(graydebug::testing::Eventually(
      [&] { return !Running(apiserver) && !Running(etcd) && !std::filesystem::exists(tmpl + "/ready"); },
      std::chrono::seconds(30)));
  CHECK(first.Kubectl({"get", "--raw", "/readyz"}).out == "ok");
  std::error_code ignored;
  std::filesystem::remove_all(tmpl, ignored);
}
