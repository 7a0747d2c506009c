// The session controller and the breaker store over the fake API server, a scripted prober and a
// fake clock: what the controller writes, in which order, and that it never waits in a worker.
// (The same paths against a real kube-apiserver and a real dlv: tests/integration/controller_test.cpp.)
#include "controller/session_controller.h"

#include <doctest/doctest.h>
#include <prometheus/registry.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>

#include "controller/breaker_store.h"
#include "graydebug/api/circuits.h"
#include "graydebug/api/debug_session.h"
#include "graydebug/metrics.h"
#include "support/eventually.h"
#include "support/fake_apiserver.h"
#include "support/fake_clock.h"
#include "support/gray_pod.h"

using namespace std::chrono_literals;
using graydebug::BreakerConfig;
using graydebug::FakeClock;
using graydebug::controller::AttachProber;
using graydebug::controller::BreakerStore;
using graydebug::controller::ControllerOptions;
using graydebug::controller::ProbeResult;
using graydebug::controller::SessionController;
using graydebug::kube::HttpRequest;
using graydebug::kube::HttpResponse;
using graydebug::kube::Resource;
using graydebug::testing::FakeApiServer;
using json = nlohmann::json;
namespace api = graydebug::api;

namespace {

const char* kSystem = "graydebug-system";
const Resource kReplicaSets{"apps", "v1", "replicasets", true};
const Resource kDeployments{"apps", "v1", "deployments", true};

ProbeResult Ok() {
  return {true, 0.003, "", false};
}
ProbeResult Refused() {
  return {false, 0.001, "connect to dlv: connection refused", false};
}
ProbeResult Busy() {
  ProbeResult p{false, 0.001, "agent is busy with other probes", true};
  p.busy = true;
  return p;
}

// Answers each address from its script, then with `otherwise`; counts the calls.
class ScriptedProber final : public AttachProber {
 public:
  ProbeResult Probe(const std::string& address) override {
    std::lock_guard l(mu_);
    ++calls_[address];
    auto& script = scripts_[address];
    if (script.empty()) return otherwise_;
    ProbeResult p = script.front();
    script.pop_front();
    return p;
  }
  void Script(const std::string& address, std::deque<ProbeResult> results) {
    std::lock_guard l(mu_);
    scripts_[address] = std::move(results);
  }
  void Otherwise(ProbeResult p) {
    std::lock_guard l(mu_);
    otherwise_ = std::move(p);
  }
  int Calls(const std::string& address) {
    std::lock_guard l(mu_);
    return calls_[address];
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::deque<ProbeResult>> scripts_;
  std::map<std::string, int> calls_;
  ProbeResult otherwise_ = Ok();
};

json Pod(const std::string& name, const std::string& ip) {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata",
           {{"name", name},
            {"namespace", "shop"},
            {"labels", {{"app", "shop"}, {"version", "v2"}, {"graydebug.io/injected", "true"}}},
            {"ownerReferences",
             {{{"apiVersion", "apps/v1"}, {"kind", "ReplicaSet"}, {"name", "shop-v2-5f7"}, {"controller", true}}}}}},
          {"spec",
           {{"containers",
             {{{"name", "shop"}},
              {{"name", "dlv-server"}},
              {{"name", "graydebug-agent"}, {"ports", {{{"name", "gd-agent"}, {"containerPort", 9102}}}}}}}}},
          {"status", {{"phase", "Running"}, {"podIP", ip}}}};
}

json Session(const std::string& name, const std::string& pod) {
  return {{"apiVersion", api::kApiVersion},
          {"kind", api::kSessionKind},
          {"metadata", {{"name", name}, {"namespace", "shop"}, {"generation", 1}}},
          {"spec", {{"target", {{"pod", pod}}}, {"ttl", "15m"}}}};
}

template <class Pred>
bool Eventually(Pred pred) {
  return graydebug::testing::Eventually(pred, 20s, 2ms);
}

struct Rig {
  FakeClock clock;
  FakeApiServer api{&clock};
  std::shared_ptr<graydebug::kube::Client> client = api.NewClient();
  prometheus::Registry registry;
  ScriptedProber prober;
  std::unique_ptr<BreakerStore> breakers;
  std::unique_ptr<SessionController> controller;

  explicit Rig(BreakerConfig bc = {}, ControllerOptions o = {}) {
    o.clock = &clock;
    if (o.workers == 2) o.workers = 1;  // one worker: a wait in it would hold every session up
    breakers = std::make_unique<BreakerStore>(client, kSystem, bc, registry, nullptr, &clock);
    controller = std::make_unique<SessionController>(client, o, prober, *breakers, registry, nullptr);
  }
  void Start() {
    REQUIRE(breakers->Load());
    breakers->Start();
    controller->StartInformers();
    // Before the caches sync, workers requeue on the (fake) clock; this clock stands still.
    REQUIRE(Eventually([&] { return controller->HasSynced(); }));
    controller->StartWorkers();
  }
  ~Rig() {
    controller->Stop();
    breakers->Stop();
  }
  void Create(const json& session) { REQUIRE(client->Create(Resource::DebugSessions(), "shop", session).ok()); }
  json Status(const std::string& name) {
    auto s = api.Get(Resource::DebugSessions(), "shop", name);
    return s && s->contains("status") ? (*s)["status"] : json::object();
  }
  std::string Phase(const std::string& name) { return Status(name).value("phase", ""); }
  int Attempts(const std::string& name) { return Status(name).value(json::json_pointer("/attach/attempts"), 0); }
  // Moves the fake clock in `step`s until `pred` holds (bounded in real time).
  template <class Pred>
  bool AdvanceUntil(std::chrono::milliseconds step, Pred pred) {
    return graydebug::testing::Eventually(
        [&] {
          if (pred()) return true;
          clock.Advance(step);
          return false;
        },
        20s, 2ms);
  }
  // The index in the request log of the first request starting with `prefix`, -1 if none.
  int FirstIndex(const std::string& prefix, int from = 0) {
    auto r = api.Requests();
    for (int i = from; i < static_cast<int>(r.size()); ++i) {
      if (r[i].rfind(prefix, 0) == 0) return i;
    }
    return -1;
  }
};

const std::string kStatusPut = "PUT /apis/graydebug.io/v1alpha1/namespaces/shop/debugsessions/";
const std::string kCircuitsWrite = "POST /api/v1/namespaces/graydebug-system/configmaps";

}  // namespace

TEST_CASE("session controller: a session gets the finalizer, one probe and Active, the attempt stored first") {
  Rig rig;
  rig.api.Seed(Resource::Pods(), Pod("shop-v2-a", "10.0.0.7"));
  rig.Start();
  rig.Create(Session("s1", "shop-v2-a"));
  REQUIRE(Eventually([&] { return rig.Phase("s1") == "Active"; }));
  CHECK(rig.prober.Calls("10.0.0.7:9102") == 1);
  json s = *rig.api.Get(Resource::DebugSessions(), "shop", "s1");
  CHECK(s["metadata"]["finalizers"] == json::array({api::kSessionFinalizer}));
  CHECK(s["status"]["attach"]["attempts"] == 1);
  CHECK(s["status"]["connect"].get<std::string>().find("port-forward -n shop pod/shop-v2-a") != std::string::npos);
  // The breaker ConfigMap holds the attempt before any status says it happened.
  const int circuits = rig.FirstIndex(kCircuitsWrite);
  const int status = rig.FirstIndex(kStatusPut + "s1/status");
  REQUIRE(circuits >= 0);
  CHECK(circuits < status);
  auto cm = rig.api.Get(Resource::ConfigMaps(), kSystem, "graydebug-circuits");
  REQUIRE(cm);
  CHECK((*cm)["data"].contains("shop.v2"));
  // The worker sets the gauge once its status write returned, which may be after this test saw the
  // write in the API server: the series are awaited, not sampled.
  auto metric = [&](const char* series) {
    return graydebug::testing::MetricValue(graydebug::metrics::Serialize(rig.registry), series);
  };
  CHECK(Eventually([&] {
    return metric(R"(graydebug_attach_attempts_total{namespace="shop",release="v2",result="success"})") == 1;
  }));
  CHECK(Eventually(
      [&] { return metric(R"(debug_session_active{namespace="shop",pod="shop-v2-a",release="v2"})") == 1; }));
}

TEST_CASE("session controller: failed attaches are retried on the backoff of the clock, then Failed") {
  Rig rig;
  rig.api.Seed(Resource::Pods(), Pod("shop-v2-a", "10.0.0.7"));
  rig.prober.Otherwise(Refused());
  rig.Start();
  rig.Create(Session("s1", "shop-v2-a"));
  REQUIRE(Eventually([&] { return rig.Attempts("s1") == 1; }));
  CHECK(rig.Phase("s1") == "Attaching");
  CHECK(rig.Status("s1")["attach"]["lastError"] == "connect to dlv: connection refused");
  // The next tries come when the fake clock passes the backoff (1 s, then 2 s), not before.
  CHECK(rig.prober.Calls("10.0.0.7:9102") == 1);
  REQUIRE(rig.AdvanceUntil(100ms, [&] { return rig.Phase("s1") == "Failed"; }));
  CHECK(rig.prober.Calls("10.0.0.7:9102") == 3);
  CHECK(rig.Attempts("s1") == 3);
}

TEST_CASE("session controller: a busy agent is asked again later while the worker serves other sessions") {
  ControllerOptions o;
  o.workers = 1;
  Rig rig({}, o);
  rig.api.Seed(Resource::Pods(), Pod("shop-v2-a", "10.0.0.7"));
  rig.api.Seed(Resource::Pods(), Pod("shop-v2-b", "10.0.0.8"));
  rig.prober.Script("10.0.0.7:9102", {Busy(), Busy()});
  rig.Start();
  rig.Create(Session("busy", "shop-v2-a"));
  REQUIRE(Eventually([&] { return rig.prober.Calls("10.0.0.7:9102") == 1; }));
  // The only worker is free: the other session goes Active while the clock stands still.
  rig.Create(Session("other", "shop-v2-b"));
  REQUIRE(Eventually([&] { return rig.Phase("other") == "Active"; }));
  CHECK(rig.prober.Calls("10.0.0.7:9102") == 1);
  CHECK(rig.Attempts("busy") == 0);  // busy is not an attempt
  REQUIRE(rig.AdvanceUntil(50ms, [&] { return rig.Phase("busy") == "Active"; }));
  CHECK(rig.prober.Calls("10.0.0.7:9102") == 3);
  CHECK(rig.Attempts("busy") == 1);
}

TEST_CASE("session controller: the status waits for the attempt to be stored, without a second probe") {
  Rig rig;
  rig.api.Seed(Resource::Pods(), Pod("shop-v2-a", "10.0.0.7"));
  std::atomic<bool> refuse{true};
  std::atomic<int> first_stored{-1};  // index in the request log of the first write let through
  rig.api.Intercept([&](const HttpRequest& r) -> std::optional<HttpResponse> {
    if (r.path.find("/configmaps") == std::string::npos || r.method == "GET") return std::nullopt;
    if (refuse) return FakeApiServer::StatusReply(403, "Forbidden", "scripted: no writes to configmaps");
    int none = -1;
    first_stored.compare_exchange_strong(none, static_cast<int>(rig.api.Requests().size()) - 1);
    return std::nullopt;
  });
  rig.Start();
  rig.Create(Session("s1", "shop-v2-a"));
  REQUIRE(Eventually([&] { return rig.prober.Calls("10.0.0.7:9102") == 1; }));
  // Two failed writes of the breaker (the second after the writer's 1 s pause).
  REQUIRE(rig.api.WaitForCount(kCircuitsWrite, 2, 20s));
  refuse = false;
  REQUIRE(Eventually([&] { return rig.Phase("s1") == "Active"; }));
  CHECK(rig.prober.Calls("10.0.0.7:9102") == 1);
  // The first status write (it says Active) came after the write that stored its attempt.
  REQUIRE(first_stored >= 0);
  CHECK(rig.FirstIndex(kStatusPut + "s1/status") > first_stored);
}

TEST_CASE("session controller: a breaker that cannot be stored holds the status for stored_wait, then it is written") {
  ControllerOptions o;
  o.stored_wait = 5s;
  Rig rig({}, o);
  rig.api.Seed(Resource::Pods(), Pod("shop-v2-a", "10.0.0.7"));
  rig.api.Intercept([&](const HttpRequest& r) -> std::optional<HttpResponse> {
    if (r.path.find("/configmaps") != std::string::npos && r.method != "GET") {
      return FakeApiServer::StatusReply(403, "Forbidden", "scripted: no writes to configmaps");
    }
    return std::nullopt;
  });
  rig.Start();
  rig.Create(Session("s1", "shop-v2-a"));
  REQUIRE(Eventually([&] { return rig.prober.Calls("10.0.0.7:9102") == 1; }));
  REQUIRE(rig.api.WaitForCount(kCircuitsWrite, 1, 20s));
  CHECK(rig.FirstIndex(kStatusPut + "s1/status") == -1);
  rig.clock.Advance(4s);
  REQUIRE(rig.AdvanceUntil(100ms, [&] { return rig.Phase("s1") == "Active"; }));
  CHECK(rig.prober.Calls("10.0.0.7:9102") == 1);
}

TEST_CASE("session controller: a conflicting status write is retried from the probe already made") {
  Rig rig;
  rig.api.Seed(Resource::Pods(), Pod("shop-v2-a", "10.0.0.7"));
  std::atomic<int> conflicts{0};
  rig.api.Intercept([&](const HttpRequest& r) -> std::optional<HttpResponse> {
    if (r.method == "PUT" && r.path.find("/debugsessions/s1/status") != std::string::npos && conflicts++ == 0) {
      return FakeApiServer::StatusReply(409, "Conflict", "scripted conflict");
    }
    return std::nullopt;
  });
  rig.Start();
  rig.Create(Session("s1", "shop-v2-a"));
  REQUIRE(rig.AdvanceUntil(50ms, [&] { return rig.Phase("s1") == "Active"; }));
  CHECK(conflicts >= 2);
  CHECK(rig.prober.Calls("10.0.0.7:9102") == 1);
  CHECK(rig.Attempts("s1") == 1);
}

TEST_CASE("breaker store: a trip pauses the Deployment on its own worker, retrying a failed pause") {
  BreakerConfig bc;
  bc.min_attempts = 1;
  bc.min_failures = 1;
  bc.pause_rollout = true;
  Rig rig(bc);
  rig.api.Seed(Resource::Pods(), Pod("shop-v2-a", "10.0.0.7"));
  rig.api.Seed(
      kReplicaSets,
      {{"apiVersion", "apps/v1"},
       {"kind", "ReplicaSet"},
       {"metadata",
        {{"name", "shop-v2-5f7"},
         {"namespace", "shop"},
         {"ownerReferences",
          {{{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", "shop-v2"}, {"controller", true}}}}}}});
  rig.api.Seed(kDeployments, {{"apiVersion", "apps/v1"},
                              {"kind", "Deployment"},
                              {"metadata", {{"name", "shop-v2"}, {"namespace", "shop"}}},
                              {"spec", {{"replicas", 1}}}});
  std::atomic<int> refused{0};
  rig.api.Intercept([&](const HttpRequest& r) -> std::optional<HttpResponse> {
    if (r.method == "PATCH" && r.path.find("/deployments/shop-v2") != std::string::npos && refused++ < 2) {
      return FakeApiServer::StatusReply(403, "Forbidden", "scripted: not yet");
    }
    return std::nullopt;
  });
  rig.prober.Otherwise(Refused());
  rig.Start();
  rig.Create(Session("s1", "shop-v2-a"));
  // The first failure trips it (1 of 1 > 5 %); the pause is retried on the trip worker's backoff.
  REQUIRE(rig.AdvanceUntil(100ms, [&] {
    auto d = rig.api.Get(kDeployments, "shop", "shop-v2");
    return d && (*d)["spec"].value("paused", false);
  }));
  CHECK(refused >= 3);
  auto d = rig.api.Get(kDeployments, "shop", "shop-v2");
  CHECK((*d)["metadata"]["annotations"].contains(api::kPausedByAnnotation));
  CHECK(rig.breakers->StateOf("shop/v2", rig.clock.WallNow()) == graydebug::BreakerState::kOpen);
  // New sessions of the release are rejected.
  rig.Create(Session("s2", "shop-v2-a"));
  REQUIRE(Eventually([&] { return rig.Phase("s2") == "Rejected"; }));
}

TEST_CASE("breaker store: attempts recorded while a write is in flight are stored together by the next one") {
  Rig rig;
  std::mutex gate_mu;
  std::condition_variable gate_cv;
  bool open = false;
  std::atomic<int> held{0};
  // The first ConfigMap write waits at the gate, as one waits for a slow API server.
  rig.api.Intercept([&](const HttpRequest& r) -> std::optional<HttpResponse> {
    if (r.path.find("/configmaps") == std::string::npos || r.method == "GET") return std::nullopt;
    std::unique_lock lock(gate_mu);
    ++held;
    gate_cv.wait(lock, [&] { return open; });
    return std::nullopt;
  });
  REQUIRE(rig.breakers->Load());
  rig.breakers->Start();
  const auto now = rig.clock.WallNow();
  // A new breaker is written at once: that write stores attempt 1 and waits at the gate.
  const uint64_t first = rig.breakers->Record("shop/v2", true, now, nullptr);
  REQUIRE(Eventually([&] { return held.load() == 1; }));
  uint64_t last = first;
  for (int i = 0; i < 49; ++i) last = rig.breakers->Record("shop/v2", true, now, nullptr);
  CHECK_FALSE(rig.breakers->Stored(last));  // asks for a write; the one in flight does not carry it
  {
    std::lock_guard lock(gate_mu);
    open = true;
  }
  gate_cv.notify_all();
  REQUIRE(Eventually([&] { return rig.breakers->Stored(last); }));
  CHECK(rig.breakers->Stored(first));
  // Two writes for 50 attempts: the 49 recorded behind the first write went out in one.
  CHECK(rig.api.Count("POST /api/v1/namespaces/graydebug-system/configmaps") +
            rig.api.Count("PUT /api/v1/namespaces/graydebug-system/configmaps/graydebug-circuits") ==
        2);
  const std::string m = graydebug::metrics::Serialize(rig.registry);
  CHECK(graydebug::testing::MetricValue(m, "graydebug_circuit_writes_total") == 2);
  CHECK(graydebug::testing::MetricValue(m, "graydebug_circuit_attempts_stored_total") == 50);
  auto cm = rig.api.Get(Resource::ConfigMaps(), kSystem, api::kCircuitsConfigMap);
  REQUIRE(cm);
  CHECK((*cm)["data"].contains(api::CircuitDataKey("shop/v2")));
}
