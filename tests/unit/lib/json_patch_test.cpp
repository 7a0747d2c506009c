#include "graydebug/json_patch.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <random>

#include "graydebug/api/pod.h"
#include "graydebug/base64.h"

using graydebug::EscapeJsonPointerToken;
using graydebug::JsonPatchBuilder;
using json = nlohmann::json;

TEST_CASE("json pointer tokens escape ~ before /") {
  CHECK(EscapeJsonPointerToken("a/b") == "a~1b");
  CHECK(EscapeJsonPointerToken("a~b") == "a~0b");
  CHECK(EscapeJsonPointerToken("~1") == "~01");  // not "/"
  CHECK(EscapeJsonPointerToken("graydebug.io/status") == "graydebug.io~1status");
  CHECK(JsonPatchBuilder::Pointer({"metadata", "annotations", "x~/y"}) == "/metadata/annotations/x~0~1y");
}

TEST_CASE("json patch builder creates absent maps and arrays once and applies with nlohmann") {
  json doc = {{"metadata", {{"name", "p"}}}, {"spec", {{"containers", json::array({{{"name", "a"}}})}}}};
  JsonPatchBuilder b;
  b.SetInMap(doc, {"metadata", "labels"}, "k/1", "v1");
  b.SetInMap(doc, {"metadata", "labels"}, "k~2", "v2");  // extends the op that creates the map
  b.AppendToArray(doc, {"spec", "initContainers"}, {{"name", "i1"}});
  b.AppendToArray(doc, {"spec", "initContainers"}, {{"name", "i2"}});
  b.AppendToArray(doc, {"spec", "containers"}, {{"name", "b"}});
  CHECK(b.size() == 3);
  json out = doc.patch(b.ops());
  CHECK(out["metadata"]["labels"] == json{{"k/1", "v1"}, {"k~2", "v2"}});
  CHECK(out["spec"]["initContainers"].size() == 2);
  CHECK(out["spec"]["containers"][1]["name"] == "b");

  // Existing map: one op per member, with escaped keys.
  JsonPatchBuilder c;
  c.SetInMap(out, {"metadata", "labels"}, "a/b~c", "x");
  CHECK(c.ops()[0]["path"] == "/metadata/labels/a~1b~0c");
  CHECK(out.patch(c.ops())["metadata"]["labels"]["a/b~c"] == "x");
}

TEST_CASE("JsonAt never throws on missing or mistyped steps") {
  json doc = {{"a", json::array({1, 2})}, {"s", "x"}};
  CHECK(graydebug::JsonAt(doc, {"a", "1"})->get<int>() == 2);
  CHECK(graydebug::JsonAt(doc, {"a", "2"}) == nullptr);
  CHECK(graydebug::JsonAt(doc, {"a", "-1"}) == nullptr);
  CHECK(graydebug::JsonAt(doc, {"a", "x"}) == nullptr);
  CHECK(graydebug::JsonAt(doc, {"s", "t"}) == nullptr);
  CHECK(graydebug::JsonAt(doc, {"missing"}) == nullptr);
}

TEST_CASE("base64 encoding matches RFC 4648 vectors") {
  CHECK(graydebug::EncodeBase64("") == "");
  CHECK(graydebug::EncodeBase64("f") == "Zg==");
  CHECK(graydebug::EncodeBase64("fo") == "Zm8=");
  CHECK(graydebug::EncodeBase64("foo") == "Zm9v");
  CHECK(graydebug::EncodeBase64("foob") == "Zm9vYg==");
  CHECK(graydebug::EncodeBase64("fooba") == "Zm9vYmE=");
  CHECK(graydebug::EncodeBase64("foobar") == "Zm9vYmFy");
  CHECK(graydebug::EncodeBase64(std::string("\xff\xfe\x00", 3)) == "//4A");
  // Every length up to 300 and all byte values, against the bit-by-bit definition; appending keeps
  // what was there.
  auto reference = [](const std::string& in) {
    static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    for (std::size_t i = 0; i < in.size(); i += 3) {
      unsigned v = 0;
      std::size_t k = std::min<std::size_t>(3, in.size() - i);
      for (std::size_t j = 0; j < 3; ++j) v = v << 8 | (j < k ? static_cast<unsigned char>(in[i + j]) : 0u);
      for (std::size_t j = 0; j < 4; ++j) out += j <= k ? a[(v >> (18 - 6 * j)) & 63] : '=';
    }
    return out;
  };
  std::mt19937 rng(11);
  for (std::size_t len = 0; len <= 300; ++len) {
    std::string in(len, '\0');
    for (char& c : in) c = static_cast<char>(rng());
    CAPTURE(len);
    CHECK(graydebug::EncodeBase64(in) == reference(in));
    std::string out = "prefix";
    graydebug::AppendBase64(in, &out);
    CHECK(out == "prefix" + reference(in));
  }
}

TEST_CASE("AppendJsonString writes what nlohmann's dump writes, control bytes and bad UTF-8 included") {
  auto nlohmann_dump = [](const std::string& s) {
    return json(s).dump(-1, ' ', false, json::error_handler_t::replace);
  };
  for (int c = 0; c < 256; ++c) {
    const std::string s = "a" + std::string(1, static_cast<char>(c)) + "b";
    CAPTURE(c);
    CHECK(graydebug::JsonString(s) == nlohmann_dump(s));
  }
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::string s(rng() % 40, '\0');
    const bool ascii = i % 2 == 0;
    for (char& ch : s) ch = static_cast<char>(ascii ? rng() % 128 : rng() % 256);
    CAPTURE(s);
    CHECK(graydebug::JsonString(s) == nlohmann_dump(s));
  }
  for (const std::string s : {"", "ü", "日本", "\xF0\x9F\x98\x80", "\xC3", "\xED\xA0\x80", "x\"\\/\x7F"}) {
    CHECK(graydebug::JsonString(s) == nlohmann_dump(s));
  }
  std::string out = "[";
  graydebug::AppendJsonString(&out, "a");
  CHECK(out == "[\"a\"");
}

TEST_CASE("json patch builder: values as JSON text give the patch nlohmann values give, in nlohmann's bytes") {
  const json docs[] = {
      json::parse(R"({"metadata":{"labels":{"a":"b"},"annotations":{}},"spec":{"containers":[{"name":"x"}]}})"),
      json::parse(R"({"metadata":{},"spec":{}})"),
      json::parse(R"({"metadata":{"labels":null,"annotations":"x"},"spec":{"containers":{},"initContainers":[]}})"),
      json::object()};
  const json container = {{"name", "dlv-server"}, {"args", {"a", "b"}}};
  // Keys out of order, one set twice: a created map has them sorted, the last value kept.
  const std::vector<std::pair<std::string, std::string>> members = {
      {"z/last", "1"}, {"graydebug.io/status", "{\"x\":1}"}, {"a\"quote", "2"}, {"z/last", "3"}};
  for (const json& doc : docs) {
    CAPTURE(doc.dump());
    JsonPatchBuilder tree, text;
    tree.Add({"spec", "shareProcessNamespace"}, true);
    text.AddText({"spec", "shareProcessNamespace"}, "true");
    tree.Replace({"spec", "a/b~c"}, 5);
    text.ReplaceText({"spec", "a/b~c"}, "5");
    tree.Remove({"spec", "gone"});
    text.Remove({"spec", "gone"});
    for (const char* list : {"containers", "initContainers"}) {
      for (int i = 0; i < 2; ++i) {
        tree.AppendToArray(doc, {"spec", list}, container);
        text.AppendToArrayText(doc, {"spec", list}, container.dump());
      }
    }
    for (const auto& [key, value] : members) {
      for (const char* map : {"labels", "annotations"}) {
        tree.SetInMap(doc, {"metadata", map}, key, value);
        text.SetInMapText(doc, {"metadata", map}, key, graydebug::JsonString(value));
      }
    }
    const std::string got = text.Text();
    CHECK(got == tree.Text());
    CHECK(got == json::parse(got).dump());  // nlohmann's own bytes for these ops
  }
  // What the ops are, for the document with a labels map and no initContainers.
  JsonPatchBuilder b;
  b.Remove({"spec", "gone"});
  b.AppendToArray(docs[0], {"spec", "initContainers"}, container);
  b.AppendToArray(docs[0], {"spec", "initContainers"}, container);
  b.SetInMap(docs[0], {"metadata", "labels"}, "k/1", "v");
  b.SetInMap(docs[1], {"metadata", "labels"}, "z", "2");
  b.SetInMap(docs[1], {"metadata", "labels"}, "a", "1");
  CHECK(b.ops() == json::parse(R"([{"op":"remove","path":"/spec/gone"},
    {"op":"add","path":"/spec/initContainers","value":[{"args":["a","b"],"name":"dlv-server"},
                                                       {"args":["a","b"],"name":"dlv-server"}]},
    {"op":"add","path":"/metadata/labels/k~11","value":"v"},
    {"op":"add","path":"/metadata/labels","value":{"a":"1","z":"2"}}])"));
  CHECK(JsonPatchBuilder().Text() == "[]");
}

TEST_CASE("InjectionStatus::Text is ToJson().dump()") {
  graydebug::api::InjectionStatus s;
  CHECK(s.Text() == s.ToJson().dump());
  s.version = "1.2.3";
  s.target = "app \"x\"\n";
  s.dlv_port = 2345;
  s.agent_port = 9102;
  s.dlv_user = "target-uid";
  CHECK(s.Text() == s.ToJson().dump());
  s.containers = {};
  CHECK(s.Text() == s.ToJson().dump());
}
