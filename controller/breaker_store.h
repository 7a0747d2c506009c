#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "controller/session_controller.h"
#include "graydebug/circuit_breaker.h"
#include "graydebug/workqueue.h"

namespace graydebug::controller {

// The leader's circuit breakers, one per release, kept in ConfigMap graydebug-circuits (data key
// "<namespace>.<release>", value: CircuitBreaker JSON) so webhook replicas and the next leader see
// them. Writes are resourceVersion-checked; a state change is written at once, window updates at
// most once a second, or at once when a caller waits for its attempt to be stored. Exports
// graydebug_circuit_state and graydebug_circuit_trips_total, raises a Warning Event on the owning
// workload when a breaker opens and, with pauseRollout, pauses the owning Deployment.
// An operator may edit the ConfigMap while the controller leads: an entry removed resets that
// breaker (closed, empty window), an entry changed replaces it, the whole ConfigMap deleted resets
// them all. The store notices within a few seconds (it re-reads the ConfigMap when its
// resourceVersion is not the one it wrote) and never writes an edited entry back.
// What a trip does to the workload (the Warning Event, the pause) is reconciled on its own thread,
// retried with backoff until done: recording an attempt never waits on the API server.
class BreakerStore final : public BreakerSource {
 public:
  BreakerStore(std::shared_ptr<kube::Client> client, std::string ns, BreakerConfig config,
               prometheus::Registry& registry, kube::EventRecorder* events, const Clock* clock = nullptr);
  ~BreakerStore() override;

  // Reads the ConfigMap (call when starting to lead). False when the API server failed (retry).
  bool Load();
  // Starts the background writer and the trip effects' worker.
  void Start();
  void Stop();  // flushes what is pending

  CircuitView View(const std::string& release_key, Clock::Wall now) override;
  uint64_t Record(const std::string& release_key, bool success, Clock::Wall now, const nlohmann::json* pod) override;
  bool Stored(uint64_t seq) override;
  void OnStored(std::function<void()> f) override;

  BreakerState StateOf(const std::string& release_key, Clock::Wall now);

  // Reads the ConfigMap and takes over what someone else changed since this store last read or
  // wrote it. False when the API server failed. (The writer calls it every few seconds.)
  bool SyncExternalEdits();

 private:
  // With mu_ held: applies the ConfigMap's current data (nullptr: it was deleted) and resourceVersion.
  void AdoptLocked(const nlohmann::json* data, const std::string& rv, Clock::Wall now);
  void PublishLocked(const std::string& release_key, const CircuitBreaker& b, Clock::Wall now);
  bool Flush();
  // A trip's effects on the workload that owns the pod, done step by step (each once).
  struct Trip {
    std::string message;
    nlohmann::json pod;  // the pod the tripping attempt went to
    bool event_done = false;
  };
  // One try at the effects of release_key's trip; false to retry with backoff.
  bool ReconcileTrip(const std::string& release_key);

  std::shared_ptr<kube::Client> client_;
  std::string ns_;
  BreakerConfig config_;
  kube::EventRecorder* events_;
  const Clock& clock_;
  prometheus::Family<prometheus::Gauge>& state_;
  prometheus::Family<prometheus::Counter>& trips_;
  prometheus::Counter& writes_;           // writes that stored attempts
  prometheus::Counter& stored_attempts_;  // attempts they stored

  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, CircuitBreaker> breakers_;  // release key -> breaker
  bool dirty_ = false, urgent_ = false, stop_ = false;
  uint64_t recorded_ = 0, persisted_ = 0;      // attempts recorded / of those, written to the ConfigMap
  std::string rv_;                             // of the ConfigMap as last read or written
  std::map<std::string, std::string> stored_;  // data key -> value, as last read or written
  std::thread writer_;

  std::mutex stored_cb_mu_;  // held while the callback runs, so replacing it waits for that
  std::function<void()> on_stored_;

  std::mutex trips_mu_;
  std::map<std::string, Trip> pending_trips_;  // release key -> its latest trip's effects still to do
  WorkQueue trip_queue_;
  std::thread trip_worker_;
};

}  // namespace graydebug::controller
