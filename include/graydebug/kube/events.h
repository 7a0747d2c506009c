#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "graydebug/kube/client.h"

namespace graydebug::kube {

// Records core/v1 Events about objects, off the caller's thread. The same (object, type, reason,
// message) within 10 minutes bumps the existing Event's count and lastTimestamp instead of
// creating another, and each object gets at most `burst` events plus one per `refill` after that,
// so a flapping session cannot flood the API server. When the queue is full, events are dropped
// (counted in dropped()).
class EventRecorder {
 public:
  struct Options {
    std::string component = "graydebug";  // source.component / reportingController
    std::string instance;                 // reportingInstance (the pod name)
    std::size_t queue_limit = 1000;
    int burst = 25;
    std::chrono::seconds refill{300};
    std::chrono::seconds aggregate_window{600};
  };

  EventRecorder(std::shared_ptr<Client> client, Options options);
  ~EventRecorder();  // flushes what is queued (bounded), then stops

  // `object` needs apiVersion, kind, metadata.name/namespace/uid. type: "Normal" or "Warning".
  void Record(const nlohmann::json& object, const std::string& type, const std::string& reason,
              const std::string& message);
  // Blocks until every queued event has been sent (for tests and shutdown).
  void Flush();
  uint64_t dropped() const;
  uint64_t sent() const;
  // Aggregation keys and per-object limits remembered (each forgotten once it no longer matters:
  // an Event older than aggregate_window, a bucket refilled to its burst).
  std::size_t remembered() const;

 private:
  // What an Event says about its object (a queued event holds this, never the whole object).
  struct ObjectRef {
    std::string api_version, kind, name, ns, uid, resource_version;
  };
  struct Pending {
    ObjectRef object;
    std::string type, reason, message;
    Clock::Wall when;
  };
  struct Seen {
    std::string event_name, ns;
    int64_t count = 0;
    Clock::Wall first, last;
  };
  void Loop();
  void Send(const Pending& p);
  bool Allowed(const std::string& object_key);
  void Forget(Clock::Wall now);

  std::shared_ptr<Client> client_;
  Options options_;
  const Clock& clock_;
  mutable std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  std::deque<Pending> queue_;
  bool stopping_ = false, busy_ = false;
  uint64_t dropped_ = 0, sent_ = 0;
  std::map<std::string, Seen> seen_;                                 // aggregation key -> the Event created for it
  std::map<std::string, std::pair<double, Clock::Steady>> buckets_;  // object -> tokens, last refill
  std::size_t sends_since_forget_ = 0;
  std::atomic<std::size_t> remembered_{0};
  std::thread thread_;
};

}  // namespace graydebug::kube
