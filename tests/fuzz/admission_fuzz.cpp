// libFuzzer target: the admission decoder + SidecarInjector + encoder, on both endpoints. The
// first input byte picks the endpoint and the Content-Type; the rest is the body. Run by `make fuzz`.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "webhook/admission.h"

namespace {

struct ClosedBreakers : graydebug::webhook::BreakerView {
  graydebug::webhook::BreakerGate Admit(const std::string& key, int, bool) override {
    return key.size() % 2 == 1 ? graydebug::webhook::BreakerGate::kOpen : graydebug::webhook::BreakerGate::kClosed;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace graydebug::webhook;
  static const SidecarInjector injector({}, "fuzz");
  static ClosedBreakers breakers;
  static const AdmissionHandler handler(
      injector, ClusterView{[](const std::string& ns) { return ns == "strict" ? "baseline" : ""; }, &breakers});
  if (size == 0) return 0;
  uint8_t selector = data[0];
  std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string_view ct = (selector & 2) ? "text/plain" : "application/json";
  AdmissionReply r = (selector & 1) ? handler.MutateDebugSessions(ct, body) : handler.MutatePods(ct, body);
  // Every reply is a complete JSON document with one of the statuses SPEC §2 names.
  if (r.status != 200 && r.status != 400 && r.status != 413 && r.status != 415) __builtin_trap();
  if (nlohmann::json::parse(r.body, nullptr, false).is_discarded()) __builtin_trap();
  return 0;
}
