#include "graydebug/config_file.h"

#include <yaml-cpp/yaml.h>

namespace graydebug {

std::string CheckYamlConfigFile(const std::string& path) {
  FileReadResult file = ReadFileLimited(path);
  if (!file.ok) return file.error;
  try {
    YAML::Node root = YAML::Load(file.contents);
    if (!root.IsNull() && !root.IsMap()) return path + ": the configuration must be a YAML mapping";
  } catch (const YAML::Exception& e) {
    return path + ": invalid YAML at line " + std::to_string(e.mark.line + 1) + ", column " +
           std::to_string(e.mark.column + 1) + ": " + e.msg;
  }
  return "";
}

}  // namespace graydebug
