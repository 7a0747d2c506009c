// The informer against the real control plane: sync, live changes, API server outages, relists.
#include <doctest/doctest.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>

#include "graydebug/kube/informer.h"
#include "support/eventually.h"
#include "support/local_cluster.h"

using graydebug::kube::Client;
using graydebug::kube::EventHandlers;
using graydebug::kube::Informer;
using graydebug::kube::InformerOptions;
using graydebug::kube::PatchType;
using graydebug::kube::Resource;
using graydebug::testing::LocalCluster;
using nlohmann::json;

namespace {

std::shared_ptr<Client> ClientFor(const graydebug::kube::RestConfig& cfg) {
  graydebug::kube::ClientOptions o;
  o.max_retries = 1;
  auto c = Client::Create(cfg, o);
  REQUIRE_MESSAGE(c.ok(), c.error().ToString());
  return c.value();
}

json Cm(const std::string& name, const std::string& label, const std::string& v) {
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"name", name}, {"labels", {{"informer", label}}}}},
          {"data", {{"v", v}}}};
}

using graydebug::testing::Eventually;

// The informer's cache equals the server's list, item by item (name -> data.v).
std::map<std::string, std::string> View(const std::vector<json>& items) {
  std::map<std::string, std::string> m;
  for (const auto& i : items) m[i["metadata"]["name"]] = i["data"].value("v", "");
  return m;
}

struct Counting {
  std::atomic<int> adds{0}, updates{0}, deletes{0};
  EventHandlers Handlers() {
    return {[this](const json&) { adds++; }, [this](const json&, const json&) { updates++; },
            [this](const json&) { deletes++; }};
  }
};

void OutageTest(LocalCluster& cluster, const std::string& label, bool compact) {
  auto client = ClientFor(cluster.Rest());
  const Resource cm = Resource::ConfigMaps();
  for (int i = 0; i < 5; ++i)
    REQUIRE(client->Create(cm, "default", Cm(label + "-" + std::to_string(i), label, "0")).ok());
  InformerOptions o;
  o.label_selector = "informer=" + label;
  o.backoff_base = std::chrono::milliseconds(100);
  o.backoff_cap = std::chrono::milliseconds(1000);
  o.name = label;
  Informer informer(client, cm, "default", o);
  Counting counts;
  informer.AddHandlers(counts.Handlers());
  informer.Start();
  REQUIRE(Eventually([&] { return informer.HasSynced() && informer.Size() == 5; }));

  // Outage: the informer's API server goes away; changes are made through a second one.
  auto other = ClientFor(cluster.AddApiServer());
  REQUIRE(!other->config().server.empty());
  REQUIRE(cluster.StopApiServer());
  REQUIRE(other->Create(cm, "default", Cm(label + "-new", label, "1")).ok());
  REQUIRE(other->Patch(cm, "default", label + "-1", PatchType::kMerge, R"({"data":{"v":"changed"}})").ok());
  REQUIRE(other->Delete(cm, "default", label + "-2").ok());
  REQUIRE(other->Delete(cm, "default", label + "-3").ok());
  std::string last_rv;
  if (compact) {
    auto marker = other->Create(cm, "default", Cm(label + "-marker", "none", "x"));
    REQUIRE(marker.ok());
    auto marker2 = other->Create(cm, "default", Cm(label + "-marker2", "none", "x"));
    REQUIRE(marker2.ok());
    REQUIRE(cluster.CompactEtcd(marker2->at("metadata").at("resourceVersion").get<std::string>()));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // let the informer notice the outage
  REQUIRE(cluster.StartApiServer());

  graydebug::kube::ListOptions lo;
  lo.label_selector = o.label_selector;
  auto truth = other->ListAll(cm, "default", lo);
  REQUIRE(truth.ok());
  auto want = View(truth->at("items").get<std::vector<json>>());
  CHECK(want.size() == 4);
  CHECK(Eventually([&] { return View(informer.List()) == want; }));
  CHECK(View(informer.List()) == want);
  CHECK(counts.deletes.load() >= 2);
  if (compact) CHECK(informer.Lists() >= 2);  // the 410 made it relist
  informer.Stop();
}

}  // namespace

TEST_CASE("informer: syncs, follows live changes, and calls handlers") {
  LocalCluster& cluster = LocalCluster::Shared();
  REQUIRE_MESSAGE(cluster.ok(), cluster.error());
  auto client = ClientFor(cluster.Rest());
  const Resource cm = Resource::ConfigMaps();
  for (int i = 0; i < 3; ++i) REQUIRE(client->Create(cm, "default", Cm("live-" + std::to_string(i), "live", "0")).ok());
  InformerOptions o;
  o.label_selector = "informer=live";
  o.page_size = 2;  // forces pagination in the list
  o.resync = std::chrono::milliseconds(200);
  Informer informer(client, cm, "default", o);
  Counting counts;
  informer.AddHandlers(counts.Handlers());
  CHECK_FALSE(informer.HasSynced());
  informer.Start();
  REQUIRE(Eventually([&] { return informer.HasSynced(); }));
  CHECK(informer.Size() == 3);
  CHECK(counts.adds.load() == 3);
  REQUIRE(client->Create(cm, "default", Cm("live-3", "live", "0")).ok());
  REQUIRE(client->Patch(cm, "default", "live-0", PatchType::kMerge, R"({"data":{"v":"1"}})").ok());
  REQUIRE(client->Delete(cm, "default", "live-1").ok());
  REQUIRE(client->Create(cm, "default", Cm("not-mine", "other", "0")).ok());
  CHECK(Eventually([&] {
    auto o0 = informer.Get("default/live-0");
    return informer.Size() == 3 && o0 && (*o0)["data"]["v"] == "1" && !informer.Get("default/live-1");
  }));
  CHECK_FALSE(informer.Get("default/not-mine").has_value());
  CHECK(counts.deletes.load() == 1);
  // Resync re-delivers every object as an update.
  int before = counts.updates.load();
  CHECK(Eventually([&] { return counts.updates.load() >= before + 3; }));
  informer.Stop();
  informer.Stop();  // idempotent
}

TEST_CASE("informer: stops promptly while a watch is open") {
  LocalCluster& cluster = LocalCluster::Shared();
  Informer informer(ClientFor(cluster.Rest()), Resource::ConfigMaps(), "default");
  informer.Start();
  REQUIRE(Eventually([&] { return informer.HasSynced(); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the watch is now open and idle
  auto t0 = std::chrono::steady_clock::now();
  informer.Stop();
  // Not a timing assertion: a hung Stop would hang the test (ctest's timeout catches it);
  // this only reports the time for the log.
  MESSAGE("stop took "
          << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count()
          << " ms");
}

TEST_CASE("informer: converges after kube-apiserver is stopped and restarted") {
  LocalCluster& cluster = LocalCluster::Shared();
  REQUIRE_MESSAGE(cluster.ok(), cluster.error());
  OutageTest(cluster, "outage", false);
}

TEST_CASE("informer: relists after a 410 Gone and notices deletes it missed") {
  LocalCluster uncached({"--watch-cache=false"});
  REQUIRE_MESSAGE(uncached.ok(), uncached.error());
  OutageTest(uncached, "gone", true);
}

namespace {

// A pod with most kinds of field a user writes (and the API server defaults): quantities in a
// form the server canonicalises, named and numeric probe ports, volumes, times in the status.
json RichPod(const std::string& name) {
  return json::parse(R"({
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": ")" +
                     name + R"(", "labels": {"informer": "protobuf", "zeta": "1", "alpha": "a"},
                 "annotations": {"note": "<b>&amp; \"quoted\"</b> 日本", "empty": ""}},
    "spec": {
      "initContainers": [{"name": "init", "image": "busybox", "command": ["true"]}],
      "containers": [
        {"name": "app", "image": "leaky-app:v1", "args": ["--port", "8080"],
         "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}, {"containerPort": 9090, "hostPort": 19090}],
         "env": [{"name": "A", "value": "1"}, {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                 {"name": "LIM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}}],
         "resources": {"limits": {"memory": "0.5Gi", "cpu": "1.5"}, "requests": {"memory": "128974848", "cpu": "250m"}},
         "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "initialDelaySeconds": 3, "periodSeconds": 5},
         "readinessProbe": {"tcpSocket": {"port": 8080}, "timeoutSeconds": 2},
         "startupProbe": {"exec": {"command": ["cat", "/tmp/ok"]}, "failureThreshold": 30},
         "securityContext": {"runAsUser": 1000, "runAsNonRoot": true, "allowPrivilegeEscalation": false,
                             "capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": true},
         "volumeMounts": [{"name": "scratch", "mountPath": "/tmp"}, {"name": "cfg", "mountPath": "/etc/cfg", "readOnly": true}]},
        {"name": "dlv", "image": "graydebug:v1", "stdin": false, "tty": false}],
      "volumes": [
        {"name": "scratch", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
        {"name": "cfg", "configMap": {"name": "c", "items": [{"key": "k", "path": "p", "mode": 256}], "defaultMode": 420, "optional": true}},
        {"name": "tok", "projected": {"sources": [{"secret": {"name": "s", "items": [{"key": "k", "path": "k"}]}},
                                                  {"downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}}]}}],
      "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30}],
      "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 10, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}}]}},
      "nodeSelector": {"kubernetes.io/os": "linux"},
      "terminationGracePeriodSeconds": 0, "activeDeadlineSeconds": 3600, "priority": 0,
      "dnsConfig": {"options": [{"name": "ndots", "value": "2"}]},
      "shareProcessNamespace": true, "enableServiceLinks": false
    }})");
}

std::map<std::string, std::string> Dumps(const Informer& informer) {
  std::map<std::string, std::string> m;
  for (const json& o : informer.List()) m[Informer::KeyOf(o)] = o.dump();
  return m;
}

}  // namespace

TEST_CASE("informer: lists pods as protobuf into exactly the objects a JSON list gives") {
  LocalCluster& cluster = LocalCluster::Shared();
  REQUIRE_MESSAGE(cluster.ok(), cluster.error());
  auto client = ClientFor(cluster.Rest());
  const Resource pods = Resource::Pods();
  // 40 pods of ~4.5 KB: a list of several reads (64 KiB each), so items arrive split across them.
  constexpr int kPods = 40;
  for (int i = 0; i < kPods; ++i) {
    const std::string name = "proto-" + std::to_string(i);
    auto created = client->Create(pods, "default", RichPod(name));
    REQUIRE_MESSAGE(created.ok(), created.error().ToString());
    // What a kubelet reports: times, IPs, container states.
    const std::string status = R"({"status": {"phase": "Running", "podIP": "10.0.0.)" + std::to_string(i + 1) +
                               R"(", "podIPs": [{"ip": "10.0.0.)" + std::to_string(i + 1) + R"("}],
        "hostIP": "127.0.0.1", "startTime": "2026-12-08T00:00:00Z", "qosClass": "Burstable",
        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-12-08T00:00:01Z"}],
        "containerStatuses": [{"name": "app", "ready": true, "restartCount": 2, "image": "leaky-app:v1", "imageID": "",
          "started": true, "state": {"running": {"startedAt": "2026-12-08T00:00:02Z"}},
          "lastState": {"terminated": {"exitCode": -1, "reason": "OOMKilled", "startedAt": null,
                                       "finishedAt": "2026-12-07T23:59:59Z"}}}]}})";
    auto patched = client->Patch(pods, "default", name, PatchType::kStrategicMerge, status, "status");
    REQUIRE_MESSAGE(patched.ok(), patched.error().ToString());
  }
  auto start = [&](const std::string& name, bool protobuf, bool from_cache, int64_t page) {
    InformerOptions o;
    o.label_selector = "informer=protobuf";
    o.protobuf = protobuf;
    o.first_list_from_cache = from_cache;
    o.page_size = page;
    o.name = name;
    auto inf = std::make_unique<Informer>(client, pods, "default", o);
    inf->Start();
    return inf;
  };
  auto as_json = start("json", false, false, 500);
  auto from_cache = start("protobuf-cache", true, true, 500);
  auto paged = start("protobuf-paged", true, false, 2);  // a consistent read in pages of 2
  for (Informer* inf : {as_json.get(), from_cache.get(), paged.get()}) {
    REQUIRE(Eventually([&] { return inf->HasSynced() && inf->Size() == kPods; }));
  }
  CHECK(as_json->ProtobufPages() == 0);
  CHECK(from_cache->ProtobufPages() >= 1);
  CHECK(paged->ProtobufPages() >= kPods / 2);
  for (Informer* inf : {from_cache.get(), paged.get()}) {
    CHECK_FALSE(inf->ProtobufFailed());
    CHECK(inf->SlowPages() == 0);
  }
  const auto want = Dumps(*as_json);
  REQUIRE(want.size() == kPods);
  CHECK(want.begin()->second.find("\"cpu\":\"1500m\"") != std::string::npos);  // canonicalised by the server
  CHECK(want.begin()->second.find("\"managedFields\"") == std::string::npos);
  for (Informer* inf : {from_cache.get(), paged.get()}) {
    const auto got = Dumps(*inf);
    for (const auto& [key, text] : want) {
      INFO(key);
      REQUIRE(got.count(key) == 1);
      CHECK(got.at(key) == text);
    }
  }
  // And exactly what kubectl's JSON is, managedFields aside: a GET of each pod.
  for (const auto& [key, text] : want) {
    auto got = client->Get(pods, "default", key.substr(key.find('/') + 1));
    REQUIRE(got.ok());
    got.value()["metadata"].erase("managedFields");
    got.value().erase("kind");
    got.value().erase("apiVersion");
    CHECK(got.value().dump() == text);
  }
  // The watch that follows is JSON and goes into the same cache.
  REQUIRE(client->Patch(pods, "default", "proto-0", PatchType::kMerge, R"({"metadata":{"labels":{"zeta":"2"}}})").ok());
  CHECK(Eventually([&] {
    auto o = from_cache->Get("default/proto-0");
    return o && (*o)["metadata"]["labels"]["zeta"] == "2";
  }));
  // The body really comes in pieces (what the informer decodes while the rest arrives).
  graydebug::kube::ListOptions streamed;
  streamed.label_selector = "informer=protobuf";
  streamed.prefer_protobuf = true;
  int pieces = 0;
  std::string body;
  auto listed = client->ListEachRaw(pods, "default", streamed, [&](Client::BodyReader& b) {
    while (b.Next(&body)) ++pieces;
    return Client::PageInfo{};
  });
  REQUIRE_MESSAGE(listed.ok(), listed.error().ToString());
  CHECK(body.substr(0, 4) == std::string("k8s\0", 4));
  CHECK(body.size() > 64 * 1024);
  CHECK(pieces > 1);
  // An error to a request that asked for protobuf comes as a protobuf Status, read as JSON's.
  graydebug::kube::ListOptions bad;
  bad.label_selector = "a in (";
  bad.prefer_protobuf = true;
  auto failed = client->ListEachRaw(pods, "default", bad, [](Client::BodyReader&) { return Client::PageInfo{}; });
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.error().kind == graydebug::kube::ErrorKind::kBadRequest);
  CHECK(failed.error().message.find("unable to parse requirement") != std::string::npos);
  for (int i = 0; i < kPods; ++i) client->Delete(pods, "default", "proto-" + std::to_string(i), 0);
}
