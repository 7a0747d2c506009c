#pragma once

#include <string>

#include "graydebug/file_read.h"

namespace graydebug {

// Reads a YAML configuration file and checks that it is a mapping (or empty). Returns "" when it
// is usable, else one line naming the file and the problem (size, syntax with line:column, shape).
std::string CheckYamlConfigFile(const std::string& path);

}  // namespace graydebug
