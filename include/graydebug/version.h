#pragma once

#include <string>

namespace graydebug {

// The graydebug release version (from CMake's project version), e.g. "0.1.0".
const char* Version();
// The git commit the binary was built from, or "unknown" outside a git checkout.
const char* GitCommit();
// One line for `--version`: "<program> <version> (commit <commit>)".
std::string VersionLine(const std::string& program);

}  // namespace graydebug
