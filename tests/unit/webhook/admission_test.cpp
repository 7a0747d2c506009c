#include "webhook/admission.h"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "graydebug/api/debug_session.h"
#include "graydebug/kube/config.h"

using json = nlohmann::json;
using namespace graydebug::webhook;

namespace {

json SimplePod() {
  std::ifstream in(std::filesystem::path(GRAYDEBUG_SOURCE_DIR) / "tests/fixtures/injector/simple-gray.pod.json");
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str());
}

json Review(const json& object, const std::string& api = "admission.k8s.io/v1", const std::string& op = "CREATE",
            const std::string& kind = "Pod") {
  return {{"apiVersion", api},
          {"kind", "AdmissionReview"},
          {"request",
           {{"uid", "705ab4f5-6393-11e8-b7cc-42010a800002"},
            {"kind", {{"group", kind == "Pod" ? "" : "graydebug.io"}, {"version", "v1"}, {"kind", kind}}},
            {"resource", {{"group", ""}, {"version", "v1"}, {"resource", "pods"}}},
            {"namespace", "shop"},
            {"operation", op},
            {"userInfo", {{"username", "alice@example.com"}, {"groups", {"dev", "system:authenticated"}}}},
            {"object", object}}}};
}

struct Fixture {
  SidecarInjector injector{{}, "0.0.0-test"};
  AdmissionHandler handler{injector, {}};
};

json Patch(const json& reply) {
  std::string raw;
  REQUIRE(graydebug::kube::DecodeBase64(reply["response"]["patch"].get<std::string>(), &raw));
  return json::parse(raw);
}

}  // namespace

TEST_CASE("admission: a gray pod gets a JSON patch; uid and apiVersion are echoed") {
  Fixture f;
  for (const char* api : {"admission.k8s.io/v1", "admission.k8s.io/v1beta1"}) {
    AdmissionReply r = f.handler.MutatePods("application/json", Review(SimplePod(), api).dump());
    REQUIRE(r.status == 200);
    json body = json::parse(r.body);
    CHECK(body["apiVersion"] == api);
    CHECK(body["kind"] == "AdmissionReview");
    CHECK(body["response"]["uid"] == "705ab4f5-6393-11e8-b7cc-42010a800002");
    CHECK(body["response"]["allowed"] == true);
    CHECK(body["response"]["patchType"] == "JSONPatch");
    json patched = SimplePod().patch(Patch(body));
    CHECK(patched["spec"]["containers"].size() == 3);
    CHECK(r.outcome.result == "injected");
  }
}

TEST_CASE("admission: skips are allowed without a patch and carry the reason") {
  Fixture f;
  json pod = SimplePod();
  pod["metadata"]["annotations"] = {{"graydebug.io/inject", "false"}};
  AdmissionReply r = f.handler.MutatePods("application/json; charset=utf-8", Review(pod).dump());
  json body = json::parse(r.body);
  CHECK(body["response"]["allowed"] == true);
  CHECK_FALSE(body["response"].contains("patch"));
  CHECK(body["response"]["auditAnnotations"]["injection"] == "skipped: opted-out");
  CHECK(r.outcome.result == "skipped");
  CHECK(r.outcome.reason == "opted-out");

  AdmissionReply other =
      f.handler.MutatePods("application/json", Review(SimplePod(), "admission.k8s.io/v1", "CREATE", "Service").dump());
  CHECK(other.status == 200);
  CHECK(json::parse(other.body)["response"]["allowed"] == true);
  CHECK_FALSE(json::parse(other.body)["response"].contains("patch"));

  json sub = Review(SimplePod());
  sub["request"]["subResource"] = "ephemeralcontainers";
  CHECK_FALSE(json::parse(f.handler.MutatePods("application/json", sub.dump()).body)["response"].contains("patch"));
}

TEST_CASE("admission: bad input gets the status SPEC §2 names and a one-line reason") {
  Fixture f;
  struct Case {
    std::string content_type, body;
    int status;
    const char* want;
  };
  std::string deep(10000, '[');
  std::vector<Case> cases = {
      {"text/plain", "{}", 415, "Content-Type"},
      {"", "{}", 415, "Content-Type"},
      {"application/jsonx", "{}", 415, "Content-Type"},
      {"application/json", "not json", 400, "not JSON"},
      {"application/json", "", 400, "not JSON"},
      {"application/json", "[]", 400, "not an AdmissionReview"},
      {"application/json", R"({"apiVersion":"admission.k8s.io/v1"})", 400, "no request"},
      {"application/json", R"({"request":[]})", 400, "no request"},
      {"application/json", R"({"request":{}})", 400, "no uid"},
      {"application/json", R"({"request":{"uid":""}})", 400, "no uid"},
      {"application/json", R"({"request":{"uid":7}})", 400, "no uid"},
      {"application/json", R"({"apiVersion":"v9","request":{"uid":"u"}})", 400, "apiVersion"},
      {"application/json", deep, 400, "deeper"},
      {"application/json", "{\"request\":{\"uid\":\"\xff\xfe\"}}", 400, "not JSON"},
      {"application/json", std::string(kMaxAdmissionBodyBytes + 1, ' '), 413, "6 MiB"},
  };
  for (const Case& c : cases) {
    AdmissionReply r = f.handler.MutatePods(c.content_type, c.body);
    CAPTURE(c.body.substr(0, 60));
    CHECK(r.status == c.status);
    CHECK(r.outcome.result == "error");
    std::string msg = json::parse(r.body)["error"].get<std::string>();
    CHECK_MESSAGE(msg.find(c.want) != std::string::npos, msg);
    CHECK(msg.find('\n') == std::string::npos);
    CHECK(f.handler.MutateDebugSessions(c.content_type, c.body).status == c.status);
  }
}

TEST_CASE("admission: requests without an object or with odd fields are allowed unchanged") {
  Fixture f;
  for (const char* body : {R"({"request":{"uid":"u","kind":{"kind":"Pod"},"operation":"CREATE"}})",
                           R"({"request":{"uid":"u","kind":{"kind":"Pod"},"operation":"CREATE","object":null}})",
                           R"({"request":{"uid":"u","kind":"Pod","object":{"spec":1}}})",
                           R"({"request":{"uid":"u","kind":{"kind":"Pod"},"operation":7,"object":{}}})"}) {
    AdmissionReply r = f.handler.MutatePods("application/json", body);
    CHECK(r.status == 200);
    json reply = json::parse(r.body);
    CHECK(reply["response"]["uid"] == "u");
    CHECK(reply["apiVersion"] == "admission.k8s.io/v1");
    CHECK_FALSE(reply["response"].contains("patch"));
  }
}

TEST_CASE("admission: DebugSession CREATE stamps requestedBy from userInfo, overwriting the user's") {
  Fixture f;
  json session = {
      {"apiVersion", "graydebug.io/v1alpha1"},
      {"kind", "DebugSession"},
      {"metadata", {{"name", "s"}, {"namespace", "shop"}}},
      {"spec",
       {{"target", {{"pod", "p"}}}, {"requestedBy", {{"username", "mallory"}, {"groups", {"system:masters"}}}}}}};
  AdmissionReply r = f.handler.MutateDebugSessions(
      "application/json", Review(session, "admission.k8s.io/v1", "CREATE", "DebugSession").dump());
  json out = session.patch(Patch(json::parse(r.body)));
  CHECK(out["spec"]["requestedBy"] ==
        json{{"username", "alice@example.com"}, {"groups", {"dev", "system:authenticated"}}});
  CHECK(out["spec"]["target"]["pod"] == "p");

  json no_spec = session;
  no_spec.erase("spec");
  r = f.handler.MutateDebugSessions("application/json",
                                    Review(no_spec, "admission.k8s.io/v1", "CREATE", "DebugSession").dump());
  CHECK(no_spec.patch(Patch(json::parse(r.body)))["spec"]["requestedBy"]["username"] == "alice@example.com");
}

TEST_CASE("admission: DebugSession CREATE adds the controller's finalizer once, UPDATE never adds it") {
  Fixture f;
  auto created = [&](const json& session) {
    AdmissionReply r = f.handler.MutateDebugSessions(
        "application/json", Review(session, "admission.k8s.io/v1", "CREATE", "DebugSession").dump());
    REQUIRE(r.status == 200);
    return session.patch(Patch(json::parse(r.body)));
  };
  json session = {{"apiVersion", "graydebug.io/v1alpha1"},
                  {"kind", "DebugSession"},
                  {"metadata", {{"name", "s"}, {"namespace", "shop"}}},
                  {"spec", {{"target", {{"pod", "p"}}}}}};
  CHECK(created(session)["metadata"]["finalizers"] == json::array({graydebug::api::kSessionFinalizer}));
  // The audit annotation names what the patch did.
  auto audit = [&](const json& s) {
    return json::parse(
        f.handler
            .MutateDebugSessions("application/json", Review(s, "admission.k8s.io/v1", "CREATE", "DebugSession").dump())
            .body)["response"]["auditAnnotations"]["injection"];
  };
  CHECK(audit(session) == "requestedBy stamped, finalizer added");
  json stamped_already = session;
  stamped_already["spec"]["requestedBy"] = {{"username", "alice@example.com"},
                                            {"groups", {"dev", "system:authenticated"}}};
  CHECK(audit(stamped_already) == "finalizer added");
  json others = session;
  others["metadata"]["finalizers"] = json::array({"example.com/keep"});
  CHECK(created(others)["metadata"]["finalizers"] ==
        json::array({"example.com/keep", graydebug::api::kSessionFinalizer}));
  json has = session;
  has["metadata"]["finalizers"] = json::array({graydebug::api::kSessionFinalizer, "example.com/keep"});
  CHECK(created(has)["metadata"]["finalizers"] == has["metadata"]["finalizers"]);
  json null_list = session;
  null_list["metadata"]["finalizers"] = nullptr;
  CHECK(created(null_list)["metadata"]["finalizers"] == json::array({graydebug::api::kSessionFinalizer}));
  // Odd shapes the API server would refuse anyway: left alone, never a crash.
  json odd = session;
  odd["metadata"]["finalizers"] = "graydebug.io/session-cleanup";
  CHECK(created(odd)["metadata"]["finalizers"] == "graydebug.io/session-cleanup");
  json no_md = session;
  no_md.erase("metadata");
  CHECK_FALSE(created(no_md).contains("metadata"));

  // An UPDATE that removed it (the operator's way out when the controller is gone) keeps it removed.
  json old = has;
  old["spec"]["requestedBy"] = {{"username", "alice"}, {"groups", json::array()}};
  json review = Review(session, "admission.k8s.io/v1", "UPDATE", "DebugSession");
  review["request"]["object"]["spec"]["requestedBy"] = old["spec"]["requestedBy"];
  review["request"]["oldObject"] = old;
  CHECK_FALSE(
      json::parse(f.handler.MutateDebugSessions("application/json", review.dump()).body)["response"].contains("patch"));
}

TEST_CASE("admission: DebugSession UPDATE keeps the old requestedBy") {
  Fixture f;
  json old = {{"kind", "DebugSession"},
              {"spec", {{"ttl", "15m"}, {"requestedBy", {{"username", "alice"}, {"groups", json::array()}}}}}};
  json changed = old;
  changed["spec"]["requestedBy"] = {{"username", "mallory"}, {"groups", {"system:masters"}}};
  changed["spec"]["ttl"] = "5m";
  json review = Review(changed, "admission.k8s.io/v1", "UPDATE", "DebugSession");
  review["request"]["oldObject"] = old;
  json out = changed.patch(Patch(json::parse(f.handler.MutateDebugSessions("application/json", review.dump()).body)));
  CHECK(out["spec"]["requestedBy"] == old["spec"]["requestedBy"]);
  CHECK(out["spec"]["ttl"] == "5m");

  // Unchanged: no patch.
  json same = Review(old, "admission.k8s.io/v1", "UPDATE", "DebugSession");
  same["request"]["oldObject"] = old;
  CHECK_FALSE(
      json::parse(f.handler.MutateDebugSessions("application/json", same.dump()).body)["response"].contains("patch"));
}

TEST_CASE("JsonDepth ignores brackets inside strings") {
  CHECK(JsonDepth(R"({"a":"[[[[{{{{"})", 10) == 1);
  CHECK(JsonDepth(R"({"a":"\"[["})", 10) == 1);
  CHECK(JsonDepth("[[[]]]", 10) == 3);
  CHECK(JsonDepth(std::string(1000, '['), 10) == 11);
}
