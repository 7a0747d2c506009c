#include "packed_page.h"

#include <simdjson.h>

#include <cstring>

#include "msgpack_writer.h"

namespace graydebug::kube {
namespace {

namespace dom = simdjson::dom;

// Containers this large report a saturated size in simdjson's tape.
constexpr std::size_t kSaturated = 0xFFFFFF;

class Writer : public MsgpackWriter {
 public:
  using MsgpackWriter::MsgpackWriter;

  // Returns "" or why the value cannot be written.
  std::string Value(dom::element e, bool drop_managed_fields) {
    switch (e.type()) {
      case dom::element_type::OBJECT: return Object(dom::object(e), drop_managed_fields);
      case dom::element_type::ARRAY: {
        dom::array a(e);
        const std::size_t n = a.size();
        if (n >= kSaturated) return "an array of 2^24 or more elements";
        ArrayHeader(n);
        for (dom::element x : a) {
          if (std::string why = Value(x, false); !why.empty()) return why;
        }
        return "";
      }
      case dom::element_type::STRING: String(std::string_view(e)); return "";
      case dom::element_type::INT64: Integer(int64_t(e)); return "";
      case dom::element_type::UINT64: Unsigned(uint64_t(e)); return "";
      case dom::element_type::DOUBLE: {
        const double d = double(e);
        std::uint64_t bits;
        std::memcpy(&bits, &d, sizeof bits);
        Byte(0xcb);
        Big(bits, 8);
        return "";
      }
      case dom::element_type::BOOL: Bool(bool(e)); return "";
      case dom::element_type::NULL_VALUE: Nil(); return "";
    }
    return "an unknown JSON type";
  }

 private:
  std::string Object(dom::object o, bool drop_managed_fields) {
    const std::size_t n = o.size();
    if (n >= kSaturated) return "an object of 2^24 or more members";
    MapHeader(n);
    for (dom::key_value_pair kv : o) {
      String(kv.key);
      if (drop_managed_fields && kv.key == "metadata" && kv.value.is_object()) {
        // The item's metadata, without managedFields (nothing in graydebug reads them).
        dom::object md(kv.value);
        std::size_t m = 0;
        for (dom::key_value_pair f : md) m += f.key == "managedFields" ? 0 : 1;
        MapHeader(m);
        for (dom::key_value_pair f : md) {
          if (f.key == "managedFields") continue;
          String(f.key);
          if (std::string why = Value(f.value, false); !why.empty()) return why;
        }
        continue;
      }
      if (std::string why = Value(kv.value, false); !why.empty()) return why;
    }
    return "";
  }
};

std::string_view StringAt(dom::element e, const char* key) {
  std::string_view v;
  return e[key].get(v) == simdjson::SUCCESS ? v : std::string_view();
}

}  // namespace

struct PagePacker::Impl {
  dom::parser parser;
  std::vector<std::uint8_t> scratch;
};

PagePacker::PagePacker() : impl_(std::make_unique<Impl>()) {}
PagePacker::~PagePacker() = default;

std::string PagePacker::Pack(const std::string& body, const Each& each, std::string* continue_token,
                             std::string* resource_version) {
  if (IsProtobuf(body)) return PackProtobufList(body, each, continue_token, resource_version);
  dom::element page;
  if (auto error = impl_->parser.parse(body).get(page); error != simdjson::SUCCESS) {
    return std::string("not JSON simdjson reads: ") + simdjson::error_message(error);
  }
  if (!page.is_object()) return "not a list object";
  dom::element md;
  if (page["metadata"].get(md) == simdjson::SUCCESS) {
    *continue_token = std::string(StringAt(md, "continue"));
    *resource_version = std::string(StringAt(md, "resourceVersion"));
  }
  dom::element items;
  if (page["items"].get(items) != simdjson::SUCCESS || items.is_null()) return "";  // an empty list
  if (!items.is_array()) return "items is not an array";
  for (dom::element item : dom::array(items)) {
    if (!item.is_object()) continue;
    dom::element imd;
    if (item["metadata"].get(imd) != simdjson::SUCCESS || !imd.is_object()) continue;
    const std::string_view name = StringAt(imd, "name"), ns = StringAt(imd, "namespace");
    if (name.empty()) continue;
    // Written into a scratch buffer kept across items, then copied out at its exact size: the
    // cache holds thousands of these for as long as the objects live.
    impl_->scratch.clear();
    Writer w(&impl_->scratch);
    if (std::string why = w.Value(item, true); !why.empty()) return why;
    each(ns, name, std::string(StringAt(imd, "resourceVersion")),
         std::vector<std::uint8_t>(impl_->scratch.begin(), impl_->scratch.end()));
  }
  return "";
}

std::vector<std::uint8_t> PackJson(std::string_view json, std::string* error) {
  dom::parser parser;
  dom::element doc;
  std::vector<std::uint8_t> out;
  if (auto e = parser.parse(json.data(), json.size()).get(doc); e != simdjson::SUCCESS) {
    *error = simdjson::error_message(e);
    return out;
  }
  Writer w(&out);
  *error = w.Value(doc, true);
  return out;
}

}  // namespace graydebug::kube
