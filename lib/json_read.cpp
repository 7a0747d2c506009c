#include "graydebug/json_read.h"

#include <cmath>

namespace graydebug::jsonr {
namespace {

using json = nlohmann::json;

const json* Member(const json& j, std::string_view key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it != j.end() ? &*it : nullptr;
}

}  // namespace

const json& Obj(const json& j, std::string_view key) {
  static const json kEmpty = json::object();
  const json* m = Member(j, key);
  return m != nullptr && m->is_object() ? *m : kEmpty;
}

const json& Arr(const json& j, std::string_view key) {
  static const json kEmpty = json::array();
  const json* m = Member(j, key);
  return m != nullptr && m->is_array() ? *m : kEmpty;
}

std::string Str(const json& j, std::string_view key) {
  const json* m = Member(j, key);
  return m != nullptr && m->is_string() ? m->get<std::string>() : "";
}

int64_t Int(const json& j, std::string_view key, int64_t fallback) {
  const json* m = Member(j, key);
  return m != nullptr && m->is_number_integer() ? m->get<int64_t>() : fallback;
}

std::optional<double> Number(const json& j, std::string_view key) {
  const json* m = Member(j, key);
  if (m == nullptr || !m->is_number()) return std::nullopt;
  double v = m->get<double>();
  return std::isfinite(v) ? std::optional<double>(v) : std::nullopt;
}

bool Bool(const json& j, std::string_view key, bool fallback) {
  const json* m = Member(j, key);
  return m != nullptr && m->is_boolean() ? m->get<bool>() : fallback;
}

}  // namespace graydebug::jsonr
