// The event recorder against the real API server: creation, aggregation, per-object rate limit.
#include <doctest/doctest.h>

#include "graydebug/kube/events.h"
#include "support/local_cluster.h"

using graydebug::kube::Client;
using graydebug::kube::EventRecorder;
using graydebug::kube::ListOptions;
using graydebug::kube::Resource;
using graydebug::testing::LocalCluster;
using nlohmann::json;

TEST_CASE("events: created on the object, repeats aggregated into a count, floods limited") {
  LocalCluster& c = LocalCluster::Shared();
  REQUIRE_MESSAGE(c.ok(), c.error());
  auto client = Client::Create(c.Rest()).value();
  auto cm = client->Create(Resource::ConfigMaps(), "default",
                           {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", "evented"}}}});
  REQUIRE(cm.ok());
  json object = cm.value();
  object["apiVersion"] = "v1";
  object["kind"] = "ConfigMap";
  EventRecorder::Options o;
  o.component = "graydebug-controller";
  o.burst = 5;
  {
    EventRecorder recorder(client, o);
    for (int i = 0; i < 10; ++i) recorder.Record(object, "Warning", "AttachFailed", "dlv refused the connection");
    recorder.Record(object, "Normal", "Active", "attached in 12ms");
    recorder.Flush();
    for (int i = 0; i < 10; ++i) recorder.Record(object, "Normal", "Flap" + std::to_string(i), "different each time");
    recorder.Flush();
    CHECK(recorder.sent() == 11 + 3);  // 10 repeats + 1, then 3 of the 10 distinct fit the burst of 5
    CHECK(recorder.dropped() == 7);
  }
  ListOptions lo;
  lo.field_selector = "involvedObject.name=evented";
  auto events = client->ListAll(Resource::Events(), "default", lo);
  REQUIRE(events.ok());
  std::map<std::string, json> by_reason;
  for (const auto& e : events->at("items")) by_reason[e["reason"]] = e;
  REQUIRE(by_reason.count("AttachFailed") == 1);
  CHECK(by_reason["AttachFailed"]["count"] == 10);
  CHECK(by_reason["AttachFailed"]["type"] == "Warning");
  CHECK(by_reason["AttachFailed"]["involvedObject"]["uid"] == object["metadata"]["uid"]);
  CHECK(by_reason["AttachFailed"]["source"]["component"] == "graydebug-controller");
  CHECK(by_reason["Active"]["count"] == 1);
  CHECK(events->at("items").size() == 2 + 3);
}
