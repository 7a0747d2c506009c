#pragma once

#include <chrono>
#include <string>

#include "controller/session_reconciler.h"
#include "graydebug/circuit_breaker.h"

namespace graydebug::controller {

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
