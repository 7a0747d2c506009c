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
