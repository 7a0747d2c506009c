#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "controller/attach_prober.h"
#include "controller/session_metrics.h"
#include "controller/session_reconciler.h"
#include "graydebug/clock.h"
#include "graydebug/kube/client.h"
#include "graydebug/kube/events.h"
#include "graydebug/kube/informer.h"
#include "graydebug/memory.h"
#include "graydebug/workqueue.h"

namespace graydebug::controller {

// The breakers' side of the controller (SPEC §6): BreakerStore in the cluster.
class BreakerSource {
 public:
  virtual ~BreakerSource() = default;
  virtual CircuitView View(const std::string& release_key, Clock::Wall now) = 0;
  // Records one attempt; `pod` is the pod it went to (its owner is where a trip is reported; may be
  // null). Returns the attempt's sequence number for Stored().
  virtual uint64_t Record(const std::string& release_key, bool success, Clock::Wall now, const nlohmann::json* pod) = 0;
  // Whether attempt `seq` (and every one before it) is stored where the next leader reads it. Never
  // waits: when it is not stored yet, the store writes soon and then calls the OnStored callback.
  virtual bool Stored(uint64_t /*seq*/) { return true; }
  // `f` runs (on the store's writer) after each write that stored attempts.
  virtual void OnStored(std::function<void()> /*f*/) {}
};

struct ControllerOptions {
  std::string namespace_;  // "" = all namespaces
  int workers = 2;
  ReconcilerConfig reconciler;
  const Clock* clock = nullptr;  // nullptr: the real clock
  // How long a status write waits for its attempt to be stored in the breaker ConfigMap before it
  // is written anyway (with a warning): a leader that dies in between must not leave the breaker
  // short of attempts the sessions report.
  std::chrono::milliseconds stored_wait{std::chrono::seconds(10)};
  // How often, and how soon, a busy agent is asked again before the reconciler sees "busy".
  int busy_retries = 5;
  std::chrono::milliseconds busy_retry{100};  // 100 ms, 200 ms, ...
};

// The controller's adapter around SessionReconciler: informers on DebugSessions and on injected
// pods (label graydebug.io/injected=true, trimmed to the fields it reads), a work queue, status
// and finalizer writes, events, and the SPEC §5 metrics. One reconcile is Observe (caches and
// memory -> SessionInput) -> SessionReconciler::Reconcile (pure) -> Apply (writes); it never
// sleeps or waits for anything but the attach probe itself: whatever must wait is requeued.
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
  // A probe result whose attempt is recorded in the breaker but not stored yet: the session's
  // status is written from it once the breaker is stored (or stored_wait has passed).
  struct HeldProbe {
    ProbeResult result;
    Clock::Wall at;       // when it was probed (the status's time)
    Clock::Steady since;  // when it started waiting
    uint64_t seq = 0;     // the breaker's sequence number of the attempt
  };
  // What one reconcile starts from.
  struct Observation {
    std::string key, ns, name;
    nlohmann::json session;
    std::vector<nlohmann::json> pods;
    const nlohmann::json* pod = nullptr;  // the resolved one, in `pods`
    SessionInput input;
    bool held = false;  // input.probe is a held probe (its attempt is recorded already)
  };
  enum class Observed { kReady, kGone, kRequeued };

  Observed Observe(const std::string& key, Observation* o);
  bool Apply(Observation& o, const SessionActions& a);
  void Forget(const std::string& key);
  void Enqueue(const nlohmann::json& session);
  void EnqueueNamespace(const std::string& ns);

  std::shared_ptr<kube::Client> client_;
  ControllerOptions options_;
  const Clock& clock_;
  SessionReconciler reconciler_;
  AttachProber& prober_;
  BreakerSource& breakers_;
  kube::EventRecorder* events_;
  SessionMetrics metrics_;
  WorkQueue queue_;
  kube::Informer sessions_, pods_;

  std::mutex index_mu_;
  std::map<std::string, std::set<std::string>> by_namespace_;  // non-final session keys per namespace

  // The controller's memory of each session (under memory_mu_).
  std::mutex memory_mu_;
  // resourceVersions our own writes superseded: a cached session at one of them is older than our
  // last write (resourceVersions are opaque: compared for equality only).
  std::map<std::string, std::set<std::string>> superseded_;
  std::map<std::string, Clock::Wall> probed_;  // last probe (not always written down)
  std::map<std::string, HeldProbe> held_;
  std::map<std::string, int> busy_;  // busy answers in a row

  std::vector<std::thread> workers_;
  std::atomic<bool> workers_started_{false};
  // Gives the workers' freed memory back after a burst of reconciles (docs/decisions.md, #18).
  std::unique_ptr<TrimAfterBursts> trim_;
};

}  // namespace graydebug::controller
