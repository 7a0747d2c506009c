#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "graydebug/kube/client.h"

namespace graydebug::kube {

// Called from the informer's threads, one call at a time (never concurrently).
struct EventHandlers {
  std::function<void(const nlohmann::json& object)> on_add;
  std::function<void(const nlohmann::json& old_object, const nlohmann::json& object)> on_update;
  std::function<void(const nlohmann::json& last_known)> on_delete;
};

struct InformerOptions {
  std::string label_selector;
  std::string field_selector;
  std::chrono::milliseconds resync{0};  // 0: never; else on_update(obj, obj) for every object
  int64_t watch_timeout_seconds = 300;  // randomised in [t, 2t) so replicas do not reconnect together
  int64_t page_size = 500;
  // The first list asks for resourceVersion=0 (served from the API server's watch cache, possibly
  // a little behind etcd; the watch that follows brings the rest). false: a consistent read.
  bool first_list_from_cache = true;
  // Lists pods as protobuf, decoded while they arrive into the same objects a JSON list gives
  // (kube/proto_list.cpp; a third of the bytes, which the API server also sends faster). Kinds
  // without tables, and a list the tables cannot read, are listed as JSON. Watches are JSON.
  bool protobuf = true;
  std::chrono::milliseconds backoff_base{250};
  std::chrono::milliseconds backoff_cap{30000};
  std::string name = "informer";  // for logs and metrics (the informer label)
  // Applied to every object before it is cached or handed to handlers: keep only what the
  // consumer needs. metadata.managedFields is always dropped first (nothing in graydebug reads it).
  std::function<void(nlohmann::json& object)> transform;
};

// List+watch into a thread-safe cache keyed by "namespace/name" (or "name" for cluster objects).
// Objects are cached as MessagePack bytes (about 15x smaller than a JSON tree); Get and List
// decode on demand. The list is consumed page by page, so its peak memory is one page.
// On a 410 Gone (HTTP or ERROR event) it relists; a relist turns into adds, updates and deletes
// against the cache, so deletes missed during an outage are noticed. Idle or server-timed-out
// watches reconnect from the last resourceVersion (bookmarks keep it fresh); failures back off.
class Informer {
 public:
  Informer(std::shared_ptr<Client> client, Resource resource, std::string ns, InformerOptions options = {});
  ~Informer();
  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  // Before Start.
  void AddHandlers(EventHandlers handlers);
  void Start();
  // Stops promptly (cancels the open watch) and joins the threads. Idempotent.
  void Stop();

  // True once the first list has been applied (readiness probes use it).
  bool HasSynced() const { return synced_.load(); }
  std::optional<nlohmann::json> Get(const std::string& key) const;
  std::vector<nlohmann::json> List() const;
  std::size_t Size() const;
  std::string LastResourceVersion() const;
  // How many times the informer listed (1 after the first sync); for tests and metrics.
  int Lists() const { return lists_.load(); }
  // List pages that simdjson could not take and nlohmann decoded
  // instead (kube/packed_page.h); for tests.
  int SlowPages() const { return slow_pages_.load(); }
  // List pages that came as protobuf and were decoded here; whether a protobuf list failed, after
  // which this informer lists as JSON (for tests).
  int ProtobufPages() const { return protobuf_pages_.load(); }
  bool ProtobufFailed() const { return protobuf_failed_.load(); }

  // "namespace/name", or "name" for cluster objects; "" when it has no name.
  static std::string KeyOf(const nlohmann::json& object);
  static std::string Key(std::string_view ns, std::string_view name);

 private:
  void Run();
  void ResyncLoop();
  bool ListAndReplace();
  // Watches until the stream needs a relist (returns true) or stop (returns false).
  bool WatchUntilRelist();
  void Apply(WatchEvent& ev);
  bool SleepInterruptible(std::chrono::milliseconds d);
  void SetRv(const std::string& rv);

  std::shared_ptr<Client> client_;
  Resource resource_;
  std::string ns_;
  InformerOptions options_;
  std::vector<EventHandlers> handlers_;

  struct Entry {
    std::string rv;
    std::vector<uint8_t> packed;  // MessagePack of the (transformed) object
  };
  void Prepare(nlohmann::json& object) const;
  static Entry Pack(const nlohmann::json& object);
  static nlohmann::json Unpack(const Entry& e);

  mutable std::shared_mutex store_mu_;
  std::unordered_map<std::string, Entry> store_;
  std::string rv_;

  std::mutex handler_mu_;  // handlers run one at a time
  std::mutex mu_;          // guards current_watch_ and stop signalling
  std::condition_variable cv_;
  Watch* current_watch_ = nullptr;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> synced_{false};
  std::atomic<int> lists_{0};
  std::atomic<int> slow_pages_{0};
  std::atomic<int> protobuf_pages_{0};
  std::atomic<bool> protobuf_failed_{false};
  std::thread thread_, resync_thread_;
};

}  // namespace graydebug::kube
