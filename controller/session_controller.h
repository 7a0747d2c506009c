#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "controller/session_reconciler.h"
#include "graydebug/kube/client.h"
#include "graydebug/kube/events.h"
#include "graydebug/kube/informer.h"
#include "graydebug/workqueue.h"

namespace prometheus {
class Registry;
template <class T>
class Family;
class Gauge;
class Counter;
class Histogram;
}  // namespace prometheus

namespace graydebug::controller {

// Runs one attach attempt against a pod's agent ("<podIP>:<port>").
class AttachProber {
 public:
  virtual ~AttachProber() = default;
  virtual ProbeResult Probe(const std::string& address) = 0;
};

// GET http://<address>/probe/dlv: the agent makes one GetVersion call to the pod's dlv. The latency
// is the whole round trip as the controller sees it. Refused, timed out, a non-JSON answer or
// {"ok": false} are attach failures (SPEC §6).
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

// The breakers' side of the controller (SPEC §6): BreakerStore in the cluster.
class BreakerSource {
 public:
  virtual ~BreakerSource() = default;
  virtual CircuitView View(const std::string& release_key, Clock::Wall now) = 0;
  // `pod` is the pod the attempt went to (its owner is where a trip is reported); may be null.
  virtual void Record(const std::string& release_key, bool success, Clock::Wall now, const nlohmann::json* pod) = 0;
  // Waits up to `timeout` until every attempt recorded so far is stored where the next leader reads
  // it. True when it is (or when nothing needs storing); false on timeout or stop.
  virtual bool WaitPersisted(std::chrono::milliseconds /*timeout*/) { return true; }
};

struct ControllerOptions {
  std::string namespace_;  // "" = all namespaces
  int workers = 2;
  ReconcilerConfig reconciler;
};

// The controller's adapter around SessionReconciler: informers on DebugSessions and on injected
// pods (label graydebug.io/injected=true, trimmed to the fields it reads), a work queue, status
// and finalizer writes, events, and the SPEC §5 metrics.
class SessionController {
 public:
  SessionController(std::shared_ptr<kube::Client> client, ControllerOptions options, AttachProber& prober,
                    BreakerSource& breakers, prometheus::Registry& registry, kube::EventRecorder* events);
  ~SessionController();

  void StartInformers();
  bool HasSynced() const;
  // Starts the workers (call when leading). Idempotent.
  void StartWorkers();
  // Stops workers and informers; in-flight reconciles finish.
  void Stop();

  // One reconcile of "namespace/name" (exposed for tests). Returns false to retry with backoff.
  bool ReconcileKey(const std::string& key);

 private:
  void Enqueue(const nlohmann::json& session);
  void EnqueueNamespace(const std::string& ns);
  void SetActive(const std::string& key, bool active, const std::string& ns, const std::string& pod,
                 const std::string& release);
  void RecordAttempt(const std::string& ns, const std::string& release, const ProbeResult& p);

  std::shared_ptr<kube::Client> client_;
  ControllerOptions options_;
  SessionReconciler reconciler_;
  AttachProber& prober_;
  BreakerSource& breakers_;
  kube::EventRecorder* events_;
  RealClock clock_;
  WorkQueue queue_;
  kube::Informer sessions_, pods_;

  std::mutex index_mu_;
  std::map<std::string, std::set<std::string>> by_namespace_;  // non-final session keys per namespace

  prometheus::Family<prometheus::Gauge>& active_;
  prometheus::Family<prometheus::Histogram>& latency_;
  prometheus::Family<prometheus::Counter>& attempts_;
  std::mutex metrics_mu_;
  std::map<std::string, std::map<std::string, std::string>> active_labels_;             // session key -> series
  std::map<std::map<std::string, std::string>, std::set<std::string>> active_holders_;  // series -> sessions

  std::mutex written_mu_;
  std::map<std::string, std::string> written_;  // session key -> resourceVersion of our last write
  std::map<std::string, Clock::Wall> probed_;   // session key -> last probe (not always written down)

  std::vector<std::thread> workers_;
  std::atomic<bool> workers_started_{false};
};

}  // namespace graydebug::controller
