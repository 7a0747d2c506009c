#pragma once

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <set>
#include <string>

namespace graydebug::yaml {

// Typed reads of YAML config fields with one-line errors naming the field ("dlv.port: must be an
// integer"), shared by every config file graydebug reads. yaml-cpp gives every scalar as a string.

// Thrown by the readers below; ParseFields turns it into the error line.
struct FieldError {
  std::string message;
};
[[noreturn]] void Fail(const std::string& field, const std::string& why);

// `node` must be a mapping whose keys are all in `allowed` (field "" is the document root).
void CheckKeys(const YAML::Node& node, const std::string& field, const std::set<std::string>& allowed);
std::string Str(const YAML::Node& node, const std::string& field);
bool Bool(const YAML::Node& node, const std::string& field);  // exactly true or false
int64_t Int(const YAML::Node& node, const std::string& field, int64_t min, int64_t max);
std::chrono::milliseconds Duration(const YAML::Node& node, const std::string& field, std::chrono::milliseconds min,
                                   std::chrono::milliseconds max);

// Parses `text` and runs `read` on the root (not called for an empty document). Returns "" on
// success, else one line: the FieldError, or "not valid YAML: ... (line L, column C)".
std::string ParseFields(const std::string& text, const std::function<void(const YAML::Node& root)>& read);

}  // namespace graydebug::yaml
