#include "controller/controller_config.h"

#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

using namespace graydebug::controller;
using namespace std::chrono_literals;

TEST_CASE("controller config: the documented example parses to the defaults") {
  std::ifstream in(std::string(GRAYDEBUG_SOURCE_DIR) + "/docs/examples/controller-config.yaml");
  std::stringstream ss;
  ss << in.rdbuf();
  auto r = ParseControllerConfig(ss.str());
  REQUIRE_MESSAGE(r.ok, r.error);
  ControllerConfig d;
  CHECK(r.config.reconciler.reprobe_interval == d.reconciler.reprobe_interval);
  CHECK(r.config.reconciler.max_ttl == 4h);
  CHECK(r.config.breaker.min_attempts == 20);
  CHECK(r.config.breaker.failure_ratio == doctest::Approx(0.05));
  CHECK(r.config.breaker.half_open_trials == 5);
  CHECK(r.config.attach_timeout == 5s);
  CHECK(r.config.reconciler.final_session_retention == 24h);
}

TEST_CASE("controller config: finalSessionRetention is a duration, 0 keeps final sessions forever") {
  CHECK(ParseControllerConfig("finalSessionRetention: 0").config.reconciler.final_session_retention == 0ms);
  CHECK(ParseControllerConfig("finalSessionRetention: 168h").config.reconciler.final_session_retention == 168h);
  auto short_one = ParseControllerConfig("finalSessionRetention: 10s");
  CHECK_FALSE(short_one.ok);
  CHECK(short_one.error.find("finalSessionRetention: must be 0") != std::string::npos);
  CHECK_FALSE(ParseControllerConfig("finalSessionRetention: forever").ok);
}

TEST_CASE("controller config: bad fields are named in one line") {
  struct Case {
    const char* yaml;
    const char* want;
  };
  for (const Case& c :
       {Case{"reprobeInterval: soon", "reprobeInterval: must be a duration"},
        Case{"maxTTL: 400h", "maxTTL: must be between"}, Case{"breaker: {failureRatio: 1.5}", "breaker.failureRatio"},
        Case{"breaker: {minAttempts: 500}", "breaker.minAttempts: must not exceed"},
        Case{"breaker: {coolDown: 5m, maxCoolDown: 1m}", "breaker.maxCoolDown"},
        Case{"breaker: {tripAt: 3}", "breaker.tripAt: unknown field"},
        Case{"maxAttachAttempts: 0", "maxAttachAttempts"}, Case{"[1, 2]", "config: must be a mapping"},
        Case{"a: {", "not valid YAML"}}) {
    auto r = ParseControllerConfig(c.yaml);
    CHECK_FALSE(r.ok);
    CHECK_MESSAGE(r.error.find(c.want) != std::string::npos, c.yaml, " -> ", r.error);
  }
}
