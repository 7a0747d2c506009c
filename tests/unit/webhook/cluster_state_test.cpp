// The webhook's view of ConfigMap graydebug-circuits over a scripted transport (no network).
#include "webhook/cluster_state.h"

#include <doctest/doctest.h>

#include <thread>

using namespace std::chrono_literals;
using graydebug::kube::Client;
using graydebug::kube::ClientOptions;
using graydebug::kube::ErrorKind;
using graydebug::kube::HttpRequest;
using graydebug::kube::HttpResponse;
using graydebug::kube::HttpTransport;
using graydebug::kube::StreamResponse;

namespace {

// Lists answer `list`; watches fail (the informer retries them with backoff until stopped).
class ListOnly final : public HttpTransport {
 public:
  explicit ListOnly(std::string list) : list_(std::move(list)) {}
  HttpResponse Do(const HttpRequest&) override { return {200, list_, "", {}}; }
  StreamResponse Stream(const HttpRequest&) override {
    StreamResponse s;
    s.head.error = {ErrorKind::kConnection, 0, "", "no watches here"};
    return s;
  }

 private:
  std::string list_;
};

}  // namespace

TEST_CASE("cluster breakers: an entry of the wrong shape is ignored, the others still count") {
  // Found with the config fuzz target (breaker state, seed breaker-mistyped): json::value("state",
  // "") threw type_error on {"state":5} in the informer's thread, so one bad entry in the ConfigMap
  // aborted every webhook replica, again on each restart.
  const char* list = R"({"metadata":{"resourceVersion":"7"},"items":[{"metadata":{"name":"graydebug-circuits",
    "namespace":"graydebug-system","resourceVersion":"7"},"data":{"shop.v1":"{\"state\":5}",
    "shop.v2":"{\"state\":\"open\"}","shop.v3":"not json","shop.v4":"{\"state\":[\"open\"]}"}}]})";
  ClientOptions o;
  o.qps = 0;
  o.max_retries = 0;
  graydebug::kube::RestConfig cfg;
  cfg.server = "https://127.0.0.1:1";
  graydebug::webhook::ClusterBreakers breakers(std::make_shared<Client>(cfg, std::make_unique<ListOnly>(list), o),
                                               "graydebug-system");
  breakers.Start();
  for (int i = 0; i < 500 && !breakers.HasSynced(); ++i) std::this_thread::sleep_for(10ms);
  REQUIRE(breakers.HasSynced());
  CHECK(breakers.IsOpen("shop/v2"));
  CHECK_FALSE(breakers.IsOpen("shop/v1"));
  CHECK_FALSE(breakers.IsOpen("shop/v3"));
  CHECK_FALSE(breakers.IsOpen("shop/v4"));
  breakers.Stop();
}
