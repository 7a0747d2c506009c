#include "controller/controller_config.h"

#include <charconv>
#include <set>

#include "graydebug/config_file.h"
#include "graydebug/duration.h"
#include "graydebug/yaml_fields.h"

namespace graydebug::controller {
namespace {

using yaml::Bool;
using yaml::CheckKeys;
using yaml::Duration;
using yaml::Fail;
using yaml::Int;

double Ratio(const YAML::Node& n, const std::string& field) {
  std::string s = n.IsScalar() ? n.Scalar() : "";
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size()) Fail(field, "must be a number such as 0.05");
  if (!(v >= 0 && v < 1)) Fail(field, "must be at least 0 and below 1");
  return v;
}

}  // namespace

ControllerConfigResult ParseControllerConfig(const std::string& yaml_text) {
  using namespace std::chrono_literals;
  ControllerConfigResult r;
  ControllerConfig& c = r.config;
  r.error = yaml::ParseFields(yaml_text, [&](const YAML::Node& root) {
    CheckKeys(root, "",
              {"releaseLabel", "reprobeInterval", "maxTTL", "pendingTimeout", "maxAttachAttempts", "attachTimeout",
               "finalSessionRetention", "breaker"});
    if (auto n = root["releaseLabel"]) {
      if (!n.IsScalar() || n.Scalar().empty() || n.Scalar().size() > 317) Fail("releaseLabel", "must be a label key");
      c.reconciler.release_label = n.Scalar();
    }
    if (auto n = root["reprobeInterval"]) c.reconciler.reprobe_interval = Duration(n, "reprobeInterval", 1s, 24h);
    if (auto n = root["maxTTL"]) c.reconciler.max_ttl = Duration(n, "maxTTL", 1min, 168h);
    if (auto n = root["pendingTimeout"]) c.reconciler.pending_timeout = Duration(n, "pendingTimeout", 1s, 24h);
    if (auto n = root["maxAttachAttempts"])
      c.reconciler.max_attach_attempts = static_cast<int>(Int(n, "maxAttachAttempts", 1, 20));
    if (auto n = root["attachTimeout"]) c.attach_timeout = Duration(n, "attachTimeout", 100ms, 1min);
    if (auto n = root["finalSessionRetention"]) {
      c.reconciler.final_session_retention = Duration(n, "finalSessionRetention", 0ms, 8760h);
      if (c.reconciler.final_session_retention.count() > 0 && c.reconciler.final_session_retention < 1min) {
        Fail("finalSessionRetention", "must be 0 (keep final sessions forever) or at least 1m");
      }
    }
    if (auto b = root["breaker"]) {
      CheckKeys(b, "breaker",
                {"window", "maxWindowAttempts", "minAttempts", "minFailures", "failureRatio", "coolDown", "maxCoolDown",
                 "halfOpenTrials", "pauseRollout"});
      BreakerConfig& k = c.breaker;
      if (auto n = b["window"]) k.window = Duration(n, "breaker.window", 1s, 24h);
      if (auto n = b["maxWindowAttempts"])
        k.max_window_attempts = static_cast<int>(Int(n, "breaker.maxWindowAttempts", 1, 100000));
      if (auto n = b["minAttempts"]) k.min_attempts = static_cast<int>(Int(n, "breaker.minAttempts", 1, 100000));
      if (auto n = b["minFailures"]) k.min_failures = static_cast<int>(Int(n, "breaker.minFailures", 1, 100000));
      if (auto n = b["failureRatio"]) k.failure_ratio = Ratio(n, "breaker.failureRatio");
      if (auto n = b["coolDown"]) k.cool_down = Duration(n, "breaker.coolDown", 1s, 24h);
      if (auto n = b["maxCoolDown"]) k.max_cool_down = Duration(n, "breaker.maxCoolDown", 1s, 168h);
      if (auto n = b["halfOpenTrials"])
        k.half_open_trials = static_cast<int>(Int(n, "breaker.halfOpenTrials", 1, 1000));
      if (auto n = b["pauseRollout"]) k.pause_rollout = Bool(n, "breaker.pauseRollout");
      if (k.min_attempts > k.max_window_attempts) {
        Fail("breaker.minAttempts", "must not exceed breaker.maxWindowAttempts");
      }
      if (k.max_cool_down < k.cool_down) Fail("breaker.maxCoolDown", "must not be shorter than breaker.coolDown");
    }
  });
  r.ok = r.error.empty();
  return r;
}

ControllerConfigResult LoadControllerConfig(const std::string& path) {
  FileReadResult file = ReadFileLimited(path);
  if (!file.ok) return {false, {}, file.error};
  ControllerConfigResult r = ParseControllerConfig(file.contents);
  if (!r.ok) r.error = "config " + path + ": " + r.error;
  return r;
}

}  // namespace graydebug::controller
