// libFuzzer target: the config parsers. The first input byte (mod 3) picks the parser: the
// webhook's injection config (webhook::ParseInjectionConfig; an accepted config then injects a
// gray pod through the admission layer, whose reply must stay valid JSON) or the controller's
// config (controller::ParseControllerConfig; an accepted config must keep its documented bounds);
// or the breaker state shared through ConfigMap graydebug-circuits (CircuitBreaker::FromJson, then
// driven a little and written back). Run by `make fuzz`.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "controller/controller_config.h"
#include "graydebug/circuit_breaker.h"
#include "webhook/admission.h"
#include "webhook/injection_config.h"

namespace {

constexpr std::string_view kGrayPod = R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",
"request":{"uid":"u-1","kind":{"group":"","version":"v1","kind":"Pod"},"namespace":"shop","operation":"CREATE",
"userInfo":{"username":"alice"},"object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"order-v2-0",
"namespace":"shop","labels":{"app":"order","version":"v2-alpha","graydebug.io/inject":"true","gray":"yes"}},
"spec":{"containers":[{"name":"app","image":"shop/order:v2"}]}}}})";

void FuzzInjectionConfig(const std::string& text) {
  using namespace graydebug::webhook;
  ConfigLoadResult r = ParseInjectionConfig(text);
  if (r.ok != r.error.empty()) __builtin_trap();
  if (!r.ok) return;
  const InjectionConfig& c = r.config;
  if (!ValidPort(c.dlv_port) || !ValidPort(c.agent_port)) __builtin_trap();
  if (!ValidImage(c.dlv_image) || !ValidImage(c.agent_image)) __builtin_trap();
  SidecarInjector injector(c, "fuzz");
  AdmissionHandler handler(injector, ClusterView{[](const std::string&) { return std::string(); }, nullptr});
  AdmissionReply reply = handler.MutatePods("application/json", kGrayPod);
  if (reply.status != 200) __builtin_trap();
  if (nlohmann::json::parse(reply.body, nullptr, false).is_discarded()) __builtin_trap();
}

void FuzzControllerConfig(const std::string& text) {
  using namespace graydebug::controller;
  using namespace std::chrono_literals;
  ControllerConfigResult r = ParseControllerConfig(text);
  if (r.ok != r.error.empty()) __builtin_trap();
  if (!r.ok) return;
  const ControllerConfig& c = r.config;
  if (c.attach_timeout < 100ms || c.attach_timeout > 1min) __builtin_trap();
  if (c.breaker.min_attempts > c.breaker.max_window_attempts) __builtin_trap();
  if (c.breaker.max_cool_down < c.breaker.cool_down) __builtin_trap();
  if (!(c.breaker.failure_ratio >= 0 && c.breaker.failure_ratio < 1)) __builtin_trap();
}

// The state any writer of ConfigMap graydebug-circuits may have left: a malformed one reads as
// nullopt (closed), a readable one keeps working.
void FuzzBreakerState(const std::string& text) {
  using graydebug::CircuitBreaker;
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return;
  std::optional<CircuitBreaker> b = CircuitBreaker::FromJson(j, graydebug::BreakerConfig{});
  if (!b) return;
  auto now = graydebug::Clock::Wall(std::chrono::milliseconds(1'750'000'000'000));
  (void)b->State(now);
  (void)b->RetryAt();
  for (int i = 0; i < 3; ++i) (void)b->Record(i != 1, now + std::chrono::seconds(i));
  if (!CircuitBreaker::FromJson(b->ToJson(), graydebug::BreakerConfig{})) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 3) {
    case 0: FuzzInjectionConfig(text); break;
    case 1: FuzzControllerConfig(text); break;
    default: FuzzBreakerState(text); break;
  }
  return 0;
}
