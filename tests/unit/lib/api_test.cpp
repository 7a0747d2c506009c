// The contracts every binary shares (include/graydebug/api): what one side writes, the other reads
// back, and hostile values never throw.
#include <doctest/doctest.h>

#include "graydebug/api/circuits.h"
#include "graydebug/api/debug_session.h"
#include "graydebug/api/pod.h"
#include "graydebug/api/probe.h"
#include "graydebug/json_read.h"
#include "graydebug/kube/time.h"

using namespace graydebug;
using json = nlohmann::json;

namespace {

json PodWithStatus(const json& annotation_value) {
  return {{"metadata", {{"annotations", {{api::kStatusAnnotation, annotation_value}}}}}};
}

}  // namespace

TEST_CASE("api: json_read reads members by type and never throws") {
  json j = {{"s", "x"}, {"i", 7}, {"d", 2.5}, {"b", true}, {"o", {{"k", 1}}}, {"a", {1, 2}}, {"n", nullptr}};
  CHECK(jsonr::Str(j, "s") == "x");
  CHECK(jsonr::Str(j, "i").empty());
  CHECK(jsonr::Int(j, "i") == 7);
  CHECK(jsonr::Int(j, "d", -1) == -1);
  CHECK(*jsonr::Number(j, "d") == 2.5);
  CHECK_FALSE(jsonr::Number(j, "s"));
  CHECK(jsonr::Bool(j, "b"));
  CHECK(jsonr::Bool(j, "s", true));
  CHECK(jsonr::Obj(j, "o").size() == 1);
  CHECK(jsonr::Obj(j, "a").empty());
  CHECK(jsonr::Arr(j, "a").size() == 2);
  CHECK(jsonr::Arr(j, "o").empty());
  for (const json& odd : {json(), json(3), json("text"), json::array({1})}) {
    CHECK(jsonr::Str(odd, "s").empty());
    CHECK(jsonr::Obj(odd, "o").is_object());
    CHECK(jsonr::Arr(odd, "a").is_array());
    CHECK(jsonr::Int(odd, "i", 9) == 9);
  }
}

TEST_CASE("api: the injection status annotation round-trips and rejects hostile values") {
  api::InjectionStatus s;
  s.version = "0.1.0";
  s.target = "app";
  s.dlv_port = 40000;
  s.agent_port = 9102;
  s.dlv_user = "target-uid";
  json pod = PodWithStatus(s.ToJson().dump());
  auto back = api::InjectionStatus::OfPod(pod);
  REQUIRE(back);
  CHECK(back->containers == std::vector<std::string>{api::kDlvContainer, api::kAgentContainer});
  CHECK(back->target == "app");
  CHECK(back->dlv_port == 40000);
  CHECK(back->agent_port == 9102);
  CHECK(back->dlv_user == "target-uid");
  CHECK(api::DlvPortOf(pod, 2345) == 40000);

  CHECK_FALSE(api::InjectionStatus::OfPod(json::object()));
  CHECK_FALSE(api::InjectionStatus::OfPod(PodWithStatus("not json")));
  CHECK_FALSE(api::InjectionStatus::OfPod(PodWithStatus(42)));
  CHECK_FALSE(api::InjectionStatus::OfPod(json("pod")));
  CHECK(api::DlvPortOf(PodWithStatus(R"({"dlvPort":70000})"), 2345) == 2345);
  CHECK(api::DlvPortOf(PodWithStatus(R"({"dlvPort":"1"})"), 2345) == 2345);
  CHECK(api::DlvPortOf(PodWithStatus(R"({"dlvPort":-5,"containers":"x","target":7})"), 2345) == 2345);
}

TEST_CASE("api: the agent port and the release of a pod") {
  auto agent = [](json ports) { return json{{"name", api::kAgentContainer}, {"ports", std::move(ports)}}; };
  json pod = {
      {"spec",
       {{"containers",
         {{{"name", "app"}},
          agent({{{"name", "x"}, {"containerPort", 1}}, {{"name", api::kAgentPortName}, {"containerPort", 9102}}})}}}}};
  CHECK(api::AgentPortOf(pod) == 9102);
  json native = {{"spec", {{"initContainers", {agent({{{"containerPort", 9200}}})}}}}};
  CHECK(api::AgentPortOf(native) == 9200);
  CHECK(api::AgentPortOf(json{{"spec", {{"containers", {agent(json::array())}}}}}) == 0);
  CHECK(api::AgentPortOf(json{{"spec", {{"containers", {agent({{{"containerPort", 99999}}})}}}}}) == 0);
  CHECK(api::AgentPortOf(json{{"spec", {{"containers", "x"}}}}) == 0);

  json labelled = {{"metadata", {{"labels", {{"version", "v2"}}}, {"ownerReferences", {{{"name", "rs-1"}}}}}}};
  CHECK(api::ReleaseOf(labelled, "version") == "v2");
  CHECK(api::ReleaseOf(labelled, "track") == "rs-1");
  json owned = {{"metadata", {{"ownerReferences", {{{"name", "other"}}, {{"name", "rs-2"}, {"controller", true}}}}}}};
  CHECK(api::ReleaseOf(owned, "version") == "rs-2");
  CHECK(api::ReleaseOf(json{{"metadata", {{"ownerReferences", "x"}}}}, "version").empty());
  CHECK(api::ReleaseKey("shop", "v2") == "shop/v2");
  CHECK(api::ReleaseKey("shop", "").empty());
  CHECK(api::SplitReleaseKey("shop/v2.1") == std::pair<std::string, std::string>{"shop", "v2.1"});
  CHECK(api::SplitReleaseKey("nokey").second == "nokey");
}

TEST_CASE("api: session phases, conditions and the status readers see") {
  for (const char* p : {api::phase::kExpired, api::phase::kFailed, api::phase::kRejected, api::phase::kTerminated}) {
    CHECK(api::IsFinalPhase(p));
  }
  for (const char* p : {api::phase::kPending, api::phase::kAttaching, api::phase::kActive, ""}) {
    CHECK_FALSE(api::IsFinalPhase(p));
  }
  const Clock::Wall t0 = *kube::ParseTime("2026-11-26T10:00:00Z");
  json status = "hostile";
  api::SetCondition(status, api::condition::kReady, false, "Pending", "waiting", 1, t0);
  api::SetCondition(status, api::condition::kReady, false, "Pending", "still waiting", 2, t0 + std::chrono::hours(1));
  const json& ready = api::ConditionOf(status, api::condition::kReady);
  CHECK(ready["message"] == "still waiting");
  CHECK(ready["lastTransitionTime"] == "2026-11-26T10:00:00Z");  // the status did not change
  api::SetCondition(status, api::condition::kReady, true, "Active", "ok", 2, t0 + std::chrono::hours(2));
  CHECK(api::ConditionOf(status, api::condition::kReady)["lastTransitionTime"] == "2026-11-26T12:00:00Z");
  CHECK(api::ConditionOf(status, api::condition::kAttached).empty());

  json session = api::NewSession("shop", "s1", {{"target", {{"pod", "p"}}}});
  CHECK(session["apiVersion"] == api::kApiVersion);
  CHECK(session["kind"] == api::kSessionKind);
  session["status"] = {{"phase", api::phase::kActive},
                       {"pod", "p"},
                       {"release", "v2"},
                       {"expiresAt", "2026-11-26T10:15:00Z"},
                       {"finishedAt", "yesterday"},
                       {"attach", {{"attempts", 1e300}, {"latencySeconds", 0.25}}}};
  auto s = api::SessionStatus::Of(session);
  CHECK(s.phase == "Active");
  CHECK(s.release == "v2");
  REQUIRE(s.expires_at);
  CHECK(*s.expires_at == t0 + std::chrono::minutes(15));
  CHECK_FALSE(s.finished_at);
  CHECK(s.attach_attempts == 1000000000);
  CHECK(*s.attach_latency_seconds == 0.25);
  CHECK(api::SessionStatus::Of(json("x")).phase.empty());
}

TEST_CASE("api: the probe reply the agent writes is the one the controller reads") {
  api::ProbeReply r;
  r.ok = false;
  r.latency_seconds = 0.125;
  r.error = std::string("bad \xff utf-8");
  r.error_kind = api::kProbeSameUserOnly;
  r.shared = true;
  std::string wire = r.ToJson();
  CHECK(wire.back() == '\n');
  auto back = api::ProbeReply::Parse(wire);
  REQUIRE(back);
  CHECK_FALSE(back->ok);
  CHECK(back->latency_seconds == 0.125);
  CHECK(back->error_kind == api::kProbeSameUserOnly);
  CHECK(back->shared);
  CHECK_FALSE(back->cached);

  CHECK_FALSE(api::ProbeReply::Parse("<html>"));
  CHECK_FALSE(api::ProbeReply::Parse(R"({"ok":"yes"})"));
  auto odd = api::ProbeReply::Parse(R"({"ok":true,"latencySeconds":-3,"cached":"yes","errorKind":5})");
  REQUIRE(odd);
  CHECK(odd->latency_seconds == 0);
  CHECK_FALSE(odd->cached);
  CHECK(odd->error_kind.empty());
}

TEST_CASE("api: circuit entries: the writer's form decodes, hostile ones say why") {
  const Clock::Wall t0 = *kube::ParseTime("2026-11-26T10:00:00Z");
  CHECK(api::CircuitDataKey("shop/v2.1") == "shop.v2.1");
  CHECK(api::ReleaseKeyOfCircuitDataKey("shop.v2.1") == "shop/v2.1");
  CircuitBreaker b{BreakerConfig{}};
  for (int i = 0; i < 20; ++i) b.Record(i >= 2, t0 + std::chrono::seconds(i));
  REQUIRE(b.State(t0 + std::chrono::seconds(20)) == BreakerState::kOpen);
  json data = {{api::CircuitDataKey("shop/v2"), b.ToJson().dump()},
               {"bad.json", "{not json"},
               {"bad.state", R"({"state":"melted\n"})"},
               {"bad.type", 5},
               {"no.state", "{}"}};
  auto entries = api::DecodeCircuits(data, api::ReaderBreakerConfig());
  REQUIRE(entries.size() == 5);
  CHECK(entries[0].release_key == "bad/json");
  CHECK(entries[0].problem == "not a JSON object");
  CHECK(entries[1].problem == "unknown state \"melted\\n\"");  // quoted: one line
  CHECK(entries[2].problem == "not a JSON object");
  CHECK(entries[3].problem == "no state");
  REQUIRE(entries[4].breaker);
  CHECK(entries[4].release_key == "shop/v2");
  CHECK(entries[4].breaker->stored_state() == BreakerState::kOpen);
  CHECK(entries[4].breaker->attempts() == 20);
  CHECK(entries[4].breaker->failures() == 2);
  CHECK(entries[4].breaker->RetryAt() == b.RetryAt());
  CHECK(api::DecodeCircuits(json("x"), api::ReaderBreakerConfig()).empty());
}

TEST_CASE("time: one RFC 3339 formatter for metav1.Time, log lines and MicroTime") {
  const Clock::Wall t = *kube::ParseTime("2026-11-26T10:00:00Z") + std::chrono::microseconds(123456);
  CHECK(kube::FormatTime(t) == "2026-11-26T10:00:00Z");
  CHECK(kube::FormatTime(t, 3) == "2026-11-26T10:00:00.123Z");
  CHECK(kube::FormatTime(t, 6) == "2026-11-26T10:00:00.123456Z");
  CHECK(kube::FormatTime(t, 4) == "2026-11-26T10:00:00Z");
  CHECK(*kube::ParseTime(kube::FormatTime(t, 6)) == t);
}
