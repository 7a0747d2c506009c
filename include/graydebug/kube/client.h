#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "graydebug/api/debug_session.h"
#include "graydebug/backoff.h"
#include "graydebug/clock.h"
#include "graydebug/kube/config.h"
#include "graydebug/kube/transport.h"
#include "graydebug/result.h"

namespace graydebug::kube {

// A kind of object on the API server: group ("" for core), version, plural resource name.
struct Resource {
  std::string group;
  std::string version;
  std::string resource;
  bool namespaced = true;

  static Resource Pods() { return {"", "v1", "pods", true}; }
  static Resource Namespaces() { return {"", "v1", "namespaces", false}; }
  static Resource ConfigMaps() { return {"", "v1", "configmaps", true}; }
  static Resource Events() { return {"", "v1", "events", true}; }
  static Resource Leases() { return {"coordination.k8s.io", "v1", "leases", true}; }
  static Resource DebugSessions() { return {api::kGroup, api::kVersion, api::kSessionResource, true}; }
};

struct ListOptions {
  std::string label_selector;
  std::string field_selector;
  int64_t limit = 0;  // page size; 0 = server default (everything)
  std::string continue_token;
  std::string resource_version;  // "" = most recent
  int64_t timeout_seconds = 0;   // watch: server ends the watch after this long
  bool allow_bookmarks = true;   // watch only
  // ListEachRaw only: ask for Kubernetes' protobuf encoding, JSON as the fallback (a custom
  // resource has no protobuf); the page callback then gets whichever the server chose.
  bool prefer_protobuf = false;
};

enum class PatchType { kMerge, kJson, kStrategicMerge };

struct ClientOptions {
  double qps = 20;  // client-side rate limit (<= 0: unlimited)
  int burst = 40;
  int max_retries = 5;  // on 429, 5xx, timeouts and connection errors
  std::chrono::milliseconds retry_base{100};
  std::chrono::milliseconds retry_cap{5000};
  std::chrono::milliseconds request_timeout{30000};
  std::chrono::seconds watch_idle_timeout{330};  // longer than any server-side watch timeout
  std::string user_agent = "graydebug";
  const Clock* clock = nullptr;  // nullptr: the real clock
};

// One event of a watch stream.
struct WatchEvent {
  enum class Type { kAdded, kModified, kDeleted, kBookmark, kError };
  Type type = Type::kAdded;
  nlohmann::json object;  // the object, or the Status for kError
};

// Parses one line of a watch stream. Errors (not JSON, unknown type, no object) are kDecode.
// A parser filter for nlohmann::json::parse that drops metadata.managedFields of the objects whose
// members are keys at `object_depth` (1: the document, 2: a watch event's object, 3: a list's items).
// Nothing in graydebug reads them and they are the larger half of a typical object: skipped while
// parsing instead of being built and then erased.
nlohmann::json::parser_callback_t DropManagedFields(int object_depth);

// The event's object comes without metadata.managedFields (dropped while parsing).
Result<WatchEvent> ParseWatchEvent(const std::string& line);

// An open watch; read events until it ends. Destroying it closes the connection.
class Watch {
 public:
  explicit Watch(std::unique_ptr<LineStream> stream) : stream_(std::move(stream)) {}
  // Blocks for the next event. False when the stream ended (normally: the server's timeout, or
  // an idle timeout, or Cancel()); then *error says why (kNone for a clean end).
  bool Next(WatchEvent* event, ApiError* error);
  // From any thread: makes Next return false promptly.
  void Cancel() { stream_->Cancel(); }

 private:
  std::unique_ptr<LineStream> stream_;
};

// The one Kubernetes API client of graydebug (webhook, controller, agent and plugin).
// Thread-safe. Every call returns a Result: the object (JSON) or a typed ApiError; it retries
// 429/5xx/connection errors with jittered backoff (honouring Retry-After) up to max_retries,
// and waits for the client-side rate limit.
class Client {
 public:
  Client(RestConfig config, std::unique_ptr<HttpTransport> transport, ClientOptions options = {});
  // Builds the HTTP transport for `config`; on bad TLS material the error is kConfig.
  static Result<std::shared_ptr<Client>> Create(const RestConfig& config, ClientOptions options = {});

  Result<nlohmann::json> Get(const Resource& r, const std::string& ns, const std::string& name);
  // One page; follow "metadata.continue" for the next (or use ListAll).
  Result<nlohmann::json> List(const Resource& r, const std::string& ns, const ListOptions& options = {});
  // Every page, handing each item to `each` as it arrives (only one page is in memory at a time),
  // without its metadata.managedFields (dropped while parsing: nothing here reads them).
  // Returns the list's resourceVersion. Stops with the error of a failed page (a 410 on a later
  // page means the continue token expired: list again).
  Result<std::string> ListEach(const Resource& r, const std::string& ns, ListOptions options,
                               const std::function<void(nlohmann::json& item)>& each);
  // Every page's body as it arrives, for a decoder of its own (the informer's): `page` reads it and
  // says how to go on (the page's metadata.continue, "" on the last, and resourceVersion) or why it
  // cannot (the list then fails with a kDecode error). With prefer_protobuf the body is read from
  // the connection piece by piece (decoded while the rest arrives); else it is read whole first.
  // Returns the list's resourceVersion.
  struct PageInfo {
    std::string continue_token, resource_version, error;
  };
  class BodyReader {
   public:
    explicit BodyReader(std::unique_ptr<LineStream> stream) : stream_(std::move(stream)) {}
    // Appends the next bytes to *out. False at the end of the body, or when reading it failed (then
    // the list fails with error(), whatever the page says). Bodies are limited to 512 MiB.
    bool Next(std::string* out);
    // Appends all that is left; false when reading failed.
    bool Rest(std::string* out);
    const ApiError& error() const { return error_; }

   private:
    std::unique_ptr<LineStream> stream_;  // read with ReadSome
    std::size_t read_ = 0;
    ApiError error_;
  };
  Result<std::string> ListEachRaw(const Resource& r, const std::string& ns, ListOptions options,
                                  const std::function<PageInfo(BodyReader& body)>& page);
  // ListEach's decoder of one page: nlohmann, each item without metadata.managedFields.
  static PageInfo EachItem(const std::string& body, const std::function<void(nlohmann::json& item)>& each);
  // Every page, concatenated: {"items": [...], "metadata": {"resourceVersion": ...}}. A 410 on a
  // later page (the continue token expired) restarts the list once from the beginning.
  Result<nlohmann::json> ListAll(const Resource& r, const std::string& ns, ListOptions options = {});
  Result<nlohmann::json> Create(const Resource& r, const std::string& ns, const nlohmann::json& object);
  // PUT; the object's metadata.resourceVersion makes it conditional (Conflict when stale).
  Result<nlohmann::json> Update(const Resource& r, const std::string& ns, const nlohmann::json& object);
  Result<nlohmann::json> UpdateStatus(const Resource& r, const std::string& ns, const nlohmann::json& object);
  Result<nlohmann::json> Patch(const Resource& r, const std::string& ns, const std::string& name, PatchType type,
                               const std::string& patch, const std::string& subresource = "");
  // DELETE; returns the Status or the object. `grace_seconds` < 0: the server's default.
  Result<nlohmann::json> Delete(const Resource& r, const std::string& ns, const std::string& name,
                                int64_t grace_seconds = -1, const std::string& precondition_uid = "");
  // Opens a watch (resource_version from a list; allow_bookmarks; timeout_seconds).
  Result<std::unique_ptr<Watch>> StartWatch(const Resource& r, const std::string& ns, const ListOptions& options);

  // The path of a collection or object: /api/v1/namespaces/ns/pods/name/status.
  static std::string Path(const Resource& r, const std::string& ns, const std::string& name = "",
                          const std::string& subresource = "");
  const RestConfig& config() const { return config_; }
  const Clock& clock() const { return *clock_; }

 private:
  Result<nlohmann::json> Send(HttpRequest request, bool idempotent);
  // The same, parsing a 2xx body through `filter` (nlohmann's parser callback; empty: everything).
  // SendRaw returns the 2xx body as it came, and its status in *status when given.
  // With `body`, a 2xx body is not read: it is left in *body (HttpTransport::Fetch).
  Result<std::string> SendRaw(HttpRequest request, bool idempotent, int* status = nullptr,
                              std::unique_ptr<LineStream>* body = nullptr);
  Result<nlohmann::json> Send(HttpRequest request, bool idempotent, const nlohmann::json::parser_callback_t& filter);
  void Authorize(HttpRequest& request);

  RestConfig config_;
  std::unique_ptr<HttpTransport> transport_;
  ClientOptions options_;
  const Clock* clock_;
  RateLimiter limiter_;
  std::mutex token_mu_;
  std::string cached_token_;
  int64_t token_mtime_ns_ = -1;
};

// Percent-encodes a query parameter value.
std::string QueryEscape(const std::string& s);

}  // namespace graydebug::kube
