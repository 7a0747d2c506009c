#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace graydebug {

// RFC 6901: "~" becomes "~0" first, then "/" becomes "~1" (the order matters: "~1" in a key must
// come out as "~01", not "/").
std::string EscapeJsonPointerToken(std::string_view token);

// Builds an RFC 6902 JSON Patch op by op against a known document. Values are serialised by
// nlohmann_json, never by string templates (TextPatchBuilder below is the admission hot path's
// exception, checked against this one). Paths are built from unescaped tokens, so callers never
// write "~1" by hand.
class JsonPatchBuilder {
 public:
  using Path = std::vector<std::string>;  // unescaped tokens; "-" appends to an array

  // {"op":"add"}: adds a member (replacing an existing one, as RFC 6902 says) or inserts into an
  // array.
  JsonPatchBuilder& Add(const Path& path, nlohmann::json value);
  JsonPatchBuilder& Replace(const Path& path, nlohmann::json value);
  JsonPatchBuilder& Remove(const Path& path);

  // Sets `doc[path...][key] = value` for a map that may not exist yet: when `doc` has no object at
  // `map_path` the whole map {key: value} is added in one op (and later SetInMap calls for the same
  // map extend that op's value), else one op adds the member. `doc` is the document the patch will
  // be applied to; it is only read.
  JsonPatchBuilder& SetInMap(const nlohmann::json& doc, const Path& map_path, const std::string& key,
                             nlohmann::json value);
  // Appends to an array that may not exist yet (created with the first element when absent).
  JsonPatchBuilder& AppendToArray(const nlohmann::json& doc, const Path& array_path, nlohmann::json value);

  static std::string Pointer(const Path& path);

  bool empty() const { return ops_.empty(); }
  std::size_t size() const { return ops_.size(); }
  // The patch as a JSON array.
  const nlohmann::json& ops() const { return ops_; }
  // Moves the patch out; the builder is empty afterwards.
  nlohmann::json Take() {
    nlohmann::json out = std::move(ops_);
    ops_ = nlohmann::json::array();
    return out;
  }

 private:
  // Index of the op that created the container at `pointer` in this patch, or -1.
  int CreatedHere(const std::string& pointer) const;

  nlohmann::json ops_ = nlohmann::json::array();
};

// JSON Patch the same way for a hot path (the pod admission): values are JSON text the caller
// wrote (AppendJsonString, or text nlohmann dumped once), so no tree is built per request. Same
// rules as JsonPatchBuilder; the unit tests check that both give equal patches. Take() writes the
// array; a map created by SetInMap has its members in nlohmann's (sorted) order.
class TextPatchBuilder {
 public:
  using Path = JsonPatchBuilder::Path;

  TextPatchBuilder& Add(const Path& path, std::string value_json);
  TextPatchBuilder& Replace(const Path& path, std::string value_json);
  TextPatchBuilder& SetInMap(const nlohmann::json& doc, const Path& map_path, const std::string& key,
                             std::string value_json);
  TextPatchBuilder& AppendToArray(const nlohmann::json& doc, const Path& array_path, std::string value_json);

  bool empty() const { return ops_.empty(); }
  std::string Take() const;

 private:
  struct Op {
    const char* op;
    std::string pointer;
    std::string value;                                         // an op of one value
    std::vector<std::pair<std::string, std::string>> members;  // a map this patch creates
    std::vector<std::string> elements;                         // an array this patch creates
    enum { kValue, kMap, kArray } kind = kValue;
  };
  Op* CreatedHere(const std::string& pointer, decltype(Op::kind) kind);

  std::vector<Op> ops_;
};

// Appends `s` as a JSON string (quotes included), byte for byte as nlohmann's dump writes it
// (invalid UTF-8 replaced by U+FFFD, as error_handler_t::replace does).
void AppendJsonString(std::string* out, std::string_view s);
inline std::string JsonString(std::string_view s) {
  std::string out;
  AppendJsonString(&out, s);
  return out;
}

// Looks up `path` in `doc` without throwing; nullptr when any step is absent or of the wrong type.
const nlohmann::json* JsonAt(const nlohmann::json& doc, const JsonPatchBuilder::Path& path);

}  // namespace graydebug
