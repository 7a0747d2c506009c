// libFuzzer target: the replies the attach path decodes from processes inside the user's pod:
// dlv's JSON-RPC reply (dlv::DecodeReply, what the agent reads from dlv) and the agent's
// /probe/dlv answer (controller::ParseProbeReply, what the controller reads from the agent). The
// first byte picks the decoder, the HTTP status and the call id; the rest is the reply. Run by
// `make fuzz`.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "controller/session_controller.h"
#include "graydebug/dlv_client.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t selector = data[0];
  std::string body(reinterpret_cast<const char*>(data + 1), size - 1);
  if ((selector & 1) == 0) {
    // Client::Call hands DecodeReply the bytes before the first newline.
    if (auto nl = body.find('\n'); nl != std::string::npos) body.resize(nl);
    const uint64_t id = selector >> 1;
    graydebug::dlv::Reply r = graydebug::dlv::DecodeReply("RPCServer.GetVersion", body, id);
    if (r.ok() != r.error.empty()) __builtin_trap();
    if (r.error.find('\n') != std::string::npos) __builtin_trap();  // errors are one line
    if (r.ok()) (void)r.result.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } else {
    static const int kStatuses[] = {200, 502, 503, 500, 404, 200, 200, 0};
    const int status = kStatuses[(selector >> 1) & 7];
    graydebug::controller::ProbeResult p = graydebug::controller::ParseProbeReply("10.0.0.1:9102", status, body, 0.25);
    if (p.ok != p.error.empty()) __builtin_trap();
    if (p.ok && status != 200) __builtin_trap();
    if (p.own_fault && p.ok) __builtin_trap();
    if (!std::isfinite(p.latency_seconds) || p.latency_seconds < 0.25) __builtin_trap();
  }
  return 0;
}
