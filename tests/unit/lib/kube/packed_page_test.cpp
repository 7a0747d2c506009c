// The informer's fast path (lib/kube/packed_page.*): what simdjson packs must decode to exactly
// what nlohmann's parse gives (values and number types), without metadata.managedFields.
#include "kube/packed_page.h"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "graydebug/kube/informer.h"
#include "support/eventually.h"
#include "support/fake_apiserver.h"
#include "support/json_same.h"

using graydebug::kube::PackJson;
using graydebug::kube::PagePacker;
using graydebug::testing::Same;
using nlohmann::json;

namespace {

// What the slow path caches: nlohmann's parse, managedFields erased.
json Expected(const std::string& text) {
  json j = json::parse(text);
  if (j.is_object() && j.contains("metadata") && j["metadata"].is_object()) j["metadata"].erase("managedFields");
  return j;
}

void CheckRoundTrip(const std::string& text) {
  std::string error;
  auto packed = PackJson(text, &error);
  REQUIRE_MESSAGE(error.empty(), error);
  json got = json::from_msgpack(packed);
  json want = Expected(text);
  CHECK_MESSAGE(Same(got, want), "packed: " << got.dump() << "\nparsed: " << want.dump());
}

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json RandomJson(std::mt19937_64& rng, int depth) {
  std::uniform_int_distribution<int> kind(0, depth > 4 ? 5 : 7);
  switch (kind(rng)) {
    case 0: return nullptr;
    case 1: return rng() % 2 == 0;
    case 2: return static_cast<std::int64_t>(rng()) >> (rng() % 64);
    case 3: return static_cast<std::uint64_t>(rng()) >> (rng() % 64);
    case 4:
      return std::ldexp(static_cast<double>(static_cast<std::int64_t>(rng())), static_cast<int>(rng() % 200) - 100);
    case 5: {
      std::string s(rng() % 300, 'x');
      for (char& c : s) c = static_cast<char>(' ' + rng() % 95);
      if (rng() % 4 == 0) s += "\xc3\xa9\xf0\x9f\x98\x80\n\t\"\\";
      return s;
    }
    case 6: {
      json a = json::array();
      for (int i = 0, n = static_cast<int>(rng() % 20); i < n; ++i) a.push_back(RandomJson(rng, depth + 1));
      return a;
    }
    default: {
      json o = json::object();
      for (int i = 0, n = static_cast<int>(rng() % 20); i < n; ++i) {
        o["k" + std::to_string(rng() % 40)] = RandomJson(rng, depth + 1);
      }
      return o;
    }
  }
}

}  // namespace

TEST_CASE("packed page: every fixture pod packs to what nlohmann parses, managedFields dropped") {
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(GRAYDEBUG_SOURCE_DIR "/tests/fixtures/injector")) {
    if (entry.path().extension() != ".json") continue;
    CAPTURE(entry.path().string());
    json pod = json::parse(ReadFile(entry.path()));
    if (pod.is_object() && pod.contains("metadata")) {
      pod["metadata"]["managedFields"] =
          json::array({{{"manager", "kubectl"}, {"fieldsV1", {{"f:spec", json::object()}}}}});
    }
    CheckRoundTrip(pod.dump());
    ++n;
  }
  CHECK(n > 20);
}

TEST_CASE("packed page: every MessagePack width of numbers, strings, arrays and maps") {
  json edge = json::array();
  const std::uint64_t unsigned_edges[] = {0,
                                          127,
                                          128,
                                          255,
                                          256,
                                          65535,
                                          65536,
                                          4294967295ull,
                                          4294967296ull,
                                          static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()),
                                          std::numeric_limits<std::uint64_t>::max()};
  for (std::uint64_t u : unsigned_edges) {
    edge.push_back(u);
  }
  const std::int64_t signed_edges[] = {-1,
                                       -32,
                                       -33,
                                       -128,
                                       -129,
                                       -32768,
                                       -32769,
                                       std::numeric_limits<std::int32_t>::min(),
                                       std::int64_t{std::numeric_limits<std::int32_t>::min()} - 1,
                                       std::numeric_limits<std::int64_t>::min()};
  for (std::int64_t i : signed_edges) {
    edge.push_back(i);
  }
  for (double d : {0.5, -1e300, 1.0, 3.141592653589793, 1e-310}) edge.push_back(d);
  for (std::size_t len : {std::size_t{0}, std::size_t{31}, std::size_t{32}, std::size_t{255}, std::size_t{256},
                          std::size_t{65535}, std::size_t{65536}})
    edge.push_back(std::string(len, 'a'));
  edge.push_back(json::array());
  edge.push_back(json(std::vector<int>(15, 1)));
  edge.push_back(json(std::vector<int>(16, 1)));
  edge.push_back(json(std::vector<int>(65536, 1)));
  json o15 = json::object(), o16 = json::object();
  for (int i = 0; i < 15; ++i) o15["k" + std::to_string(i)] = i;
  for (int i = 0; i < 16; ++i) o16["k" + std::to_string(i)] = i;
  edge.push_back(o15);
  edge.push_back(o16);
  edge.push_back({{"t", true}, {"f", false}, {"n", nullptr}});
  CheckRoundTrip(edge.dump());
  // Escapes as the API server writes them, and nested metadata that is not the top-level one.
  CheckRoundTrip(R"({"metadata":{"name":"\u00e9\ud83d\ude00","managedFields":[1]},)"
                 R"("spec":{"metadata":{"managedFields":"kept"}},"managedFields":"kept too"})");
}

TEST_CASE("packed page: random documents pack to what nlohmann parses") {
  std::mt19937_64 rng(18);
  for (int i = 0; i < 300; ++i) {
    json doc = RandomJson(rng, 0);
    CAPTURE(i);
    CheckRoundTrip(doc.dump());
  }
}

TEST_CASE("packed page: a page gives keys, versions and the continue token; what it cannot take is refused") {
  PagePacker packer;
  json page = {{"kind", "PodList"},
               {"metadata", {{"resourceVersion", "77"}, {"continue", "next-please"}}},
               {"items",
                {{{"metadata", {{"name", "a"}, {"namespace", "shop"}, {"resourceVersion", "5"}}}},
                 {{"metadata", {{"name", "n1"}, {"resourceVersion", "6"}}}},
                 {{"metadata", {{"namespace", "shop"}}}},
                 "not an object"}}};
  std::vector<std::pair<std::string, std::string>> seen;
  std::string cont, rv;
  auto each = [&](std::string_view ns, std::string_view name, std::string item_rv, std::vector<std::uint8_t> packed) {
    CHECK(json::from_msgpack(packed)["metadata"]["resourceVersion"] == item_rv);
    seen.emplace_back(graydebug::kube::Informer::Key(ns, name), std::move(item_rv));
  };
  CHECK(packer.Pack(page.dump(), each, &cont, &rv).empty());
  CHECK(seen == std::vector<std::pair<std::string, std::string>>{{"shop/a", "5"}, {"n1", "6"}});
  CHECK(cont == "next-please");
  CHECK(rv == "77");
  // The last page, an empty one, then what the slow path must take instead.
  cont = rv = "x";
  CHECK(packer.Pack(R"({"metadata":{"resourceVersion":"78"},"items":[]})", each, &cont, &rv).empty());
  CHECK(cont.empty());
  CHECK(rv == "78");
  for (const char* bad : {"", "{", "[1]", R"({"items":{}})", R"({"items":[{"metadata":{"name":"big","n":1e99999}}]})",
                          R"({"items":[{"metadata":{"name":"big"},"n":123456789012345678901234567890}]})"}) {
    CAPTURE(bad);
    CHECK_FALSE(packer.Pack(bad, each, &cont, &rv).empty());
  }
}

TEST_CASE("informer: a page simdjson refuses is decoded the slow way, and nothing is lost") {
  graydebug::testing::FakeApiServer api;
  auto client = api.NewClient();
  // An integer beyond 64 bits: simdjson refuses it, nlohmann reads it as a double.
  api.Script({{200,
               R"({"kind":"PodList","metadata":{"resourceVersion":"1"},"items":[)"
               R"({"metadata":{"name":"p","namespace":"shop","resourceVersion":"1","managedFields":[1]},)"
               R"("spec":{"big":123456789012345678901234567890}},)"
               R"({"metadata":{"name":"q","namespace":"shop","resourceVersion":"1"}}]})",
               "",
               {}}});
  graydebug::kube::Informer informer(client, graydebug::kube::Resource::Pods(), "shop");
  informer.Start();
  REQUIRE(graydebug::testing::Eventually([&] { return informer.HasSynced(); }));
  CHECK(informer.Size() == 2);
  auto p = informer.Get("shop/p");
  REQUIRE(p);
  CHECK((*p)["spec"]["big"].is_number_float());
  CHECK_FALSE((*p)["metadata"].contains("managedFields"));
  CHECK(informer.Get("shop/q"));
  CHECK(informer.SlowPages() == 1);
  informer.Stop();
}

TEST_CASE("informer: without a transform, a page the API server writes goes through simdjson") {
  graydebug::testing::FakeApiServer api;
  auto client = api.NewClient();
  for (const char* name : {"a", "b"}) {
    api.Seed(graydebug::kube::Resource::Pods(),
             {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata", {{"name", name}, {"namespace", "shop"}, {"managedFields", json::array({1})}}},
              {"spec", {{"n", -7}, {"x", 0.5}}}});
  }
  graydebug::kube::Informer fast(client, graydebug::kube::Resource::Pods(), "shop");
  graydebug::kube::InformerOptions with_transform;
  with_transform.transform = [](json&) {};
  graydebug::kube::Informer slow(client, graydebug::kube::Resource::Pods(), "shop", with_transform);
  fast.Start();
  slow.Start();
  REQUIRE(graydebug::testing::Eventually([&] { return fast.HasSynced() && slow.HasSynced(); }));
  CHECK(fast.SlowPages() == 0);  // a regression that always fell back would show here
  CHECK(slow.SlowPages() == 0);  // a transform takes nlohmann's path on purpose
  for (const char* key : {"shop/a", "shop/b"}) {
    auto f = fast.Get(key), s = slow.Get(key);
    REQUIRE(f);
    REQUIRE(s);
    CHECK(Same(*f, *s));
    CHECK_FALSE(f->at("metadata").contains("managedFields"));
  }
  fast.Stop();
  slow.Stop();
}
