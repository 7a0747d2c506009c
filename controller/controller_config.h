#pragma once

#include <chrono>
#include <string>

#include "controller/session_reconciler.h"

namespace graydebug::controller {

// SPEC §6: the numbers of the per-release circuit breaker.
struct BreakerConfig {
  std::chrono::milliseconds window{std::chrono::minutes(10)};
  int max_window_attempts = 200;
  int min_attempts = 20;
  int min_failures = 2;
  double failure_ratio = 0.05;  // trips when failures / attempts is strictly greater
  std::chrono::milliseconds cool_down{std::chrono::seconds(60)};
  std::chrono::milliseconds max_cool_down{std::chrono::minutes(10)};
  int half_open_trials = 5;
  bool pause_rollout = false;  // set spec.paused on the owning Deployment when a breaker opens
};

struct ControllerConfig {
  ReconcilerConfig reconciler;
  BreakerConfig breaker;
  std::chrono::milliseconds attach_timeout{std::chrono::seconds(5)};  // one GET /probe/dlv
};

struct ControllerConfigResult {
  bool ok = false;
  ControllerConfig config;
  std::string error;  // one line naming the field
};

// Parses the YAML of `graydebug-controller --config` (camelCase keys; unknown keys refused; every
// key optional). See docs/examples/controller-config.yaml.
ControllerConfigResult ParseControllerConfig(const std::string& yaml_text);
ControllerConfigResult LoadControllerConfig(const std::string& path);

}  // namespace graydebug::controller
