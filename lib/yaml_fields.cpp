#include "graydebug/yaml_fields.h"

#include <charconv>

#include "graydebug/duration.h"

namespace graydebug::yaml {

void Fail(const std::string& field, const std::string& why) {
  throw FieldError{field + ": " + why};
}

void CheckKeys(const YAML::Node& node, const std::string& field, const std::set<std::string>& allowed) {
  if (!node.IsMap()) Fail(field.empty() ? "config" : field, "must be a mapping");
  for (const auto& kv : node) {
    std::string key = kv.first.Scalar();
    if (!allowed.count(key)) Fail(field.empty() ? key : field + "." + key, "unknown field");
  }
}

std::string Str(const YAML::Node& n, const std::string& field) {
  if (!n.IsScalar()) Fail(field, "must be a string");
  return n.Scalar();
}

bool Bool(const YAML::Node& n, const std::string& field) {
  std::string s = n.IsScalar() ? n.Scalar() : "";
  if (s == "true") return true;
  if (s == "false") return false;
  Fail(field, "must be true or false");
}

int64_t Int(const YAML::Node& n, const std::string& field, int64_t min, int64_t max) {
  std::string s = n.IsScalar() ? n.Scalar() : "";
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) Fail(field, "must be an integer");
  if (v < min || v > max) Fail(field, "must be between " + std::to_string(min) + " and " + std::to_string(max));
  return v;
}

std::chrono::milliseconds Duration(const YAML::Node& n, const std::string& field, std::chrono::milliseconds min,
                                   std::chrono::milliseconds max) {
  auto d = n.IsScalar() ? ParseDuration(n.Scalar()) : std::nullopt;
  if (!d) Fail(field, "must be a duration such as 30s or 10m");
  if (*d < min || *d > max) Fail(field, "must be between " + FormatDuration(min) + " and " + FormatDuration(max));
  return *d;
}

std::string ParseFields(const std::string& text, const std::function<void(const YAML::Node& root)>& read) {
  try {
    YAML::Node root = YAML::Load(text);
    if (!root.IsNull()) read(root);
    return "";
  } catch (const FieldError& e) {
    return e.message;
  } catch (const YAML::Exception& e) {
    return "not valid YAML: " + e.msg + " (line " + std::to_string(e.mark.line + 1) + ", column " +
           std::to_string(e.mark.column + 1) + ")";
  }
}

}  // namespace graydebug::yaml
