// graydebug-webhook against the real control plane: a MutatingWebhookConfiguration pointing at the
// real binary over TLS; kubectl creates pods and DebugSessions through it.
#include <doctest/doctest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "graydebug/base64.h"
#include "graydebug/kube/config.h"
#include "support/eventually.h"
#include "support/local_cluster.h"
#include "support/process.h"
#include "support/test_pki.h"
#include "support/webhook_process.h"

using graydebug::testing::Child;
using graydebug::testing::LocalCluster;
using graydebug::testing::ProcessResult;
using graydebug::testing::Run;
using graydebug::testing::TestPki;
using graydebug::testing::Webhook;
using graydebug::testing::WebhookConfiguration;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

json Pod(const std::string& name, bool gray) {
  json pod = {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata", {{"name", name}, {"labels", {{"app", "order"}, {"version", "v2-alpha"}}}}},
      {"spec",
       {{"containers",
         {{{"name", "order"}, {"image", "registry.example.com/order:v2"}, {"ports", {{{"containerPort", 8080}}}}}}}}}};
  if (gray) pod["metadata"]["labels"]["graydebug.io/inject"] = "true";
  return pod;
}

// An AdmissionReview of a gray pod's CREATE, as the API server sends it.
json PodReview(const std::string& uid) {
  return {{"apiVersion", "admission.k8s.io/v1"},
          {"kind", "AdmissionReview"},
          {"request",
           {{"uid", uid},
            {"kind", {{"group", ""}, {"version", "v1"}, {"kind", "Pod"}}},
            {"namespace", "shop"},
            {"operation", "CREATE"},
            {"object", Pod("p", true)}}}};
}

// POSTs FILE to the webhook's /mutate/pods; the body, a newline and the HTTP status.
ProcessResult PostReview(const Webhook& w, const std::string& file,
                         const std::string& content_type = "application/json") {
  return Run({"curl", "-sS", "--cacert", w.pki.ca_file(), "-H", "Content-Type: " + content_type, "--data-binary",
              "@" + file, "-o", "/dev/stdout", "-w", "\n%{http_code}", w.Url("/mutate/pods")});
}

std::vector<std::string> ContainerNames(const json& pod) {
  std::vector<std::string> out;
  for (const auto& c : pod["spec"]["containers"]) out.push_back(c["name"]);
  return out;
}

json GetPod(const LocalCluster& c, const std::string& ns, const std::string& name) {
  auto r = c.Kubectl({"get", "pod", "-n", ns, name, "-o", "json"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  return json::parse(r.out);
}

// The webhook configuration takes effect asynchronously in the API server: wait until a probe pod
// comes back injected.
bool WaitForWebhook(const LocalCluster& c, const std::string& ns) {
  for (int i = 0; i < 100; ++i) {
    json probe = Pod("probe-" + std::to_string(i), true);
    auto r = c.Kubectl({"create", "-n", ns, "--dry-run=server", "-o", "json", "-f", "-"}, probe.dump());
    if (r.exit_code == 0 && json::parse(r.out)["spec"]["containers"].size() == 3) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

}  // namespace

TEST_CASE("webhook: gray pods get sidecars through the real API server, others pass unchanged") {
  LocalCluster& c = LocalCluster::Shared();
  REQUIRE_MESSAGE(c.ok(), c.error());
  Webhook w;
  REQUIRE_MESSAGE(w.Start(c.kubeconfig()), w.pki.error(), w.child ? w.child->Output() : "");
  REQUIRE_MESSAGE(w.WaitReady(), w.child->Output());
  CHECK(w.Curl("/healthz").out.ends_with("200"));

  REQUIRE(c.Kubectl({"create", "namespace", "wh-shop"}).exit_code == 0);
  REQUIRE(c.Kubectl({"create", "namespace", "wh-strict"}).exit_code == 0);
  REQUIRE(c.Kubectl({"label", "namespace", "wh-strict", "pod-security.kubernetes.io/enforce=baseline"}).exit_code == 0);
  auto apply = c.Kubectl({"apply", "-f", "-"}, WebhookConfiguration(w, "graydebug-it"));
  REQUIRE_MESSAGE(apply.exit_code == 0, apply.err);
  REQUIRE_MESSAGE(WaitForWebhook(c, "wh-shop"), w.child->Output());

  {
    INFO("a gray pod is stored with dlv-server and graydebug-agent");
    auto r = c.Kubectl({"create", "-n", "wh-shop", "-f", "-"}, Pod("gray-1", true).dump());
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    json pod = GetPod(c, "wh-shop", "gray-1");
    CHECK(ContainerNames(pod) == std::vector<std::string>{"order", "dlv-server", "graydebug-agent"});
    CHECK(pod["spec"]["shareProcessNamespace"] == true);
    CHECK(pod["metadata"]["labels"]["graydebug.io/injected"] == "true");
    json status = json::parse(pod["metadata"]["annotations"]["graydebug.io/status"].get<std::string>());
    CHECK(status["containers"] == json{"dlv-server", "graydebug-agent"});
    CHECK(pod["spec"]["containers"][1]["securityContext"]["capabilities"]["add"] == json{"SYS_PTRACE"});
    CHECK(pod["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"] == "order");
  }
  {
    INFO("a plain pod is stored unchanged");
    REQUIRE(c.Kubectl({"create", "-n", "wh-shop", "-f", "-"}, Pod("plain-1", false).dump()).exit_code == 0);
    json pod = GetPod(c, "wh-shop", "plain-1");
    CHECK(ContainerNames(pod) == std::vector<std::string>{"order"});
    CHECK_FALSE(pod["metadata"].contains("annotations"));
    CHECK_FALSE(pod["metadata"]["labels"].contains("graydebug.io/injected"));
  }
  {
    INFO("kubectl create --dry-run=server shows the injection and stores nothing");
    auto r =
        c.Kubectl({"create", "-n", "wh-shop", "--dry-run=server", "-o", "json", "-f", "-"}, Pod("dry-1", true).dump());
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    CHECK(ContainerNames(json::parse(r.out)).size() == 3);
    CHECK(c.Kubectl({"get", "pod", "-n", "wh-shop", "dry-1"}).exit_code != 0);
  }
  {
    INFO("a namespace enforcing Pod Security baseline is skipped with pod-security");
    // The namespace informer may lag the label by a moment.
    json pod;
    for (int i = 0; i < 50; ++i) {
      auto r = c.Kubectl({"create", "-n", "wh-strict", "--dry-run=server", "-o", "json", "-f", "-"},
                         Pod("psa", true).dump());
      REQUIRE_MESSAGE(r.exit_code == 0, r.err);
      pod = json::parse(r.out);
      if (ContainerNames(pod).size() == 1) break;
      std::this_thread::sleep_for(100ms);
    }
    CHECK(ContainerNames(pod).size() == 1);
    CHECK(w.Metrics().find("reason=\"pod-security\"") != std::string::npos);
  }
  {
    INFO("DebugSessions get spec.requestedBy from the request's user, not from the user's text");
    REQUIRE(
        c.Kubectl({"apply", "-f", graydebug::testing::SourceDir() + "/manifests/crds/graydebug.io_debugsessions.yaml"})
            .exit_code == 0);
    REQUIRE(c.Kubectl({"wait", "--for=condition=Established", "crd/debugsessions.graydebug.io", "--timeout=30s"})
                .exit_code == 0);
    REQUIRE(c.Kubectl({"create", "role", "-n", "wh-shop", "dbgs-user", "--verb=create,get,patch",
                       "--resource=debugsessions.graydebug.io"})
                .exit_code == 0);
    REQUIRE(
        c.Kubectl({"create", "rolebinding", "-n", "wh-shop", "alice", "--role=dbgs-user", "--user=alice"}).exit_code ==
        0);
    json session = {{"apiVersion", "graydebug.io/v1alpha1"},
                    {"kind", "DebugSession"},
                    {"metadata", {{"name", "leak-hunt"}}},
                    {"spec",
                     {{"target", {{"pod", "gray-1"}}},
                      {"ttl", "15m"},
                      {"requestedBy", {{"username", "mallory"}, {"groups", {"system:masters"}}}}}}};
    ProcessResult r;
    for (int i = 0; i < 50; ++i) {  // the CRD's REST mapping may take a moment to appear
      r = c.Kubectl({"create", "-n", "wh-shop", "--as=alice", "--as-group=dev", "-f", "-"}, session.dump());
      if (r.exit_code == 0) break;
      std::this_thread::sleep_for(200ms);
    }
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    auto got = c.Kubectl({"get", "debugsession", "-n", "wh-shop", "leak-hunt", "-o", "json"});
    json by = json::parse(got.out)["spec"]["requestedBy"];
    CHECK(by["username"] == "alice");
    CHECK(std::find(by["groups"].begin(), by["groups"].end(), "dev") != by["groups"].end());
    CHECK(std::find(by["groups"].begin(), by["groups"].end(), "system:masters") == by["groups"].end());
    // The controller's finalizer comes with the session, so the controller has no PATCH to make.
    CHECK(json::parse(got.out)["metadata"]["finalizers"] == json::array({"graydebug.io/session-cleanup"}));
    // An update keeps it (the CRD's CEL rule would refuse a change; the webhook restores it first).
    auto patch = c.Kubectl({"patch", "debugsession", "-n", "wh-shop", "leak-hunt", "--as=alice", "--type=merge", "-p",
                            R"({"spec":{"ttl":"5m","requestedBy":{"username":"mallory","groups":[]}}})"});
    CHECK_MESSAGE(patch.exit_code == 0, patch.err);
    got = c.Kubectl({"get", "debugsession", "-n", "wh-shop", "leak-hunt", "-o", "json"});
    CHECK(json::parse(got.out)["spec"]["requestedBy"]["username"] == "alice");
    CHECK(json::parse(got.out)["spec"]["ttl"] == "5m");
    // Removing it (the way out when no controller runs) is not undone by the webhook on UPDATE.
    auto unfinal = c.Kubectl({"patch", "debugsession", "-n", "wh-shop", "leak-hunt", "--type=merge", "-p",
                              R"({"metadata":{"finalizers":null}})"});
    CHECK_MESSAGE(unfinal.exit_code == 0, unfinal.err);
    got = c.Kubectl({"get", "debugsession", "-n", "wh-shop", "leak-hunt", "-o", "json"});
    CHECK_FALSE(json::parse(got.out)["metadata"].contains("finalizers"));
  }
  {
    INFO("a rotated certificate is served to new connections with no failed admission");
    auto serial_of = [&]() {
      auto r = Run({"sh", "-c",
                    "openssl s_client -connect 127.0.0.1:" + std::to_string(w.port) +
                        " -servername localhost </dev/null 2>/dev/null | openssl x509 -noout -subject"});
      return r.out;
    };
    CHECK(serial_of().find("graydebug-webhook-1") != std::string::npos);
    REQUIRE(w.pki.Issue("next", "graydebug-webhook-2"));
    std::atomic<bool> done{false};
    std::atomic<int> created{0}, injected{0};
    std::thread load([&] {
      for (int i = 0; !done; ++i) {
        std::string name = "rot-" + std::to_string(i);
        auto r =
            c.Kubectl({"create", "-n", "wh-shop", "--dry-run=server", "-o", "json", "-f", "-"}, Pod(name, true).dump());
        if (r.exit_code != 0) continue;
        created++;
        if (json::parse(r.out)["spec"]["containers"].size() == 3) injected++;
      }
    });
    // Swap the pair the way Kubernetes does: new files, then renames over the old ones.
    std::filesystem::rename(w.pki.dir() + "/next.key", w.pki.dir() + "/serving.key.tmp");
    std::filesystem::rename(w.pki.dir() + "/next.crt", w.pki.dir() + "/serving.crt.tmp");
    std::filesystem::rename(w.pki.dir() + "/serving.key.tmp", w.pki.dir() + "/serving.key");
    std::filesystem::rename(w.pki.dir() + "/serving.crt.tmp", w.pki.dir() + "/serving.crt");
    bool rotated = false;
    for (int i = 0; i < 100 && !rotated; ++i) {
      std::this_thread::sleep_for(100ms);
      rotated = serial_of().find("graydebug-webhook-2") != std::string::npos;
    }
    while (created < 5) std::this_thread::sleep_for(50ms);
    done = true;
    load.join();
    CHECK(rotated);
    CHECK(created > 0);
    CHECK(injected == created.load());
  }
  {
    INFO("with the webhook stopped, gray pods are still admitted, unmodified");
    w.child->Signal(SIGTERM);
    CHECK(w.child->Wait(20s) == 0);
    CHECK(w.child->Output().find("\"msg\":\"stopped\"") != std::string::npos);
    auto r = c.Kubectl({"create", "-n", "wh-shop", "-f", "-"}, Pod("gray-down", true).dump());
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    CHECK(ContainerNames(GetPod(c, "wh-shop", "gray-down")) == std::vector<std::string>{"order"});
  }
  c.Kubectl({"delete", "mutatingwebhookconfiguration", "graydebug-it", "--ignore-not-found"});
  c.Kubectl({"delete", "namespace", "wh-shop", "wh-strict", "--wait=false"});
}

TEST_CASE("webhook: hostile HTTP gets 413/415/400 with one line, and never starves real requests") {
  Webhook w;
  REQUIRE_MESSAGE(w.Start(""), w.pki.error(), w.child ? w.child->Output() : "");
  REQUIRE_MESSAGE(w.WaitReady(), w.child->Output());
  CHECK(w.child->Output().find("running standalone") != std::string::npos);
  std::string dir = w.pki.dir();
  auto post = [&](const std::string& file, const std::string& content_type) {
    return PostReview(w, file, content_type);
  };
  auto write = [&](const std::string& name, const std::string& body) {
    std::ofstream(dir + "/" + name, std::ios::binary) << body;
    return dir + "/" + name;
  };
  json review = PodReview("u-1");
  std::string good = write("good.json", review.dump());
  struct Case {
    std::string file, content_type, status, want;
  };
  std::vector<Case> cases = {
      {write("big.json", std::string(7u << 20, ' ')), "application/json", "413", ""},
      {good, "text/plain", "415", "Content-Type"},
      {write("notjson.json", "{\"request\": nope"), "application/json", "400", "not JSON"},
      {write("norequest.json", "{\"apiVersion\":\"admission.k8s.io/v1\"}"), "application/json", "400", "no request"},
      {write("nouid.json", "{\"request\":{\"kind\":{\"kind\":\"Pod\"}}}"), "application/json", "400", "no uid"},
      {write("deep.json", std::string(100000, '[') + std::string(100000, ']')), "application/json", "400", "deeper"},
      {write("utf8.json", "{\"request\":{\"uid\":\"\xc3\x28\"}}"), "application/json", "400", "not JSON"},
  };
  for (const Case& c : cases) {
    auto r = post(c.file, c.content_type);
    CAPTURE(c.file);
    CHECK(r.out.ends_with(c.status));
    std::string body = r.out.substr(0, r.out.rfind('\n'));
    CHECK(body.find('\n') == std::string::npos);
    if (!c.want.empty()) CHECK_MESSAGE(body.find(c.want) != std::string::npos, body);
  }
  auto ok = post(good, "application/json");
  REQUIRE(ok.out.ends_with("200"));
  json reply = json::parse(ok.out.substr(0, ok.out.rfind('\n')));
  CHECK(reply["response"]["uid"] == "u-1");
  CHECK(reply["response"]["patchType"] == "JSONPatch");
  CHECK(w.Curl("/mutate/pods").out.ends_with("405"));
  CHECK(w.Curl("/nope").out.ends_with("404"));

  // Idle TLS connections and clients that send half a request, beside 300 concurrent real ones.
  std::vector<std::unique_ptr<Child>> idle;
  for (int i = 0; i < 20; ++i) {
    idle.push_back(Child::Spawn(
        {"sh", "-c", "sleep 60 | openssl s_client -quiet -connect 127.0.0.1:" + std::to_string(w.port)}, "/dev/null"));
    idle.push_back(Child::Spawn({"sh", "-c",
                                 "(printf 'POST /mutate/pods HTTP/1.1\\r\\nHost: x\\r\\nContent-Type: "
                                 "application/json\\r\\nContent-Length: 1000\\r\\n\\r\\n{'; "
                                 "sleep 60) | openssl s_client -quiet -connect 127.0.0.1:" +
                                     std::to_string(w.port)},
                                "/dev/null"));
  }
  // Wait until the 40 stalled clients really hold connections, so the burst below runs beside them.
  auto held = [&] {
    auto r = Run({"ss", "-Htn", "state", "established", "( sport = :" + std::to_string(w.port) + " )"});
    return std::count(r.out.begin(), r.out.end(), '\n');
  };
  for (int i = 0; i < 200 && held() < 40; ++i) std::this_thread::sleep_for(50ms);
  REQUIRE(held() >= 40);
  std::string urls = write("urls.txt", [&] {
    std::string cfg;
    for (int i = 0; i < 300; ++i) {
      cfg += "url = \"" + w.Url("/mutate/pods") + "\"\n-o /dev/null\n";
    }
    return cfg;
  }());
  auto burst = Run({"curl", "-sS", "--parallel", "--parallel-max", "300", "--cacert", w.pki.ca_file(), "-H",
                    "Content-Type: application/json", "--data-binary", "@" + good, "-w", "%{http_code}\n", "-K", urls},
                   "", 120s);
  int ok_count = 0;
  std::istringstream codes(burst.out);
  for (std::string line; std::getline(codes, line);) ok_count += line == "200";
  CHECK_MESSAGE(ok_count == 300, burst.err);
  for (auto& c : idle) c->Signal(SIGKILL);
  // Still healthy, and the metrics counted every class of answer.
  CHECK(w.Curl("/healthz").out.ends_with("200"));
  std::string m = w.Metrics();
  CHECK(m.find("graydebug_admission_requests_total{reason=\"unsupported-media-type\",result=\"error\"} 1") !=
        std::string::npos);
  CHECK(m.find("graydebug_admission_requests_total{reason=\"pod\",result=\"injected\"} 301") != std::string::npos);
  w.child->Signal(SIGTERM);
  CHECK(w.child->Wait(20s) == 0);
}

TEST_CASE("webhook: after SIGTERM with --shutdown-delay it is not ready but still injects, then exits") {
  // What a rolling update or a deleted webhook pod relies on: the endpoint leaves the Service
  // (readiness 503) while requests the API server already routed here are still answered.
  Webhook w;
  REQUIRE_MESSAGE(w.Start("", "", {"--shutdown-delay=10s"}), w.pki.error(), w.child ? w.child->Output() : "");
  REQUIRE_MESSAGE(w.WaitReady(), w.child->Output());
  std::string body = w.pki.dir() + "/drain.json";
  std::ofstream(body) << PodReview("u-drain").dump();
  w.child->Signal(SIGTERM);
  bool draining = false;
  for (int i = 0; i < 100 && !draining; ++i) {
    auto r = w.Curl("/readyz");
    draining = r.out.ends_with("503") && r.out.find("shutting down") != std::string::npos;
    if (!draining) std::this_thread::sleep_for(50ms);
  }
  CHECK_MESSAGE(draining, w.child->Output());
  auto r = PostReview(w, body);
  REQUIRE_MESSAGE(r.out.ends_with("200"), r.out, r.err);
  json reply = json::parse(r.out.substr(0, r.out.rfind('\n')));
  CHECK(reply["response"]["uid"] == "u-drain");
  CHECK(reply["response"]["patchType"] == "JSONPatch");
  CHECK(w.child->Wait(60s) == 0);
  CHECK(w.child->Output().find("serving for the shutdown delay") != std::string::npos);
}

TEST_CASE("webhook: a changed --config takes effect live, a broken change is refused, and both are counted") {
  // What a ConfigMap edit does to a running webhook (the mounted file changes in place).
  Webhook w;
  REQUIRE(w.pki.ok());
  const std::string dir = w.pki.dir(), config = dir + "/injection.yaml";
  auto write_config = [&](const std::string& text) {
    std::ofstream(config + ".tmp", std::ios::binary) << text;
    std::filesystem::rename(config + ".tmp", config);
  };
  write_config("dlv:\n  port: 2345\n");
  REQUIRE_MESSAGE(w.Start("", config), w.pki.error(), w.child ? w.child->Output() : "");
  REQUIRE_MESSAGE(w.WaitReady(), w.child->Output());
  const std::string review = dir + "/review.json";
  std::ofstream(review, std::ios::binary) << PodReview("u-config").dump();
  auto patch = [&] {  // the decoded patch of a gray pod's review, "" when not answered 200
    ProcessResult r = PostReview(w, review);
    if (!r.out.ends_with("\n200")) return std::string();
    json reply = json::parse(r.out.substr(0, r.out.rfind('\n')), nullptr, false);
    if (!reply.is_object() || !reply["response"].contains("patch")) return std::string();
    std::string decoded;
    if (!graydebug::kube::DecodeBase64(reply["response"]["patch"].get<std::string>(), &decoded)) return std::string();
    return decoded;
  };
  auto counted = [&](const std::string& result, int n) {
    return w.Metrics().find("graydebug_webhook_config_reloads_total{result=\"" + result + "\"} " + std::to_string(n)) !=
           std::string::npos;
  };
  CHECK(patch().find("2345") != std::string::npos);
  CHECK(counted("applied", 0));

  write_config("dlv:\n  port: 40000\n");
  CHECK_MESSAGE(graydebug::testing::Eventually([&] { return counted("applied", 1); }, 30s), w.Metrics());
  std::string changed = patch();
  CHECK(changed.find("40000") != std::string::npos);
  CHECK(changed.find("2345") == std::string::npos);

  write_config("dlv:\n  port: 99999\n");
  CHECK_MESSAGE(graydebug::testing::Eventually([&] { return counted("refused", 1); }, 30s), w.Metrics());
  CHECK(patch().find("40000") != std::string::npos);  // the config in force stays
  CHECK(counted("applied", 1));
  CHECK(w.child->Output().find("injection config change refused") != std::string::npos);
  w.child->Signal(SIGTERM);
  CHECK(w.child->Wait(20s) == 0);
}
