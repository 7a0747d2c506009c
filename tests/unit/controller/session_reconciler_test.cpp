#include "controller/session_reconciler.h"

#include <doctest/doctest.h>

#include "graydebug/api/debug_session.h"
#include "graydebug/kube/time.h"

using namespace graydebug::controller;
using graydebug::Clock;
using graydebug::kube::FormatTime;
using graydebug::kube::ParseTime;
using json = nlohmann::json;
namespace api = graydebug::api;
using namespace std::chrono_literals;

namespace {

const Clock::Wall kT0 = *ParseTime("2026-11-26T10:00:00Z");

json Session(const std::string& pod = "order-1", const std::string& ttl = "15m") {
  json s = {{"apiVersion", "graydebug.io/v1alpha1"},
            {"kind", "DebugSession"},
            {"metadata",
             {{"name", "leak-hunt"},
              {"namespace", "shop"},
              {"generation", 1},
              {"uid", "u1"},
              {"creationTimestamp", FormatTime(kT0)},
              {"finalizers", {api::kSessionFinalizer}}}},
            {"spec", {{"target", {{"pod", pod}}}, {"ttl", ttl}}}};
  return s;
}

json Pod(const std::string& name, const std::string& phase = "Running", const std::string& ip = "10.0.0.7",
         const std::string& created = "2026-11-26T09:00:00Z") {
  json p = {{"metadata",
             {{"name", name},
              {"namespace", "shop"},
              {"creationTimestamp", created},
              {"labels", {{"app", "order"}, {"version", "v2-alpha"}, {"graydebug.io/injected", "true"}}},
              {"annotations", {{"graydebug.io/status", R"({"dlvPort":2345,"agentPort":9102})"}}}}},
            {"spec",
             {{"containers",
               {{{"name", "order"}},
                {{"name", "dlv-server"}},
                {{"name", "graydebug-agent"}, {"ports", {{{"name", "gd-agent"}, {"containerPort", 9102}}}}}}}}},
            {"status", {{"phase", phase}}}};
  if (!ip.empty()) p["status"]["podIP"] = ip;
  return p;
}

struct Driver {
  SessionReconciler r{ReconcilerConfig{}};
  json session = Session();
  std::vector<json> pods = {Pod("order-1")};
  CircuitView circuit;
  std::optional<Clock::Wall> last_probe;  // what the adapter remembers

  // One reconcile as the controller does it: reconcile, probe when asked (with `probe`), store.
  SessionActions Step(Clock::Wall now, std::optional<ProbeResult> probe = ProbeResult{true, 0.012, "", false}) {
    SessionInput in{session, pods, circuit, std::nullopt, now, last_probe};
    SessionActions a = r.Reconcile(in);
    if (a.probe && probe) {
      in.probe = probe;
      a = r.Reconcile(in);
    }
    if (a.probed_at) last_probe = a.probed_at;
    session["status"] = a.status;
    if (a.add_finalizer) session["metadata"]["finalizers"] = {api::kSessionFinalizer};
    return a;
  }
  std::string Phase() const { return session["status"].value("phase", ""); }
};

const json* Condition(const json& status, const std::string& type) {
  for (const json& c : status["conditions"]) {
    if (c["type"] == type) return &c;
  }
  return nullptr;
}

}  // namespace

TEST_CASE("session: pending -> attaching -> active with latency, pod, release and connect line") {
  Driver d;
  SessionActions a = d.Step(kT0 + 1s);
  CHECK(d.Phase() == "Active");
  CHECK(a.status_changed);
  CHECK(a.active);
  CHECK(a.release == "shop/v2-alpha");
  REQUIRE(a.attempt);
  CHECK(a.attempt->ok);
  const json& st = d.session["status"];
  CHECK(st["pod"] == "order-1");
  CHECK(st["podIP"] == "10.0.0.7");
  CHECK(st["release"] == "v2-alpha");
  CHECK(st["attach"]["latencySeconds"] == 0.012);
  CHECK(st["attach"]["attempts"] == 1);
  CHECK(st["connect"] == "kubectl port-forward -n shop pod/order-1 2345:2345 && dlv connect 127.0.0.1:2345");
  CHECK(st["expiresAt"] == "2026-11-26T10:15:00Z");
  CHECK(st["startedAt"] == "2026-11-26T10:00:01Z");
  CHECK(st["observedGeneration"] == 1);
  CHECK((*Condition(st, "Attached"))["status"] == "True");
  CHECK((*Condition(st, "Ready"))["status"] == "True");
  CHECK((*Condition(st, "CircuitAllowed"))["status"] == "True");
  CHECK((*Condition(st, "Ready"))["observedGeneration"] == 1);
  REQUIRE(a.requeue_after);
  CHECK(*a.requeue_after == 30s);
  std::vector<std::string> reasons;
  for (const auto& e : a.events) reasons.push_back(e.reason);
  // Written in one status update, told in one Event that names the phases passed.
  CHECK(reasons == std::vector<std::string>{"Active"});
  CHECK(a.events[0].type == "Normal");
  CHECK(a.events[0].message == "attached to dlv in pod order-1 in 12ms (Pending -> Attaching -> Active)");
}

TEST_CASE("session: the probe address is the pod IP and the agent container's port") {
  Driver d;
  SessionInput in{d.session, d.pods, {}, std::nullopt, kT0, std::nullopt};
  SessionActions a = d.r.Reconcile(in);
  CHECK(a.probe);
  CHECK(a.probe_address == "10.0.0.7:9102");
  CHECK(a.add_finalizer == false);
  json no_finalizer = d.session;
  no_finalizer["metadata"].erase("finalizers");
  CHECK(d.r.Reconcile({no_finalizer, d.pods, {}, std::nullopt, kT0, std::nullopt}).add_finalizer);
}

TEST_CASE("session: attach failures retry with backoff, then Failed after 3 tries") {
  Driver d;
  ProbeResult fail{false, 0.5, "dlv refused the connection", false};
  SessionActions a = d.Step(kT0, fail);
  CHECK(d.Phase() == "Attaching");
  CHECK(*a.requeue_after == 1s);
  CHECK(a.attempt);
  CHECK_FALSE(a.attempt->ok);
  // Too early: no probe, wait out the backoff.
  a = d.Step(kT0 + 500ms, fail);
  CHECK_FALSE(a.attempt);
  CHECK(*a.requeue_after == 500ms);
  a = d.Step(kT0 + 1s, fail);
  CHECK(d.session["status"]["attach"]["attempts"] == 2);
  CHECK(*a.requeue_after == 2s);
  a = d.Step(kT0 + 3s, fail);
  CHECK(d.Phase() == "Failed");
  CHECK(d.session["status"]["attach"]["lastError"] == "dlv refused the connection");
  CHECK((*Condition(d.session["status"], "Ready"))["reason"] == "AttachFailed");
  // Final phases never change again, and the finalizer goes.
  a = d.Step(kT0 + 4s);
  CHECK(d.Phase() == "Failed");
  CHECK_FALSE(a.status_changed);
  CHECK(a.remove_finalizer);
  CHECK_FALSE(a.probe);
}

TEST_CASE("session: one Event per phase written; warnings that are not phase changes stay their own") {
  Driver d;
  SessionActions a = d.Step(kT0, ProbeResult{false, 0, "connection refused"});
  REQUIRE(d.Phase() == "Attaching");
  REQUIRE(a.events.size() == 2);
  CHECK(a.events[0].reason == "Attaching");
  CHECK(a.events[0].message == "attaching to dlv in pod order-1 (Pending -> Attaching)");
  CHECK(a.events[1].reason == "AttachRetrying");
  CHECK(a.events[1].type == "Warning");
  // The next write is one phase change: its Event names no path.
  a = d.Step(kT0 + 2s);
  REQUIRE(d.Phase() == "Active");
  REQUIRE(a.events.size() == 1);
  CHECK(a.events[0].message == "attached to dlv in pod order-1 in 12ms");
}

TEST_CASE("session: graydebug's own probe failures are not attach attempts for the breaker") {
  Driver d;
  SessionActions a = d.Step(kT0, ProbeResult{false, 0, "API server unavailable", true});
  CHECK_FALSE(a.attempt);
  CHECK(d.session["status"]["attach"]["attempts"] == 1);
}

TEST_CASE("session: open circuit rejects with CircuitOpen and when it retries; half-open lets it through") {
  Driver d;
  d.circuit = {CircuitState::kOpen, kT0 + 60s};
  SessionActions a = d.Step(kT0);
  CHECK(d.Phase() == "Rejected");
  CHECK((*Condition(d.session["status"], "CircuitAllowed"))["reason"] == "CircuitOpen");
  CHECK(a.events.back().type == "Warning");
  CHECK(a.events.back().message.find("retries at 2026-11-26T10:01:00Z") != std::string::npos);
  CHECK(a.events.size() == 1);
  CHECK(a.events.back().message.find("(Pending -> Rejected)") != std::string::npos);
  Driver h;
  h.circuit = {CircuitState::kHalfOpen, {}};
  h.Step(kT0);
  CHECK(h.Phase() == "Active");
  CHECK((*Condition(h.session["status"], "CircuitAllowed"))["reason"] == "HalfOpenTrial");
  // An open circuit leaves existing sessions alone.
  h.circuit = {CircuitState::kOpen, kT0 + 60s};
  h.Step(kT0 + 31s);
  CHECK(h.Phase() == "Active");
}

TEST_CASE("session: waits for a missing or unready pod, then fails after the bound") {
  Driver d;
  d.pods = {};
  SessionActions a = d.Step(kT0 + 10s);
  CHECK(d.Phase() == "Pending");
  CHECK((*Condition(d.session["status"], "Attached"))["reason"] == "PodNotFound");
  CHECK(*a.requeue_after == 2s);
  d.pods = {Pod("order-1", "Pending", "")};
  d.Step(kT0 + 20s);
  CHECK((*Condition(d.session["status"], "Attached"))["reason"] == "PodNotRunning");
  a = d.Step(kT0 + 2min);
  CHECK(d.Phase() == "Failed");
  CHECK(a.events.back().reason == "PodNotRunning");
}

TEST_CASE("session: the PodNotFound message of a selector reads as English") {
  Driver d;
  d.session["spec"]["target"] = {{"selector", {{"matchLabels", {{"app", "nothing"}}}}}};
  d.Step(kT0 + 1s);
  CHECK((*Condition(d.session["status"], "Attached"))["message"] ==
        "no ready injected pod matching the selector in namespace shop");
  Driver named;
  named.pods = {};
  named.Step(kT0 + 1s);
  CHECK((*Condition(named.session["status"], "Attached"))["message"] == "no injected pod order-1 in namespace shop");
}

TEST_CASE("session: a final session gets finishedAt and is deleted finalSessionRetention later") {
  ReconcilerConfig cfg;
  cfg.final_session_retention = 1h;
  Driver d;
  d.r = SessionReconciler(cfg);
  d.pods = {};
  d.Step(kT0 + 2min);  // PodNotFound for pendingTimeout -> Failed
  REQUIRE(d.Phase() == "Failed");
  CHECK(d.session["status"]["finishedAt"] == FormatTime(kT0 + 2min));
  SessionActions a = d.Step(kT0 + 3min);
  CHECK_FALSE(a.delete_session);
  REQUIRE(a.requeue_after);
  CHECK(*a.requeue_after == 59min);
  CHECK_FALSE(a.status_changed);
  a = d.Step(kT0 + 2min + 1h);
  CHECK(a.delete_session);
  CHECK(d.Phase() == "Failed");

  // A final session from before finishedAt existed: its retention starts now.
  Driver old;
  old.r = SessionReconciler(cfg);
  old.session["status"] = {{"phase", "Rejected"}};
  a = old.Step(kT0 + 10h);
  CHECK(a.status_changed);
  CHECK(old.session["status"]["finishedAt"] == FormatTime(kT0 + 10h));
  CHECK_FALSE(a.delete_session);
  CHECK(*a.requeue_after == 1h);

  // 0 keeps final sessions forever.
  cfg.final_session_retention = 0ms;
  Driver keep;
  keep.r = SessionReconciler(cfg);
  keep.session["status"] = {{"phase", "Expired"}, {"finishedAt", FormatTime(kT0)}};
  a = keep.Step(kT0 + 1000h);
  CHECK_FALSE(a.delete_session);
  CHECK_FALSE(a.requeue_after);

  // Every way into a final phase stamps it.
  Driver expired;
  expired.Step(kT0);
  expired.Step(kT0 + 15min);
  CHECK(expired.Phase() == "Expired");
  CHECK(expired.session["status"]["finishedAt"] == FormatTime(kT0 + 15min));
}

TEST_CASE("session: active sessions are re-probed; a failed re-probe keeps Active but not Ready") {
  Driver d;
  d.Step(kT0);
  SessionActions a = d.Step(kT0 + 10s);
  CHECK_FALSE(a.attempt);  // not due yet
  CHECK(*a.requeue_after == 20s);
  a = d.Step(kT0 + 30s, ProbeResult{false, 2.0, "timeout", false});
  CHECK(a.attempt);
  CHECK(d.Phase() == "Active");
  CHECK((*Condition(d.session["status"], "Ready"))["status"] == "False");
  CHECK(d.session["status"]["attach"]["attempts"] == 1);
  a = d.Step(kT0 + 60s);
  CHECK((*Condition(d.session["status"], "Ready"))["status"] == "True");
  CHECK(a.status_changed);  // Ready flipped back: written at once
  // Routine healthy re-probes are remembered but written down only every 5 minutes.
  a = d.Step(kT0 + 90s);
  CHECK(a.attempt);
  CHECK_FALSE(a.status_changed);
  CHECK(*a.requeue_after == 30s);
  a = d.Step(kT0 + 100s);
  CHECK_FALSE(a.attempt);  // the remembered probe at 90 s counts: next one at 120 s
  CHECK(*a.requeue_after == 20s);
  a = d.Step(kT0 + 6min);
  CHECK(a.attempt);
  CHECK(a.status_changed);
  CHECK(d.session["status"]["attach"]["lastProbeAt"] == "2026-11-26T10:06:00Z");
}

TEST_CASE("session: expires at creation + ttl, capped by max ttl; shortening the ttl applies") {
  Driver d;
  d.Step(kT0);
  d.session["spec"]["ttl"] = "5m";
  SessionActions a = d.Step(kT0 + 1min);
  CHECK(d.session["status"]["expiresAt"] == "2026-11-26T10:05:00Z");
  a = d.Step(kT0 + 5min);
  CHECK(d.Phase() == "Expired");
  CHECK_FALSE(a.active);
  Driver capped;
  capped.session = Session("order-1", "168h");
  capped.Step(kT0);
  CHECK(capped.session["status"]["expiresAt"] == "2026-11-26T14:00:00Z");
}

TEST_CASE("session: pod gone -> Terminated; deletion removes the finalizer") {
  Driver d;
  d.Step(kT0);
  d.pods.clear();
  SessionActions a = d.Step(kT0 + 5s);
  CHECK(d.Phase() == "Terminated");
  CHECK_FALSE(a.active);
  Driver del;
  del.Step(kT0);
  del.session["metadata"]["deletionTimestamp"] = FormatTime(kT0 + 5s);
  a = del.Step(kT0 + 5s);
  CHECK(a.remove_finalizer);
  CHECK_FALSE(a.active);
  CHECK_FALSE(a.probe);
}

TEST_CASE("session: a selector picks the newest ready matching pod and then stays with it") {
  Driver d;
  d.session["spec"]["target"] = {{"selector", {{"matchLabels", {{"app", "order"}}}}}};
  d.pods = {Pod("old", "Running", "10.0.0.1", "2026-11-26T08:00:00Z"),
            Pod("new", "Running", "10.0.0.2", "2026-11-26T09:30:00Z"),
            Pod("newest-not-ready", "Pending", "", "2026-11-26T09:50:00Z")};
  d.Step(kT0);
  CHECK(d.session["status"]["pod"] == "new");
  d.pods.push_back(Pod("even-newer", "Running", "10.0.0.3", "2026-11-26T09:55:00Z"));
  d.Step(kT0 + 31s);
  CHECK(d.session["status"]["pod"] == "new");
}

TEST_CASE("label selectors: matchLabels and every matchExpressions operator") {
  json labels = {{"app", "order"}, {"version", "v2"}};
  CHECK(SelectorMatches({{"matchLabels", {{"app", "order"}}}}, labels));
  CHECK_FALSE(SelectorMatches({{"matchLabels", {{"app", "cart"}}}}, labels));
  CHECK(SelectorMatches({{"matchExpressions", {{{"key", "version"}, {"operator", "In"}, {"values", {"v1", "v2"}}}}}},
                        labels));
  CHECK_FALSE(SelectorMatches({{"matchExpressions", {{{"key", "version"}, {"operator", "NotIn"}, {"values", {"v2"}}}}}},
                              labels));
  CHECK(SelectorMatches({{"matchExpressions", {{{"key", "app"}, {"operator", "Exists"}}}}}, labels));
  CHECK(SelectorMatches({{"matchExpressions", {{{"key", "tier"}, {"operator", "DoesNotExist"}}}}}, labels));
  CHECK_FALSE(SelectorMatches({{"matchExpressions", {{{"key", "app"}, {"operator", "Bogus"}}}}}, labels));
  CHECK_FALSE(SelectorMatches(json::object(), labels));
}

TEST_CASE("session: hostile sessions never throw") {
  SessionReconciler r{ReconcilerConfig{}};
  for (const json& s : {json(), json(5), json::object(), json{{"metadata", 1}}, json{{"spec", {{"target", 3}}}},
                        json{{"metadata", {{"creationTimestamp", "garbage"}}}, {"spec", {{"ttl", "-5m"}}}}}) {
    CHECK_NOTHROW(r.Reconcile({s, {Pod("x")}, {}, std::nullopt, kT0, std::nullopt}));
  }
}

TEST_CASE("session: the awkward moments") {
  SUBCASE("pod deleted while Attaching") {
    Driver d;
    d.Step(kT0, ProbeResult{false, 0.1, "refused", false});
    REQUIRE(d.Phase() == "Attaching");
    d.pods.clear();
    d.Step(kT0 + 1s);
    CHECK(d.Phase() == "Terminated");
  }
  SUBCASE("pod being deleted (deletionTimestamp) while Active") {
    Driver d;
    d.Step(kT0);
    d.pods[0]["metadata"]["deletionTimestamp"] = FormatTime(kT0 + 2s);
    d.Step(kT0 + 3s);
    CHECK(d.Phase() == "Terminated");
  }
  SUBCASE("session deleted mid-attach: no probe, finalizer released") {
    Driver d;
    d.Step(kT0, ProbeResult{false, 0.1, "refused", false});
    d.session["metadata"]["deletionTimestamp"] = FormatTime(kT0 + 1s);
    SessionInput in{d.session, d.pods, {}, std::nullopt, kT0 + 1s, std::nullopt};
    SessionActions a = d.r.Reconcile(in);
    CHECK_FALSE(a.probe);
    CHECK(a.remove_finalizer);
    CHECK_FALSE(a.active);
  }
  SUBCASE("clock exactly at expiresAt expires; one millisecond before does not") {
    Driver d;
    d.Step(kT0);
    d.Step(kT0 + 15min - 1ms, std::nullopt);
    CHECK(d.Phase() == "Active");
    d.Step(kT0 + 15min);
    CHECK(d.Phase() == "Expired");
  }
  SUBCASE("ttl shortened below the age of an Active session expires it at once") {
    Driver d;
    d.Step(kT0);
    d.session["spec"]["ttl"] = "1m";
    d.session["metadata"]["generation"] = 2;
    d.Step(kT0 + 2min);
    CHECK(d.Phase() == "Expired");
    CHECK(d.session["status"]["observedGeneration"] == 2);
  }
  SUBCASE("a controller restart continues an Active session without a second attach") {
    Driver d;
    d.Step(kT0);
    SessionReconciler fresh{ReconcilerConfig{}};  // a new process: only the stored status remains
    SessionActions a = fresh.Reconcile({d.session, d.pods, {}, std::nullopt, kT0 + 10s, std::nullopt});
    CHECK_FALSE(a.probe);
    CHECK_FALSE(a.status_changed);
    CHECK(a.active);
    CHECK(*a.requeue_after == 20s);
  }
  SUBCASE("an expired session never comes back, whatever the pod does") {
    Driver d;
    d.Step(kT0 + 16min);
    CHECK(d.Phase() == "Expired");
    d.pods.push_back(Pod("order-1"));
    SessionActions a = d.Step(kT0 + 17min);
    CHECK(d.Phase() == "Expired");
    CHECK_FALSE(a.status_changed);
  }
}
