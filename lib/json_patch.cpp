#include "graydebug/json_patch.h"

#include <charconv>

namespace graydebug {

using json = nlohmann::json;

std::string EscapeJsonPointerToken(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  for (char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

std::string JsonPatchBuilder::Pointer(const Path& path) {
  std::string out;
  for (const auto& token : path) {
    out += '/';
    out += EscapeJsonPointerToken(token);
  }
  return out;
}

JsonPatchBuilder& JsonPatchBuilder::Add(const Path& path, json value) {
  ops_.push_back({{"op", "add"}, {"path", Pointer(path)}, {"value", std::move(value)}});
  return *this;
}

JsonPatchBuilder& JsonPatchBuilder::Replace(const Path& path, json value) {
  ops_.push_back({{"op", "replace"}, {"path", Pointer(path)}, {"value", std::move(value)}});
  return *this;
}

JsonPatchBuilder& JsonPatchBuilder::Remove(const Path& path) {
  ops_.push_back({{"op", "remove"}, {"path", Pointer(path)}});
  return *this;
}

int JsonPatchBuilder::CreatedHere(const std::string& pointer) const {
  for (std::size_t i = 0; i < ops_.size(); ++i) {
    const json& op = ops_[i];
    if (op["op"] == "add" && op["path"] == pointer) return static_cast<int>(i);
  }
  return -1;
}

JsonPatchBuilder& JsonPatchBuilder::SetInMap(const json& doc, const Path& map_path, const std::string& key,
                                             json value) {
  const json* map = JsonAt(doc, map_path);
  if (map != nullptr && map->is_object()) {
    Path p = map_path;
    p.push_back(key);
    return Add(p, std::move(value));
  }
  std::string pointer = Pointer(map_path);
  if (int i = CreatedHere(pointer); i >= 0 && ops_[i]["value"].is_object()) {
    ops_[i]["value"][key] = std::move(value);
    return *this;
  }
  // Absent (or null, which the API server treats as absent): the whole map in one op.
  return Add(map_path, json{{key, std::move(value)}});
}

JsonPatchBuilder& JsonPatchBuilder::AppendToArray(const json& doc, const Path& array_path, json value) {
  const json* arr = JsonAt(doc, array_path);
  if (arr != nullptr && arr->is_array()) {
    Path p = array_path;
    p.push_back("-");
    return Add(p, std::move(value));
  }
  std::string pointer = Pointer(array_path);
  if (int i = CreatedHere(pointer); i >= 0 && ops_[i]["value"].is_array()) {
    ops_[i]["value"].push_back(std::move(value));
    return *this;
  }
  return Add(array_path, json::array({std::move(value)}));
}

const json* JsonAt(const json& doc, const JsonPatchBuilder::Path& path) {
  const json* cur = &doc;
  for (const auto& token : path) {
    if (cur->is_object()) {
      auto it = cur->find(token);
      if (it == cur->end()) return nullptr;
      cur = &*it;
    } else if (cur->is_array()) {
      std::size_t index = 0;
      auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), index);
      if (ec != std::errc() || end != token.data() + token.size() || index >= cur->size()) return nullptr;
      cur = &(*cur)[index];
    } else {
      return nullptr;
    }
  }
  return cur;
}

}  // namespace graydebug
