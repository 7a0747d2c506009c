#include "graydebug/json_patch.h"

#include <doctest/doctest.h>

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
}
