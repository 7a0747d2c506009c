#include "controller/attach_prober.h"

#include "graydebug/api/probe.h"
#include "graydebug/http_get.h"

namespace graydebug::controller {

ProbeResult HttpAttachProber::Probe(const std::string& address) {
  const auto start = std::chrono::steady_clock::now();
  HttpGetResult r = HttpGet("http://" + address + api::kProbePath, timeout_, 64 << 10, connect_timeout_);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!r.error.empty()) {
    ProbeResult p;
    p.latency_seconds = seconds;
    p.error = "agent at " + address + ": " + r.error;
    return p;
  }
  return ParseProbeReply(address, r.status, r.body, seconds);
}

ProbeResult ParseProbeReply(const std::string& address, int status, const std::string& raw, double seconds) {
  ProbeResult p;
  p.latency_seconds = seconds;
  auto reply = api::ProbeReply::Parse(raw);
  if (!reply) {
    p.error = "agent at " + address + " answered HTTP " + std::to_string(status) + " without a probe result";
    return p;
  }
  if (status == 503 && reply->error_kind == api::kProbeBusy) {
    p.own_fault = true;  // graydebug's own capacity, not the pod's dlv
    p.busy = true;
    p.error = "agent at " + address + " is busy with other probes";
    return p;
  }
  // The agent may answer from a dlv call that finished under 100 ms ago ("cached"): then this round
  // trip never reached dlv, so the reused call's own dlv time is added to keep the attach latency a
  // controller -> agent -> dlv figure.
  if (reply->cached) p.latency_seconds += reply->latency_seconds;
  p.ok = reply->ok && status == 200;
  if (!p.ok) {
    p.error = reply->error;
    if (p.error.empty()) p.error = "dlv probe failed (HTTP " + std::to_string(status) + ")";
  }
  return p;
}

}  // namespace graydebug::controller
