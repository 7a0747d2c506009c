#pragma once

#include <optional>
#include <string>
#include <vector>

#include "graydebug/flags.h"

namespace graydebug {

// The flags every graydebug binary has: --log-level and --log-format.
struct CommonFlags {
  std::string log_level = "info";
  std::string log_format = "json";
  void Register(FlagSet& flags);
};

// Runs the shared front of every main(): parses `args` with `flags`, prints --help/--version to
// stdout, prints a bad flag as one line "<program>: <error>" on stderr, configures logging.
// Returns the process exit code to use when the program should stop now (0 after help/version,
// 2 after a bad flag), or nullopt when parsing succeeded and the program should go on; then
// `positionals` holds the non-flag arguments.
std::optional<int> ParseCommandLine(FlagSet& flags, const CommonFlags& common, const std::string& component,
                                    const std::vector<std::string>& args, std::vector<std::string>* positionals);

// Prints "<program>: <message>" on stderr and returns 2, for flag combinations that are invalid.
int UsageError(const FlagSet& flags, const std::string& message);

std::vector<std::string> ArgsOf(int argc, char** argv);

}  // namespace graydebug
