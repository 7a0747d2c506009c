// The client's retry, rate limit and watch parsing over the fake API server's scripted answers and a
// fake clock.
#include "graydebug/kube/client.h"

#include <doctest/doctest.h>

#include "support/fake_apiserver.h"
#include "support/fake_clock.h"
#include "support/recording_sink.h"

#include <deque>
#include <vector>

using namespace std::chrono_literals;
using graydebug::Backoff;
using graydebug::FakeClock;
using graydebug::RateLimiter;
using graydebug::kube::ApiError;
using graydebug::kube::Client;
using graydebug::kube::ClientOptions;
using graydebug::kube::ErrorKind;
using graydebug::kube::HttpRequest;
using graydebug::kube::HttpResponse;
using graydebug::kube::ParseWatchEvent;
using graydebug::kube::Resource;
using graydebug::kube::WatchEvent;
using graydebug::testing::FakeApiServer;
using nlohmann::json;

namespace {

HttpResponse Status(int code, const std::string& retry_after = "") {
  return {code, R"({"kind":"Status","message":"m","code":)" + std::to_string(code) + "}", retry_after, {}};
}
HttpResponse Refused() {
  HttpResponse r;
  r.error = {ErrorKind::kConnection, 0, "", "connection refused"};
  r.error.not_sent = true;
  return r;
}
HttpResponse Reset() {
  HttpResponse r;
  r.error = {ErrorKind::kConnection, 0, "", "connection reset by peer (not refused)"};
  return r;
}

// The client over the fake API server, whose answers the tests script; every watch answers 410.
struct Fixture {
  FakeClock clock;
  FakeApiServer api{&clock};
  std::shared_ptr<Client> client;
  explicit Fixture(ClientOptions o = {}) {
    o.clock = &clock;
    graydebug::kube::RestConfig cfg;
    cfg.token = "secret";
    client = api.NewClient(o, cfg);
    api.Intercept([](const HttpRequest& r) -> std::optional<HttpResponse> {
      if (r.path.find("watch=true") == std::string::npos) return std::nullopt;
      return FakeApiServer::StatusReply(410, "Expired", "too old resource version");
    });
  }
  std::vector<HttpRequest> requests() const { return api.FullRequests(); }
};

}  // namespace

TEST_CASE("client: 429 and 5xx are retried, honouring Retry-After, then succeed") {
  Fixture f;
  f.api.Script({Status(429, "3"), Status(503), Refused(), {200, R"({"kind":"Pod"})", "", {}}});
  auto start = f.clock.Now();
  auto r = f.client->Get(Resource::Pods(), "shop", "p");
  REQUIRE(r.ok());
  CHECK(r->at("kind") == "Pod");
  const auto requests = f.requests();
  CHECK(requests.size() == 4);
  CHECK(f.clock.Now() - start >= 3s);  // waited the Retry-After (fake time)
  CHECK(requests[0].path == "/api/v1/namespaces/shop/pods/p");
  bool auth = false;
  for (const auto& [k, v] : requests[0].headers) auth = auth || (k == "Authorization" && v == "Bearer secret");
  CHECK(auth);
}

TEST_CASE("client: every attempt and every retry is reported to the telemetry sink, watches too") {
  graydebug::testing::RecordingSink sink;
  Fixture f;
  f.api.Script({Status(503), Refused(), {200, "{}", "", {}}});
  REQUIRE(f.client->Get(Resource::Pods(), "shop", "p").ok());
  f.api.Script({Status(404)});
  CHECK(!f.client->Get(Resource::Pods(), "shop", "q").ok());
  CHECK(!f.client->StartWatch(Resource::Pods(), "shop", {}).ok());  // the transport answers 410
  CHECK(sink.calls() == std::vector<std::string>{"request GET 503", "retry GET", "request GET 0", "retry GET",
                                                 "request GET 200", "request GET 404", "request WATCH 410"});
}

TEST_CASE("client: gives up after max_retries with the last error") {
  ClientOptions o;
  o.max_retries = 2;
  Fixture f(o);
  f.api.Script({Status(500), Status(500), Status(500), Status(500)});
  auto r = f.client->Get(Resource::Pods(), "shop", "p");
  CHECK(r.error().kind == ErrorKind::kServerError);
  CHECK(f.requests().size() == 3);
}

TEST_CASE("client: 4xx is not retried; a POST is not retried on 500 (it may have been applied)") {
  Fixture f;
  f.api.Script({Status(404)});
  CHECK(f.client->Get(Resource::Pods(), "shop", "p").error().kind == ErrorKind::kNotFound);
  CHECK(f.requests().size() == 1);
  f.api.Script({Status(500)});
  CHECK(f.client->Create(Resource::Pods(), "shop", {{"metadata", {{"name", "p"}}}}).error().kind ==
        ErrorKind::kServerError);
  CHECK(f.requests().size() == 2);
  f.api.Script({Status(429), Refused(), {201, "{}", "", {}}});
  CHECK(f.client->Create(Resource::Pods(), "shop", {{"metadata", {{"name", "p"}}}}).ok());
  CHECK(f.requests().size() == 5);
  // A reset connection may have carried the POST to the server: it is not sent again, whatever
  // the message says.
  f.api.Script({Reset(), {201, "{}", "", {}}});
  auto reset = f.client->Create(Resource::Pods(), "shop", {{"metadata", {{"name", "p"}}}});
  CHECK(reset.error().kind == ErrorKind::kConnection);
  CHECK(f.requests().size() == 6);
}

TEST_CASE("client: a 404 about an object names it; a 404 about no object is a resource type not served") {
  Fixture f;
  auto missing = f.client->Get(Resource::DebugSessions(), "shop", "nope");
  CHECK(missing.error().kind == ErrorKind::kNotFound);
  CHECK(missing.error().name == "nope");
  CHECK_FALSE(missing.error().NotServed());
  auto unserved = graydebug::kube::ErrorFromResponse(
      404, R"({"kind":"Status","status":"Failure","message":"the server could not find the requested resource",)"
           R"("reason":"NotFound","details":{},"code":404})");
  CHECK(unserved.NotServed());
  CHECK(graydebug::kube::ErrorFromResponse(404, "404 page not found").NotServed());
  CHECK_FALSE(graydebug::kube::ErrorFromResponse(409, R"({"kind":"Status","code":409})").NotServed());
}

TEST_CASE("client: a 2xx that is not JSON is a decode error") {
  Fixture f;
  f.api.Script({{200, "<html>", "", {}}, {201, "created!", "", {}}});
  auto get = f.client->Get(Resource::Pods(), "shop", "p");
  CHECK(get.error().kind == ErrorKind::kDecode);
  CHECK(get.error().http_status == 200);
  // The status it came with, not a 200 made up for it.
  auto create = f.client->Create(Resource::Pods(), "shop", {{"metadata", {{"name", "p"}}}});
  REQUIRE_FALSE(create.ok());
  CHECK(create.error().kind == ErrorKind::kDecode);
  CHECK(create.error().http_status == 201);
  CHECK(create.error().ToString() == "Decode (201): response is not JSON: created!");
}

TEST_CASE("client: paths and query escaping") {
  CHECK(Client::Path(Resource::Pods(), "shop", "p", "status") == "/api/v1/namespaces/shop/pods/p/status");
  CHECK(Client::Path(Resource::Namespaces(), "ignored", "kube-system") == "/api/v1/namespaces/kube-system");
  CHECK(Client::Path(Resource::DebugSessions(), "") == "/apis/graydebug.io/v1alpha1/debugsessions");
  Fixture f;
  graydebug::kube::ListOptions o;
  o.label_selector = "graydebug.io/injected=true,app in (a b)";
  o.limit = 5;
  (void)f.client->List(Resource::Pods(), "", o);
  CHECK(f.requests().back().path ==
        "/api/v1/pods?labelSelector=graydebug.io%2Finjected%3Dtrue%2Capp%20in%20%28a%20b%29&limit=5");
  auto w = f.client->StartWatch(Resource::Pods(), "shop", {"", "", 0, "", "42", 300, true});
  CHECK(w.error().kind == ErrorKind::kGone);
  CHECK(f.requests().back().path ==
        "/api/v1/namespaces/shop/pods?resourceVersion=42&watch=true&allowWatchBookmarks=true&timeoutSeconds=300");
}

TEST_CASE("client: ListAll follows continue tokens and restarts once on an expired token") {
  Fixture f;
  f.api.Script({
      {200, R"({"items":[{"n":1}],"metadata":{"continue":"c1","resourceVersion":"5"}})", "", {}},
      Status(410),
      {200, R"({"items":[{"n":1},{"n":2}],"metadata":{"continue":"c2"}})", "", {}},
      {200, R"({"items":[{"n":3}],"metadata":{"resourceVersion":"9"}})", "", {}},
  });
  auto r = f.client->ListAll(Resource::Pods(), "shop", {"", "", 2, "", "", 0, true});
  REQUIRE_MESSAGE(r.ok(), r.error().ToString());
  CHECK(r->at("items").size() == 3);
  CHECK(r->at("metadata").at("resourceVersion") == "9");
}

TEST_CASE("watch events: every type parses; garbage is a decode error") {
  auto added = ParseWatchEvent(R"({"type":"ADDED","object":{"metadata":{"name":"a"}}})");
  REQUIRE(added.ok());
  CHECK(added->type == WatchEvent::Type::kAdded);
  CHECK(ParseWatchEvent(R"({"type":"BOOKMARK","object":{}})")->type == WatchEvent::Type::kBookmark);
  CHECK(ParseWatchEvent(R"({"type":"ERROR","object":{"code":410}})")->type == WatchEvent::Type::kError);
  CHECK(ParseWatchEvent(R"({"type":"DELETED","object":{}})")->type == WatchEvent::Type::kDeleted);
  CHECK(ParseWatchEvent(R"({"type":"MODIFIED","object":{}})")->type == WatchEvent::Type::kModified);
  for (const char* bad : {"", "{", "[]", R"({"type":"EXPLODED","object":{}})", R"({"type":"ADDED"})",
                          R"({"type":1,"object":{}})", R"({"type":"ADDED","object":[]})"}) {
    CAPTURE(bad);
    CHECK(ParseWatchEvent(bad).error().kind == ErrorKind::kDecode);
  }
}

TEST_CASE("watch events and list pages come without metadata.managedFields, and with everything else") {
  const json managed = json::array({{{"manager", "kubectl"}, {"fieldsV1", {{"f:spec", json::object()}}}}});
  json object = {{"metadata",
                  {{"name", "a"},
                   {"namespace", "shop"},
                   {"managedFields", managed},
                   {"annotations", {{"managedFields", "an annotation of that name"}}}}},
                 {"spec", {{"managedFields", "a spec member of that name"}, {"metadata", {{"managedFields", 1}}}}}};
  auto ev = ParseWatchEvent(json{{"type", "ADDED"}, {"object", object}}.dump());
  REQUIRE(ev.ok());
  json want = object;
  want["metadata"].erase("managedFields");
  CHECK(ev->object == want);

  Fixture f;
  f.api.Seed(Resource::Pods(), object);
  int seen = 0;
  auto rv = f.client->ListEach(Resource::Pods(), "shop", {}, [&](json& item) {
    ++seen;
    json got = item;
    got["metadata"].erase("resourceVersion");
    got["metadata"].erase("uid");
    got["metadata"].erase("creationTimestamp");
    CHECK(got == want);
  });
  REQUIRE(rv.ok());
  CHECK(seen == 1);
}

TEST_CASE("backoff: doubles to the cap, jitter within [d/2, d]") {
  CHECK(Backoff::Ceiling(100ms, 5s, 1) == 100ms);
  CHECK(Backoff::Ceiling(100ms, 5s, 4) == 800ms);
  CHECK(Backoff::Ceiling(100ms, 5s, 40) == 5s);
  Backoff b(100ms, 1s, 42);
  for (int i = 1; i <= 10; ++i) {
    auto d = b.Next();
    auto ceil = Backoff::Ceiling(100ms, 1s, i);
    CHECK(d <= ceil);
    CHECK(d >= ceil / 2);
  }
  b.Reset();
  CHECK(b.Next() <= 100ms);
}

TEST_CASE("rate limiter: burst, then qps") {
  FakeClock clock;
  RateLimiter rl(10, 3, clock);
  CHECK(rl.Reserve() == 0ns);
  CHECK(rl.Reserve() == 0ns);
  CHECK(rl.Reserve() == 0ns);
  CHECK(rl.Reserve() == 100ms);  // the 4th waits one token at 10/s
  clock.Advance(1s);
  CHECK(rl.Reserve() == 0ns);
  RateLimiter unlimited(0, 1, clock);
  for (int i = 0; i < 100; ++i) CHECK(unlimited.Reserve() == 0ns);
}
