#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

namespace graydebug::telemetry {

// What the libraries report about themselves: the kube client's requests and retries, informers'
// lists and watch restarts, work queues, leadership and TLS reloads. The pure core only calls these
// hooks; a binary that serves /metrics installs a Sink backed by prometheus-cpp
// (metrics::InstallTelemetry), the others (kubectl-graydebug) keep the default, which does nothing.
// The model is client-go's tools/metrics and controller-runtime's workqueue metrics provider.

// One work queue's series, bound once per queue; called under the queue's lock, so an
// implementation must not call back into the queue.
class QueueMetrics {
 public:
  virtual ~QueueMetrics() = default;
  virtual void Added() {}
  virtual void Depth(std::int64_t /*keys ready*/) {}
  virtual void Waited(double /*seconds from Add to Get*/) {}
  virtual void Worked(double /*seconds from Get to Done*/) {}
  virtual void Retried() {}
};

class Sink {
 public:
  virtual ~Sink() = default;
  // One attempt of a request to the API server. `code` is the HTTP status, 0 when no reply came.
  virtual void KubeRequest(std::string_view /*verb*/, int /*code*/, double /*seconds*/) {}
  // A request about to be sent again (429, 5xx, timeout, connection error).
  virtual void KubeRetry(std::string_view /*verb*/) {}
  // An informer's full list (its first, or a relist after 410 Gone or a failure).
  virtual void InformerList(std::string_view /*informer*/, bool /*ok*/) {}
  // An informer's watch ended and is opened again: "closed" (server timeout, idle), "gone" (410:
  // a relist follows), "error" (a broken stream or a failed start; with backoff).
  virtual void WatchRestart(std::string_view /*informer*/, std::string_view /*reason*/) {}
  // This process started (true) or stopped (false) leading on `lease`.
  virtual void Leading(std::string_view /*lease*/, bool /*leading*/) {}
  // A server's TLS files changed: loaded (ok) or refused, keeping the current pair.
  virtual void TlsReload(std::string_view /*server*/, bool /*ok*/) {}
  virtual std::shared_ptr<QueueMetrics> Queue(std::string_view /*name*/);
};

// Installs the process-wide sink (not owned; it must outlive every caller). nullptr restores the
// default. Install before starting clients, queues and servers: a queue binds its series when named.
void Install(Sink* sink);
Sink& Current();

}  // namespace graydebug::telemetry
