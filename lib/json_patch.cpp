#include "graydebug/json_patch.h"

#include <algorithm>
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

namespace {

std::string Dump(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

JsonPatchBuilder& JsonPatchBuilder::Add(const Path& path, const json& value) {
  return AddText(path, Dump(value));
}

JsonPatchBuilder& JsonPatchBuilder::AddText(const Path& path, std::string value_json) {
  ops_.push_back({"add", Pointer(path), std::move(value_json), {}, {}});
  return *this;
}

JsonPatchBuilder& JsonPatchBuilder::Replace(const Path& path, const json& value) {
  return ReplaceText(path, Dump(value));
}

JsonPatchBuilder& JsonPatchBuilder::ReplaceText(const Path& path, std::string value_json) {
  ops_.push_back({"replace", Pointer(path), std::move(value_json), {}, {}});
  return *this;
}

JsonPatchBuilder& JsonPatchBuilder::Remove(const Path& path) {
  ops_.push_back({"remove", Pointer(path), {}, {}, {}, Op::kNone});
  return *this;
}

JsonPatchBuilder::Op* JsonPatchBuilder::CreatedHere(const std::string& pointer, decltype(Op::kind) kind) {
  for (Op& op : ops_) {
    if (op.kind == kind && op.pointer == pointer) return &op;
  }
  return nullptr;
}

JsonPatchBuilder& JsonPatchBuilder::SetInMap(const json& doc, const Path& map_path, const std::string& key,
                                             const json& value) {
  return SetInMapText(doc, map_path, key, Dump(value));
}

JsonPatchBuilder& JsonPatchBuilder::SetInMapText(const json& doc, const Path& map_path, const std::string& key,
                                                 std::string value_json) {
  const json* map = JsonAt(doc, map_path);
  if (map != nullptr && map->is_object()) {
    Path p = map_path;
    p.push_back(key);
    return AddText(p, std::move(value_json));
  }
  // Absent (or null, which the API server treats as absent): the whole map in one op.
  std::string pointer = Pointer(map_path);
  Op* op = CreatedHere(pointer, Op::kMap);
  if (op == nullptr) op = &ops_.emplace_back(Op{"add", std::move(pointer), {}, {}, {}, Op::kMap});
  auto same = std::find_if(op->members.begin(), op->members.end(), [&](const auto& m) { return m.first == key; });
  if (same != op->members.end()) {
    same->second = std::move(value_json);
  } else {
    op->members.emplace_back(key, std::move(value_json));
  }
  return *this;
}

JsonPatchBuilder& JsonPatchBuilder::AppendToArray(const json& doc, const Path& array_path, const json& value) {
  return AppendToArrayText(doc, array_path, Dump(value));
}

JsonPatchBuilder& JsonPatchBuilder::AppendToArrayText(const json& doc, const Path& array_path, std::string value_json) {
  const json* arr = JsonAt(doc, array_path);
  if (arr != nullptr && arr->is_array()) {
    Path p = array_path;
    p.push_back("-");
    return AddText(p, std::move(value_json));
  }
  std::string pointer = Pointer(array_path);
  Op* op = CreatedHere(pointer, Op::kArray);
  if (op == nullptr) op = &ops_.emplace_back(Op{"add", std::move(pointer), {}, {}, {}, Op::kArray});
  op->elements.push_back(std::move(value_json));
  return *this;
}

std::string JsonPatchBuilder::Text() const {
  std::size_t size = 2;
  for (const Op& op : ops_) {
    size += 40 + op.pointer.size() + op.value.size();
    for (const auto& [k, v] : op.members) size += k.size() + v.size() + 8;
    for (const auto& e : op.elements) size += e.size() + 1;
  }
  std::string out;
  out.reserve(size);
  out += '[';
  for (const Op& op : ops_) {
    if (out.size() > 1) out += ',';
    // The members in nlohmann's order: op, path, value.
    out += "{\"op\":\"";
    out += op.op;
    out += "\",\"path\":";
    AppendJsonString(&out, op.pointer);
    switch (op.kind) {
      case Op::kNone: break;
      case Op::kValue:
        out += ",\"value\":";
        out += op.value;
        break;
      case Op::kMap: {
        std::vector<const std::pair<std::string, std::string>*> sorted;
        for (const auto& m : op.members) sorted.push_back(&m);
        std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->first < b->first; });
        out += ",\"value\":{";
        for (std::size_t i = 0; i < sorted.size(); ++i) {
          if (i > 0) out += ',';
          AppendJsonString(&out, sorted[i]->first);
          out += ':';
          out += sorted[i]->second;
        }
        out += '}';
        break;
      }
      case Op::kArray:
        out += ",\"value\":[";
        for (std::size_t i = 0; i < op.elements.size(); ++i) {
          if (i > 0) out += ',';
          out += op.elements[i];
        }
        out += ']';
        break;
    }
    out += '}';
  }
  out += ']';
  return out;
}

void AppendJsonString(std::string* out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned char c : s) {
    if (c >= 0x80) {  // not ASCII: nlohmann checks the UTF-8 and replaces what is invalid
      *out += json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace);
      return;
    }
  }
  out->reserve(out->size() + s.size() + 2);
  *out += '"';
  std::size_t run = 0;  // start of the bytes that need no escape
  for (std::size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': *out += "\\\""; break;
      case '\\': *out += "\\\\"; break;
      case '\b': *out += "\\b"; break;
      case '\f': *out += "\\f"; break;
      case '\n': *out += "\\n"; break;
      case '\r': *out += "\\r"; break;
      case '\t': *out += "\\t"; break;
      default: {
        const char u[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
        out->append(u, sizeof u);
      }
    }
  }
  out->append(s.data() + run, s.size() - run);
  *out += '"';
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
