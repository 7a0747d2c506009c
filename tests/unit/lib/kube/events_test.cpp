// The event recorder over the in-memory API server: what a queued event keeps, and what the
// recorder forgets (the real API server's behaviour is in tests/integration/events_test.cpp).
#include "graydebug/kube/events.h"

#include <doctest/doctest.h>

#include "support/fake_apiserver.h"
#include "support/fake_clock.h"

using graydebug::FakeClock;
using graydebug::kube::EventRecorder;
using graydebug::kube::Resource;
using graydebug::testing::FakeApiServer;
using nlohmann::json;

namespace {

json Session(const std::string& name) {
  return {{"apiVersion", "graydebug.io/v1alpha1"},
          {"kind", "DebugSession"},
          {"metadata", {{"name", name}, {"namespace", "shop"}, {"uid", "uid-" + name}, {"resourceVersion", "7"}}},
          {"spec", {{"target", {{"pod", "p"}}}}},
          {"status", {{"phase", "Active"}}}};
}

}  // namespace

TEST_CASE("events: old aggregation keys and refilled buckets are forgotten; the Event names its object") {
  FakeClock clock;
  FakeApiServer server(&clock);
  auto client = server.NewClient();
  EventRecorder::Options o;
  o.burst = 300;
  o.refill = std::chrono::seconds(1);  // a bucket is full again 300 s after its last event
  o.aggregate_window = std::chrono::seconds(600);
  EventRecorder recorder(client, o);
  json a = Session("a");
  for (int i = 0; i < 300; ++i) recorder.Record(a, "Normal", "Step", "step " + std::to_string(i));
  recorder.Flush();
  CHECK(recorder.sent() == 300);
  CHECK(recorder.remembered() == 300 + 1);  // 300 keys, 1 bucket: nothing is old yet

  clock.Advance(std::chrono::seconds(601));
  json b = Session("b");
  for (int i = 0; i < 256; ++i) recorder.Record(b, "Normal", "Step", "step " + std::to_string(i));
  recorder.Flush();
  CHECK(recorder.sent() == 556);
  // The forget ran at the 256th send since the last one (the 212th of b's): a's keys and bucket
  // are gone; b's 256 keys and its bucket remain.
  CHECK(recorder.remembered() == 256 + 1);
  CHECK(recorder.dropped() == 0);

  auto events = server.List(Resource::Events(), "shop");
  REQUIRE(events.size() == 556);
  const json& io = events.front()["involvedObject"];
  CHECK(io["apiVersion"] == "graydebug.io/v1alpha1");
  CHECK(io["kind"] == "DebugSession");
  CHECK(io["namespace"] == "shop");
  CHECK(io["resourceVersion"] == "7");
  CHECK(io["uid"].get<std::string>().rfind("uid-", 0) == 0);
}

TEST_CASE(
    "events: an object with odd metadata types still gets its Event, in namespace default; one without a name none") {
  FakeClock clock;
  FakeApiServer server(&clock);
  auto client = server.NewClient();
  EventRecorder recorder(client, {});
  json odd = {{"apiVersion", 1}, {"kind", "Thing"}, {"metadata", {{"name", "x"}, {"namespace", 5}, {"uid", nullptr}}}};
  recorder.Record(odd, "Normal", "Seen", "odd");
  recorder.Record(json::array(), "Normal", "Seen", "not even an object");
  recorder.Flush();
  CHECK(recorder.sent() == 1);
  CHECK(recorder.dropped() == 1);  // nothing with a name to hang an Event on
  auto events = server.List(Resource::Events(), "default");
  int named_x = 0;
  for (const json& e : events) named_x += e["involvedObject"]["name"] == "x" ? 1 : 0;
  CHECK(named_x == 1);
}
