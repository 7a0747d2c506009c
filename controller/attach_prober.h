#pragma once

#include <chrono>
#include <string>

#include "controller/session_reconciler.h"

namespace graydebug::controller {

// Runs one attach attempt against a pod's agent ("<podIP>:<port>"). The one call of a reconcile
// that waits on the network: the attempt itself, bounded by the prober's timeout.
class AttachProber {
 public:
  virtual ~AttachProber() = default;
  virtual ProbeResult Probe(const std::string& address) = 0;
};

// GET http://<address>/probe/dlv: the agent makes one GetVersion call to the pod's dlv. The latency
// is the whole round trip as the controller sees it. Refused, timed out, a non-JSON answer or
// {"ok": false} are attach failures (SPEC §6). An agent that is busy with other probes answers at
// once (ProbeResult::busy); the controller asks again later, it never sleeps for it.
class HttpAttachProber final : public AttachProber {
 public:
  // `timeout` bounds the whole round trip, `connect_timeout` the TCP connect to the agent.
  explicit HttpAttachProber(std::chrono::milliseconds timeout,
                            std::chrono::milliseconds connect_timeout = std::chrono::seconds(1))
      : timeout_(timeout), connect_timeout_(connect_timeout) {}
  ProbeResult Probe(const std::string& address) override;

 private:
  std::chrono::milliseconds timeout_, connect_timeout_;
};

// Reads the agent's answer to GET /probe/dlv (HTTP `status` and `body`) after a round trip of
// `seconds`. Not JSON, no boolean "ok", {"ok": false} or a status other than 200 are failures; a 503
// "busy" is graydebug's own fault. Never throws, whatever the (untrusted) agent sent.
ProbeResult ParseProbeReply(const std::string& address, int status, const std::string& body, double seconds);

}  // namespace graydebug::controller
