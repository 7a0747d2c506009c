// The informer over the fake API server with scripted watches (no network): what it does with odd
// watch events.
// Regressions of bugs found while writing the watch fuzz target (tests/fuzz/watch_fuzz.cpp).
#include "graydebug/kube/informer.h"

#include <doctest/doctest.h>

#include <atomic>
#include <deque>
#include <thread>

#include "support/fake_apiserver.h"
#include "support/recording_sink.h"

using namespace std::chrono_literals;
using graydebug::kube::ClientOptions;
using graydebug::kube::ErrorKind;
using graydebug::kube::HttpRequest;
using graydebug::kube::HttpResponse;
using graydebug::kube::Informer;
using graydebug::kube::InformerOptions;
using graydebug::kube::Resource;

namespace {

const char* kWatches = "WATCH /api/v1/pods";
const char* kLists = "GET /api/v1/pods";

// An informer on pods over the fake API server, which holds pod shop/a: the first watch streams
// `events` as scripted, every later one fails to connect.
struct Rig {
  graydebug::testing::FakeApiServer api;
  std::unique_ptr<Informer> informer;
  std::atomic<int> watches{0};
  explicit Rig(std::deque<std::string> events) {
    api.Seed(Resource::Pods(), {{"metadata", {{"name", "a"}, {"namespace", "shop"}}}});
    api.ScriptWatch(std::move(events));
    api.Intercept([this](const HttpRequest& r) -> std::optional<HttpResponse> {
      if (r.path.find("watch=true") == std::string::npos || ++watches == 1) return std::nullopt;
      HttpResponse refused;
      refused.error = {ErrorKind::kConnection, 0, "", "no more watches"};
      return refused;
    });
    ClientOptions o;
    o.max_retries = 0;
    InformerOptions io;
    io.backoff_base = 1ms;
    io.backoff_cap = 2ms;
    io.name = "pods";
    informer = std::make_unique<Informer>(api.NewClient(o), Resource::Pods(), "", io);
    informer->Start();
  }
  bool WaitFor(const char* prefix, int n) { return api.WaitForCount(prefix, n, 10s); }
};

}  // namespace

TEST_CASE("informer: an ERROR event whose Status has a string code or a numeric message does not kill it") {
  // Found while writing the watch fuzz target: json::value("code", 0) threw type_error on {"code":"410"} in the
  // informer's thread, which has no handler, so the whole process aborted.
  Rig rig({R"({"type":"ERROR","object":{"kind":"Status","code":"410","message":7}})"});
  REQUIRE(rig.WaitFor(kWatches, 2));  // it reconnected instead of dying
  rig.informer->Stop();
  CHECK(rig.informer->Lists() == 1);  // an unreadable code is not a 410: no relist
  CHECK(rig.informer->Size() == 1);
}

TEST_CASE("informer: an ERROR event with code 410 relists") {
  Rig rig({R"({"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired"}})"});
  REQUIRE(rig.WaitFor(kLists, 2));
  rig.informer->Stop();
  CHECK(rig.informer->Size() == 1);
}

TEST_CASE("informer: lists and watch restarts are reported by reason") {
  graydebug::testing::RecordingSink sink;
  {
    // The first watch ends with a 410 (a relist follows); the second cannot start (an error).
    Rig rig({R"({"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired"}})"});
    REQUIRE(rig.WaitFor(kWatches, 2));
    rig.informer->Stop();
  }
  CHECK(sink.Count("list pods ok") == 2);
  CHECK(sink.Count("watch-restart pods gone") == 1);
  CHECK(sink.Count("watch-restart pods error") >= 1);
  CHECK(sink.Count("watch-restart pods closed") == 0);
}

TEST_CASE("informer: a watch the server closes is reported as closed") {
  graydebug::testing::RecordingSink sink;
  {
    Rig rig({R"({"type":"ADDED","object":{"metadata":{"name":"b","namespace":"shop","resourceVersion":"11"}}})"});
    REQUIRE(rig.WaitFor(kWatches, 2));
    rig.informer->Stop();
  }
  CHECK(sink.Count("list pods ok") == 1);
  CHECK(sink.Count("watch-restart pods closed") == 1);
}

TEST_CASE("informer: the first list may come from the watch cache, a relist after 410 reads the current state") {
  Rig rig({R"({"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired"}})"});
  REQUIRE(rig.WaitFor(kLists, 2));
  rig.informer->Stop();
  std::vector<std::string> lists;
  for (const HttpRequest& r : rig.api.FullRequests()) {
    if (r.method == "GET" && r.path.rfind("/api/v1/pods?", 0) == 0 && r.path.find("watch=true") == std::string::npos) {
      lists.push_back(r.path);
    }
  }
  REQUIRE(lists.size() >= 2);
  CHECK(lists[0].find("resourceVersion=0") != std::string::npos);
  CHECK(lists[1].find("resourceVersion=") == std::string::npos);
}

namespace {

// Keeps the name, namespace and labels, and marks the object: what a trimming transform does.
void Trim(nlohmann::json& o) {
  nlohmann::json md = o["metadata"];
  o = {{"metadata",
        {{"name", md["name"]},
         {"namespace", md["namespace"]},
         {"labels", md.value("labels", nlohmann::json::object())}}},
       {"trimmed", true}};
}

std::unique_ptr<Informer> TrimmingInformer(graydebug::testing::FakeApiServer& api) {
  ClientOptions o;
  o.max_retries = 0;
  InformerOptions io;
  io.name = "trimmed";
  io.transform = Trim;
  auto informer = std::make_unique<Informer>(api.NewClient(o), Resource::Pods(), "", io);
  informer->Start();
  for (int i = 0; !informer->HasSynced() && i < 10000; ++i) std::this_thread::sleep_for(1ms);
  REQUIRE(informer->HasSynced());
  return informer;
}

}  // namespace

TEST_CASE("informer: a transform sees each listed item whole (without managedFields) and the cache keeps its result") {
  graydebug::testing::FakeApiServer api;
  std::vector<nlohmann::json> seen;
  for (int i = 0; i < 3; ++i) {
    api.Seed(Resource::Pods(), {{"metadata",
                                 {{"name", "p" + std::to_string(i)},
                                  {"namespace", "shop"},
                                  {"labels", {{"app", "order"}, {"n", std::to_string(i)}}},
                                  {"managedFields", {{{"manager", "kubectl"}}}}}},
                                {"spec", {{"containers", {{{"name", "order"}, {"image", "order:v2"}}}}}}});
  }
  auto informer = TrimmingInformer(api);
  informer->Stop();
  CHECK(informer->SlowPages() == 0);
  REQUIRE(informer->Size() == 3);
  for (int i = 0; i < 3; ++i) {
    auto got = informer->Get("shop/p" + std::to_string(i));
    REQUIRE(got);
    CHECK(*got == nlohmann::json{{"metadata",
                                  {{"name", "p" + std::to_string(i)},
                                   {"namespace", "shop"},
                                   {"labels", {{"app", "order"}, {"n", std::to_string(i)}}}}},
                                 {"trimmed", true}});
  }
}

TEST_CASE("informer: a page simdjson refuses is decoded the slow way and still transformed") {
  graydebug::testing::FakeApiServer api;
  HttpResponse page;
  page.status = 200;
  // An integer beyond 64 bits: simdjson refuses the page, nlohmann reads it (as a double).
  page.body = R"({"kind":"PodList","metadata":{"resourceVersion":"5"},"items":[)"
              R"({"metadata":{"name":"big","namespace":"shop","labels":{"a":"b"}},"spec":{"n":18446744073709551616}},)"
              R"({"metadata":{"name":"small","namespace":"shop","managedFields":[{}]}}]})";
  api.Script({page});
  auto informer = TrimmingInformer(api);
  informer->Stop();
  CHECK(informer->SlowPages() == 1);
  CHECK(informer->Get("shop/big") ==
        nlohmann::json{{"metadata", {{"name", "big"}, {"namespace", "shop"}, {"labels", {{"a", "b"}}}}},
                       {"trimmed", true}});
  CHECK(informer->Get("shop/small") ==
        nlohmann::json{{"metadata", {{"name", "small"}, {"namespace", "shop"}, {"labels", nlohmann::json::object()}}},
                       {"trimmed", true}});
}
