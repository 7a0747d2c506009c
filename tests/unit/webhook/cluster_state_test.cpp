// The webhook's view of ConfigMap graydebug-circuits over the fake API server (no network).
#include "webhook/cluster_state.h"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <tuple>

#include "support/eventually.h"
#include "support/fake_apiserver.h"

using namespace std::chrono_literals;
using graydebug::kube::ClientOptions;

TEST_CASE("cluster breakers: an entry of the wrong shape is ignored, the others still count") {
  // Found with the config fuzz target (breaker state, seed breaker-mistyped): json::value("state",
  // "") threw type_error on {"state":5} in the informer's thread, so one bad entry in the ConfigMap
  // aborted every webhook replica, again on each restart.
  graydebug::testing::FakeApiServer api;
  api.Seed(graydebug::kube::Resource::ConfigMaps(),
           nlohmann::json::parse(R"({"metadata":{"name":"graydebug-circuits","namespace":"graydebug-system"},
    "data":{"shop.v1":"{\"state\":5}","shop.v2":"{\"state\":\"open\"}","shop.v3":"not json",
    "shop.v4":"{\"state\":[\"open\"]}"}})"));
  ClientOptions o;
  o.max_retries = 0;
  graydebug::webhook::ClusterBreakers breakers(api.NewClient(o), "graydebug-system");
  breakers.Start();
  REQUIRE(graydebug::testing::Eventually([&] { return breakers.HasSynced(); }, 5s, 10ms));
  using graydebug::webhook::BreakerGate;
  // "open" without a retryAt: its cool-down is long over, so it reads as half-open.
  CHECK(breakers.Admit("shop/v2", 0, true) == BreakerGate::kHalfOpenFull);
  CHECK(breakers.Admit("shop/v1", 0, true) == BreakerGate::kClosed);
  CHECK(breakers.Admit("shop/v3", 0, true) == BreakerGate::kClosed);
  CHECK(breakers.Admit("shop/v4", 0, true) == BreakerGate::kClosed);
  breakers.Stop();
}

TEST_CASE("breaker gates: open skips, half-open admits a bounded number of trial pods per half-open period") {
  using graydebug::webhook::BreakerGate;
  using graydebug::webhook::BreakerGates;
  using nlohmann::json;
  const auto t0 = std::chrono::system_clock::time_point(std::chrono::milliseconds(1'800'000'000'000));
  auto entry = [](const char* state, int trips, int64_t retry_at) {
    return json{{"state", state}, {"trips", trips}, {"retryAt", retry_at}}.dump();
  };
  const int64_t retry = 1'800'000'060'000;  // t0 + 60 s
  BreakerGates g;
  auto [opened, closed] = g.Replace(json{{"shop.v2", entry("open", 1, retry)}, {"shop.v1", entry("closed", 0, 0)}});
  CHECK(opened == std::vector<std::string>{"shop/v2"});
  CHECK(closed.empty());
  CHECK(g.Admit("shop/v1", 2, true, t0) == BreakerGate::kClosed);
  CHECK(g.Admit("shop/v2", 2, true, t0) == BreakerGate::kOpen);
  const auto later = t0 + std::chrono::seconds(61);
  // The cool-down passed but the controller has not published half-open yet: trials already.
  CHECK(g.Admit("shop/v2", 2, false, later) == BreakerGate::kHalfOpenTrial);  // a dry run uses none
  CHECK(g.Admit("shop/v2", 2, true, later) == BreakerGate::kHalfOpenTrial);
  g.Replace(json{{"shop.v2", entry("half-open", 1, retry)}});  // the same period, published
  CHECK(g.Admit("shop/v2", 2, true, later) == BreakerGate::kHalfOpenTrial);
  CHECK(g.Admit("shop/v2", 2, true, later) == BreakerGate::kHalfOpenFull);
  CHECK(g.Admit("shop/v2", 2, true, later) == BreakerGate::kHalfOpenFull);
  // A failed trial reopens it (trip 2); its next half-open period has a fresh budget.
  g.Replace(json{{"shop.v2", entry("open", 2, retry + 120'000)}});
  CHECK(g.Admit("shop/v2", 2, true, later) == BreakerGate::kOpen);
  g.Replace(json{{"shop.v2", entry("half-open", 2, retry + 120'000)}});
  CHECK(g.Admit("shop/v2", 2, true, later) == BreakerGate::kHalfOpenTrial);
  // Closed (or the key removed by an operator): injection resumes.
  std::tie(opened, closed) = g.Replace(json::object());
  CHECK(closed == std::vector<std::string>{"shop/v2"});
  CHECK(g.Admit("shop/v2", 2, true, later) == BreakerGate::kClosed);
}
