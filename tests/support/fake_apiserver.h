#pragma once

// The one fake Kubernetes API server of the unit tests: an in-memory object store behind the
// client's HttpTransport, so the real kube::Client, informers, leader election and controllers run
// on it without a network. It keeps resourceVersions (one counter, as etcd's revision), answers
// GET, LIST (equality label selectors), WATCH (from a resourceVersion, 410 once compacted), POST,
// PUT (conditional on resourceVersion, the status subresource apart), merge and JSON patches,
// DELETE (finalizers, uid preconditions) with the API server's Status bodies. Faults are scripted
// with Intercept(); every request is logged. Fakes are for unit tests only: integration tests use a
// real kube-apiserver (tests/support/local_cluster.h).

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "graydebug/clock.h"
#include "graydebug/kube/client.h"
#include "graydebug/kube/transport.h"

namespace graydebug::testing {

class FakeApiServer final : public kube::HttpTransport {
 public:
  // `clock` stamps creationTimestamp/deletionTimestamp (nullptr: the real clock).
  explicit FakeApiServer(const Clock* clock = nullptr);
  ~FakeApiServer() override;

  kube::HttpResponse Do(const kube::HttpRequest& request) override;
  kube::StreamResponse Stream(const kube::HttpRequest& request) override;

  // A client over this server (no rate limit; the fake clock unless options.clock is set; server
  // and token from `config` when given). The server must outlive it.
  std::shared_ptr<kube::Client> NewClient(kube::ClientOptions options = {}, kube::RestConfig config = {});

  // Stores `object` as if created (name and, when namespaced, namespace from its metadata);
  // returns it as stored, with resourceVersion and uid.
  nlohmann::json Seed(const kube::Resource& r, nlohmann::json object);
  // The stored object, or nullopt.
  std::optional<nlohmann::json> Get(const kube::Resource& r, const std::string& ns, const std::string& name) const;
  std::vector<nlohmann::json> List(const kube::Resource& r, const std::string& ns = "") const;

  // Called before each request is served (also watches); an answer replaces the server's.
  using Interceptor = std::function<std::optional<kube::HttpResponse>(const kube::HttpRequest&)>;
  void Intercept(Interceptor f);
  // The next answers of Do(), in this order, before the store is consulted (it serves again once
  // they are used up). Intercept comes first.
  void Script(std::deque<kube::HttpResponse> replies);
  // The next watch answers 200 and streams `lines` as they are (odd ones too), then ends.
  void ScriptWatch(std::deque<std::string> lines);
  // "METHOD path" of every request so far (watches as "WATCH path").
  std::vector<std::string> Requests() const;
  // Every request so far, whole (headers, body; watches too).
  std::vector<kube::HttpRequest> FullRequests() const;
  // How many requests starting with `prefix` were answered with HTTP `code` (not counting ones
  // still in an interceptor).
  int Answered(const std::string& prefix, int code) const;
  // How many requests so far start with `prefix` (e.g. "PUT /apis/graydebug.io").
  int Count(const std::string& prefix) const;
  // Waits (real time, bounded by `timeout`) until Count(prefix) >= n.
  bool WaitForCount(const std::string& prefix, int n, std::chrono::milliseconds timeout) const;

  // Ends every open watch (as an API server restart would); informers reconnect.
  void CloseWatches();
  // Forgets the event history: a watch from an older resourceVersion gets 410 Gone.
  void Compact();
  int64_t resource_version() const;

  // A Status body like the API server's.
  static kube::HttpResponse StatusReply(int code, const std::string& reason, const std::string& message);

 private:
  struct State;
  class WatchStream;
  kube::HttpResponse Serve(const kube::HttpRequest& request);
  std::string Now() const;
  const Clock* clock_;
  std::shared_ptr<State> s_;  // shared with open watch streams, which may outlive a call
};

}  // namespace graydebug::testing
