#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace graydebug {

// RFC 6901: "~" becomes "~0" first, then "/" becomes "~1" (the order matters: "~1" in a key must
// come out as "~01", not "/").
std::string EscapeJsonPointerToken(std::string_view token);

// Builds an RFC 6902 JSON Patch op by op against a known document. A value is an nlohmann value
// (dumped when it is added) or, through the ...Text methods, JSON text used as it is: what
// JsonString wrote, or text nlohmann dumped once (the admission's sidecars), so a hot path builds
// no tree per request. Paths are built from unescaped tokens, so callers never write "~1" by hand.
// Text() is byte for byte what nlohmann's dump of the same ops writes.
class JsonPatchBuilder {
 public:
  using Path = std::vector<std::string>;  // unescaped tokens; "-" appends to an array

  // {"op":"add"}: adds a member (replacing an existing one, as RFC 6902 says) or inserts into an
  // array.
  JsonPatchBuilder& Add(const Path& path, const nlohmann::json& value);
  JsonPatchBuilder& AddText(const Path& path, std::string value_json);
  JsonPatchBuilder& Replace(const Path& path, const nlohmann::json& value);
  JsonPatchBuilder& ReplaceText(const Path& path, std::string value_json);
  JsonPatchBuilder& Remove(const Path& path);

  // Sets `doc[path...][key] = value` for a map that may not exist yet: when `doc` has no object at
  // `map_path` the whole map {key: value} is added in one op (and later SetInMap calls for the same
  // map extend that op's value, its members in nlohmann's sorted order), else one op adds the
  // member. `doc` is the document the patch will be applied to; it is only read.
  JsonPatchBuilder& SetInMap(const nlohmann::json& doc, const Path& map_path, const std::string& key,
                             const nlohmann::json& value);
  JsonPatchBuilder& SetInMapText(const nlohmann::json& doc, const Path& map_path, const std::string& key,
                                 std::string value_json);
  // Appends to an array that may not exist yet (created with the first element when absent).
  JsonPatchBuilder& AppendToArray(const nlohmann::json& doc, const Path& array_path, const nlohmann::json& value);
  JsonPatchBuilder& AppendToArrayText(const nlohmann::json& doc, const Path& array_path, std::string value_json);

  static std::string Pointer(const Path& path);

  bool empty() const { return ops_.empty(); }
  std::size_t size() const { return ops_.size(); }
  // The patch: a JSON array as text, and parsed.
  std::string Text() const;
  nlohmann::json ops() const { return nlohmann::json::parse(Text()); }

 private:
  struct Op {
    const char* op;
    std::string pointer;
    std::string value;                                         // kValue
    std::vector<std::pair<std::string, std::string>> members;  // kMap: a map this patch creates
    std::vector<std::string> elements;                         // kArray: an array this patch creates
    enum { kValue, kMap, kArray, kNone } kind = kValue;        // kNone: remove
  };
  // The op of this patch that creates the map or array at `pointer`, or nullptr.
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
