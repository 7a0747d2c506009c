// The fast review decoder (simdjson, a projection of the pod) against the slow one (nlohmann, the
// whole pod): the same decisions, the same patches and the same replies, byte for byte.
#include "webhook/pod_review.h"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "bench/gray_review.h"
#include "support/json_same.h"
#include "webhook/admission.h"
#include "webhook/injection_config.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace graydebug::webhook;
using graydebug::testing::Same;

namespace {

const fs::path kFixtures = fs::path(GRAYDEBUG_SOURCE_DIR) / "tests/fixtures/injector";

json ReadJson(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str());
}

std::string Review(const json& pod) {
  return graydebug::bench::GrayReview(pod, 0);
}

// Every fixture pod, and each of them with a value of every type at every path the injector reads
// (and at some it does not).
std::vector<json> Corpus() {
  std::vector<json> pods;
  for (const auto& e : fs::directory_iterator(kFixtures)) {
    if (e.path().string().ends_with(".pod.json")) pods.push_back(ReadJson(e.path()));
  }
  REQUIRE(pods.size() >= 10);
  const std::vector<json> values = {
      json(),     json(-1),      json(1.5),      json(std::uint64_t(1) << 63),     json(1000),        json("1000"),
      json(true), json::array(), json::object(), json::array({json::object(), 7}), json("dlv-server")};
  const std::vector<std::vector<std::string>> paths = {{"metadata"},
                                                       {"metadata", "namespace"},
                                                       {"metadata", "labels"},
                                                       {"metadata", "labels", "version"},
                                                       {"metadata", "annotations"},
                                                       {"metadata", "annotations", "graydebug.io/dlv-port"},
                                                       {"metadata", "ownerReferences"},
                                                       {"metadata", "uid"},
                                                       {"spec"},
                                                       {"spec", "containers"},
                                                       {"spec", "initContainers"},
                                                       {"spec", "shareProcessNamespace"},
                                                       {"spec", "hostNetwork"},
                                                       {"spec", "securityContext"},
                                                       {"spec", "securityContext", "runAsUser"},
                                                       {"spec", "securityContext", "runAsNonRoot"},
                                                       {"spec", "containers", "0"},
                                                       {"spec", "containers", "0", "name"},
                                                       {"spec", "containers", "0", "ports"},
                                                       {"spec", "containers", "0", "securityContext"},
                                                       {"spec", "containers", "0", "securityContext", "runAsGroup"},
                                                       {"spec", "containers", "0", "image"},
                                                       {"spec", "volumes"}};
  const std::size_t fixtures = pods.size();
  for (std::size_t i = 0; i < fixtures; ++i) {
    for (const auto& path : paths) {
      for (const json& v : values) {
        json pod = pods[i];
        json* at = &pod;
        bool reachable = true;
        for (std::size_t k = 0; k + 1 < path.size() && reachable; ++k) {
          if (at->is_array()) {
            std::size_t index = std::stoul(path[k]);
            reachable = index < at->size();
            if (reachable) at = &(*at)[index];
          } else {
            reachable = at->is_object() || at->is_null();
            if (reachable) at = &(*at)[path[k]];
          }
        }
        if (!reachable || !(at->is_object() || at->is_null())) continue;
        (*at)[path.back()] = v;
        pods.push_back(std::move(pod));
      }
    }
  }
  return pods;
}

InjectionConfig Config(bool native) {
  InjectionConfig c;
  c.native_sidecars = native;
  return c;
}

}  // namespace

TEST_CASE("pod review: the projection decides as the whole pod, for every fixture and mutation") {
  const std::vector<json> corpus = Corpus();
  REQUIRE(corpus.size() > 1000);
  int injected = 0;
  for (auto [native, ns] : {std::pair{false, "shop"}, {true, "shop"}, {false, ""}}) {
    SidecarInjector inj(Config(native), "0.0.0-test");
    InjectionContext ctx;
    ctx.namespace_name = ns;  // "": the request named none, the pod's own counts
    for (const json& pod : corpus) {
      CAPTURE(pod.dump());
      const InjectionResult whole = inj.Inject(pod, ctx), part = inj.Inject(ProjectPod(pod), ctx);
      CHECK(part.inject == whole.inject);
      CHECK(part.reason == whole.reason);
      CHECK(part.message == whole.message);
      CHECK(part.release_key == whole.release_key);
      CHECK(part.patch == whole.patch);
      injected += whole.inject;
    }
  }
  CHECK(injected > 100);
}

TEST_CASE("pod review: the fast decoder reads what nlohmann reads, number types included") {
  for (const json& pod : Corpus()) {
    const std::string body = Review(pod);
    auto fast = DecodePodReviewFast(body, kMaxJsonDepth);
    REQUIRE(fast);
    CHECK(fast->api_version == "admission.k8s.io/v1");
    CHECK(fast->uid == "705ab4f5-6393-11e8-b7cc-42010a800002");
    CHECK(fast->kind == "Pod");
    CHECK(fast->operation == "CREATE");
    CHECK(fast->namespace_name == "shop");
    CHECK_FALSE(fast->dry_run.has_value());
    const json want = ProjectPod(json::parse(body)["request"]["object"]);
    CHECK(fast->object == want);
    CHECK(Same(fast->object, want));  // integer vs unsigned vs float, as nlohmann's parse
  }
  // Duplicate members: the last one counts, as in nlohmann's parse.
  auto dup = DecodePodReviewFast(
      R"({"request":{"uid":"a","operation":"DELETE","operation":"CREATE","dryRun":true,"dryRun":false,)"
      R"("object":{"spec":{"hostNetwork":true,"hostNetwork":false}}}})",
      kMaxJsonDepth);
  REQUIRE(dup);
  CHECK(dup->api_version.empty());
  CHECK(dup->operation == "CREATE");
  CHECK(dup->dry_run == false);
  CHECK(dup->object == json::parse(R"({"spec":{"hostNetwork":false}})"));
}

TEST_CASE("pod review: what the fast decoder does not take goes the slow way, with the same reply") {
  // Each body is refused by the fast decoder; the handler's reply is then the slow path's.
  const std::vector<std::string> refused = {
      "",
      "not json",
      "[1]",
      "\xEF\xBB\xBF{}",
      R"({"request":{"uid":"a"},"x":"\udc00"})",
      R"({"request":{"uid":"a"},"x":18446744073709551616})",
      R"({"request":{"uid":"a"},"x":1e400})",
      R"({"request":{"uid":""}})",
      R"({"request":{"uid":7}})",
      R"({"request":[]})",
      R"({"apiVersion":"admission.k8s.io/v2","request":{"uid":"a"}})",
      R"({"apiVersion":7,"request":{"uid":"a"}})",
      R"({"request":{"uid":"a","object":)" + std::string(200, '[') + std::string(200, ']') + "}}",
  };
  for (const std::string& body : refused) {
    CAPTURE(body);
    CHECK_FALSE(DecodePodReviewFast(body, kMaxJsonDepth));
  }
  // Nesting: exactly the limit is read, one deeper is not.
  auto nested = [](int depth) {
    return R"({"request":{"uid":"a","object":)" + std::string(depth - 2, '[') + std::string(depth - 2, ']') + "}}";
  };
  CHECK(DecodePodReviewFast(nested(kMaxJsonDepth), kMaxJsonDepth));
  CHECK_FALSE(DecodePodReviewFast(nested(kMaxJsonDepth + 1), kMaxJsonDepth));

  // A body both decoders take gives the same reply by either: a UTF-8 byte order mark (which
  // nlohmann skips and simdjson refuses) sends it the slow way.
  SidecarInjector inj({}, "0.0.0-test");
  AdmissionHandler handler(inj, {});
  int injected = 0;
  for (const json& pod : Corpus()) {
    const std::string body = Review(pod);
    const std::string slow_body = "\xEF\xBB\xBF" + body;
    REQUIRE_FALSE(DecodePodReviewFast(slow_body, kMaxJsonDepth));
    const AdmissionReply fast = handler.MutatePods("application/json", body);
    const AdmissionReply slow = handler.MutatePods("application/json", slow_body);
    CAPTURE(body);
    CHECK(fast.status == slow.status);
    CHECK(fast.body == slow.body);
    CHECK(fast.outcome.result == slow.outcome.result);
    CHECK(fast.outcome.reason == slow.outcome.reason);
    injected += fast.outcome.result == "injected";
  }
  CHECK(injected > 50);
}

TEST_CASE("pod review: a large review gets a parser of its own and decodes the same") {
  json pod = ReadJson(kFixtures / "simple-gray.pod.json");
  pod["metadata"]["annotations"]["big"] = std::string(1 << 20, 'x');
  const std::string body = Review(pod);
  auto fast = DecodePodReviewFast(body, kMaxJsonDepth);
  REQUIRE(fast);
  CHECK(fast->object == ProjectPod(pod));
  // The thread's own parser still reads small reviews afterwards.
  CHECK(DecodePodReviewFast(Review(ReadJson(kFixtures / "simple-gray.pod.json")), kMaxJsonDepth));
}
