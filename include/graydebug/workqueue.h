#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "graydebug/clock.h"
#include "graydebug/telemetry.h"

namespace graydebug {

// A work queue of keys ("namespace/name") for reconcilers, with client-go's guarantees:
// a key is queued at most once however often it is added; a key being processed is never handed
// to a second worker at once, and if it was added meanwhile it runs again after Done; failed keys
// come back after a per-key exponential backoff (base * 2^failures, capped).
class WorkQueue {
 public:
  explicit WorkQueue(const Clock& clock, std::chrono::milliseconds backoff_base = std::chrono::milliseconds(5),
                     std::chrono::milliseconds backoff_cap = std::chrono::milliseconds(1000 * 1000));

  void Add(const std::string& key);
  // Adds the key once `delay` has passed (the earliest of several delays wins).
  void AddAfter(const std::string& key, std::chrono::nanoseconds delay);
  // Adds the key after its backoff, which doubles with every call until Forget.
  void AddRateLimited(const std::string& key);
  // Clears the key's failure count (call after a success).
  void Forget(const std::string& key);
  int NumRequeues(const std::string& key) const;

  // Blocks until a key is ready; nullopt once the queue is shut down and drained.
  // Every returned key must be given back with Done.
  std::optional<std::string> Get();
  void Done(const std::string& key);

  // One worker: hands each key to `reconcile` until the queue is shut down and drained. True
  // forgets the key's failures; false (or a throw, logged with `what`) adds it rate-limited.
  void RunWorker(const std::function<bool(const std::string&)>& reconcile, std::string_view what);

  // Wakes every Get; keys still queued are handed out, delayed ones are dropped.
  void ShutDown();
  bool ShuttingDown() const;
  // Keys ready to be handed out (not counting delayed or in-process keys).
  std::size_t Len() const;

  // Reports depth, adds, time queued, time in process and retries as `name` through the installed
  // telemetry sink (workqueue_* metrics). Call once, before the queue is used.
  void Instrument(std::string_view name);

 private:
  void AddLocked(const std::string& key);
  void PushLocked(const std::string& key);
  void PromoteDueLocked();

  const Clock& clock_;
  std::chrono::milliseconds base_, cap_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  std::unordered_set<std::string> dirty_, processing_;
  std::unordered_map<std::string, Clock::Steady> waiting_;  // key -> when it is due
  std::unordered_map<std::string, int> failures_;
  uint64_t generation_ = 0;  // bumped by AddAfter so a sleeping Get re-plans
  bool shutting_down_ = false;
  // Set by Instrument: when each queued key was queued, when each key in process was handed out.
  std::shared_ptr<telemetry::QueueMetrics> metrics_;
  std::unordered_map<std::string, Clock::Steady> queued_at_, started_at_;
};

}  // namespace graydebug
