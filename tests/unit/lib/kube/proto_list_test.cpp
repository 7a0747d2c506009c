// The informer's protobuf lists (lib/kube/proto_list.cpp): a list in protobuf must pack into exactly
// the bytes its JSON form packs into. The corpus (tests/fixtures/proto) is 40 random Pods with
// every kind of field, encoded both ways by apimachinery's own codecs (hack/protoschema -corpus);
// then hostile bytes, which must give an error and never a crash.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "graydebug/kube/api_error.h"
#include "kube/packed_page.h"

using graydebug::kube::IsProtobuf;
using graydebug::kube::PackProtobufList;
using graydebug::kube::PagePacker;
using graydebug::kube::ProtobufToJson;
using nlohmann::json;

namespace {

std::string Fixture(const char* name) {
  std::ifstream in(std::filesystem::path(GRAYDEBUG_SOURCE_DIR) / "tests/fixtures/proto" / name, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Page {
  std::map<std::string, std::vector<std::uint8_t>> items;
  std::map<std::string, std::string> rvs;
  std::string cont, rv, error;
};

Page Pack(const std::string& body) {
  Page p;
  PagePacker packer;
  p.error = packer.Pack(
      body,
      [&](std::string_view ns, std::string_view name, std::string rv, std::vector<std::uint8_t> packed) {
        const std::string key = std::string(ns) + "/" + std::string(name);
        p.items[key] = std::move(packed);
        p.rvs[key] = std::move(rv);
      },
      &p.cont, &p.rv);
  return p;
}

// A protobuf field: key and value.
std::string Varint(std::uint64_t v) {
  std::string s;
  while (v >= 0x80) {
    s += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  s += static_cast<char>(v);
  return s;
}
std::string Bytes(int field, const std::string& v) {
  return Varint(static_cast<std::uint64_t>(field) << 3 | 2) + Varint(v.size()) + v;
}
std::string Number(int field, std::uint64_t v) {
  return Varint(static_cast<std::uint64_t>(field) << 3) + Varint(v);
}
// The envelope around a list: "k8s\0" + Unknown{typeMeta{v1, kind}, raw}.
std::string Envelope(const std::string& raw, const std::string& kind = "PodList") {
  return std::string("k8s\0", 4) + Bytes(1, Bytes(1, "v1") + Bytes(2, kind)) + Bytes(2, raw);
}
std::string PodList(const std::string& pod) {
  return Envelope(Bytes(1, Bytes(2, "7")) + Bytes(2, pod));
}
std::string NamedPod(const std::string& metadata_rest = "", const std::string& rest = "") {
  return Bytes(1, Bytes(1, "p") + Bytes(3, "ns") + metadata_rest) + rest;
}

json Unpack(const std::vector<std::uint8_t>& b) {
  return json::from_msgpack(b);
}

}  // namespace

TEST_CASE("a protobuf list packs into the bytes its JSON packs into (40 random pods by apimachinery's codecs)") {
  const std::string pb = Fixture("pods.pb"), js = Fixture("pods.json");
  REQUIRE(IsProtobuf(pb));
  REQUIRE_FALSE(IsProtobuf(js));
  Page from_pb = Pack(pb), from_json = Pack(js);
  REQUIRE_MESSAGE(from_pb.error.empty(), from_pb.error);
  REQUIRE_MESSAGE(from_json.error.empty(), from_json.error);
  CHECK(from_pb.items.size() == 40);
  CHECK(from_pb.rv == "12345");
  CHECK(from_pb.cont == "next-page");
  CHECK(from_pb.rvs == from_json.rvs);
  REQUIRE(from_pb.items.size() == from_json.items.size());
  for (const auto& [key, packed] : from_json.items) {
    INFO(key);
    REQUIRE(from_pb.items.count(key) == 1);
    if (from_pb.items[key] != packed) {
      // Byte-identical is the contract (order and number forms included); show where it differs.
      CHECK(Unpack(from_pb.items[key]).dump() == Unpack(packed).dump());
      CHECK(from_pb.items[key] == packed);
    }
  }
  // Not vacuous: the corpus has what the special cases are for.
  CHECK(js.find("\\ufffd") != std::string::npos);                     // invalid UTF-8, replaced
  CHECK(js.find("\"creationTimestamp\":null") == std::string::npos);  // omitzero
  CHECK(js.find("1970-01-01T00:00:00Z") != std::string::npos);
  CHECK(js.find("\"managedFields\"") != std::string::npos);  // dropped by both
  for (const auto& [key, packed] : from_pb.items) CHECK(Unpack(packed)["metadata"].count("managedFields") == 0);
}

TEST_CASE("a Status in protobuf reads as its JSON (an error to a request that asked for protobuf)") {
  std::string error;
  const std::string text = ProtobufToJson(Fixture("status.pb"), &error);
  REQUIRE_MESSAGE(error.empty(), error);
  json j = json::parse(text);
  CHECK(j["kind"] == "Status");
  CHECK(j["apiVersion"] == "v1");
  CHECK(j["code"] == 410);
  CHECK(j["reason"] == "Expired");
  CHECK(j["details"]["retryAfterSeconds"] == 3);
  graydebug::kube::ApiError e = graydebug::kube::ErrorFromResponse(410, text, "");
  CHECK(e.kind == graydebug::kube::ErrorKind::kGone);
  CHECK(e.message == "too old resource version: 1 (2)");
}

TEST_CASE("protobuf: the JSON shape of hand-made pods (pointers, omitempty, maps, packed varints, times)") {
  // PodSpec: containers (2) with one Container{name 1, ports 6 {containerPort 3}}, activeDeadlineSeconds
  // (5, *int64: present when zero), nodeSelector (7, a map, keys sorted, the last duplicate
  // winning), hostNetwork (11, omitempty bool false: absent).
  const std::string container = Bytes(1, "c") + Bytes(6, Number(3, 8080));
  const std::string spec = Bytes(2, container) + Number(5, 0) + Bytes(7, Bytes(1, "b") + Bytes(2, "1")) +
                           Bytes(7, Bytes(1, "a") + Bytes(2, "2")) + Bytes(7, Bytes(1, "b") + Bytes(2, "3")) +
                           Number(11, 0);
  // metadata: creationTimestamp (8) at 1 s, deletionTimestamp (9, *Time) present and empty: null.
  const std::string pod = NamedPod(Bytes(8, Number(1, 1)) + Bytes(9, ""), Bytes(2, spec));
  Page p = Pack(PodList(pod));
  REQUIRE_MESSAGE(p.error.empty(), p.error);
  REQUIRE(p.items.count("ns/p") == 1);
  json j = Unpack(p.items["ns/p"]);
  CHECK(j["metadata"]["creationTimestamp"] == "1970-01-01T00:00:01Z");
  CHECK(j["metadata"]["deletionTimestamp"].is_null());
  CHECK(j["spec"]["activeDeadlineSeconds"] == 0);
  CHECK(j["spec"]["nodeSelector"] == json({{"a", "2"}, {"b", "3"}}));
  CHECK_FALSE(j["spec"].contains("hostNetwork"));
  CHECK(j["spec"]["containers"][0]["ports"][0]["containerPort"] == 8080);
  CHECK(j["spec"]["containers"][0]["resources"] == json::object());  // a struct is never omitted
  CHECK(j["status"] == json::object());
  CHECK(p.rv == "7");
}

TEST_CASE("protobuf: hostile bytes are an error, never a crash or a wrong object") {
  const std::string ok = PodList(NamedPod());
  REQUIRE(Pack(ok).error.empty());
  std::vector<std::pair<std::string, std::string>> cases = {
      {"truncated", ok.substr(0, ok.size() - 3)},
      {"a length beyond the message", std::string("k8s\0", 4) + Bytes(1, "") + "\x12\xff\xff\xff\x0f"},
      {"a varint of 11 bytes", PodList(NamedPod("", std::string("\x28") + std::string(10, '\xff') + "\x01"))},
      {"a field the tables do not have", PodList(NamedPod("", Bytes(99, "new")))},
      {"a group (wire type 3)", PodList(NamedPod("", "\x1b"))},
      {"a string field as a varint", PodList(Number(1, 5))},
      {"field number 0", PodList(NamedPod("", std::string("\x02\x00", 2)))},
      {"an unknown kind", Envelope(Bytes(2, "x"), "SecretList")},
      {"a time at the int64 limit", PodList(NamedPod(Bytes(8, Number(1, 0x7fffffffffffffffull))))},
      {"a content encoding", std::string("k8s\0", 4) + Bytes(1, Bytes(2, "PodList")) + Bytes(3, "gzip")},
      {"an IntOrString of type 7",
       PodList(
           NamedPod("", Bytes(2, Bytes(2, Bytes(1, "c") + Bytes(10, Bytes(1, Bytes(3, Bytes(1, Number(1, 7)))))))))},
  };
  for (const auto& [what, body] : cases) {
    INFO(what);
    Page p = Pack(body);
    CHECK_FALSE(p.error.empty());
    CHECK(p.error.find('\n') == std::string::npos);
  }
  // Random corruption of a real list: an error or a list, never a crash (ASan runs this too).
  const std::string real = Fixture("pods.pb");
  std::mt19937_64 rng(18);
  int errors = 0;
  for (int i = 0; i < 300; ++i) {
    std::string b = real;
    for (int k = 0; k < 1 + static_cast<int>(rng() % 8); ++k) {
      b[4 + rng() % (b.size() - 4)] = static_cast<char>(rng());
    }
    if (rng() % 4 == 0) b.resize(4 + rng() % (b.size() - 4));
    Page p = Pack(b);
    errors += p.error.empty() ? 0 : 1;
  }
  CHECK(errors > 0);
  std::string why;
  CHECK(ProtobufToJson("k8s\0", &why).empty());
  CHECK_FALSE(why.empty());
  CHECK(ProtobufToJson("{}", &why).empty());
}

TEST_CASE("protobuf: a list fed in pieces as it arrives decodes to the same items as the whole body") {
  const std::string pb = Fixture("pods.pb");
  const Page whole = Pack(pb);
  REQUIRE(whole.error.empty());
  std::mt19937_64 rng(7);
  for (std::size_t max_piece : {std::size_t(1), std::size_t(7), std::size_t(4096), std::size_t(70000)}) {
    INFO("pieces of up to " << max_piece << " bytes");
    Page p;
    graydebug::kube::ProtobufListDecoder d(
        [&](std::string_view ns, std::string_view name, std::string rv, std::vector<std::uint8_t> packed) {
          const std::string key = std::string(ns) + "/" + std::string(name);
          p.items[key] = std::move(packed);
          p.rvs[key] = std::move(rv);
        });
    for (std::size_t at = 0; at < pb.size() && p.error.empty();) {
      const std::size_t n = std::min(pb.size() - at, 1 + rng() % max_piece);
      p.error = d.Feed(std::string_view(pb).substr(at, n));
      at += n;
    }
    REQUIRE_MESSAGE(p.error.empty(), p.error);
    REQUIRE(d.Finish(&p.cont, &p.rv).empty());
    CHECK(p.items == whole.items);
    CHECK(p.rvs == whole.rvs);
    CHECK(p.rv == "12345");
    CHECK(p.cont == "next-page");
  }
  // A body cut anywhere is an error at Finish (or before), never a short list taken as whole.
  for (int i = 0; i < 50; ++i) {
    graydebug::kube::ProtobufListDecoder d(
        [](std::string_view, std::string_view, std::string, std::vector<std::uint8_t>) {});
    std::string cont, rv;
    const std::size_t cut = rng() % pb.size();
    std::string why = d.Feed(std::string_view(pb).substr(0, cut));
    if (why.empty()) why = d.Finish(&cont, &rv);
    CHECK_FALSE(why.empty());
  }
}
