#include "graydebug/cli_app.h"

#include <iostream>

#include "graydebug/log.h"
#include "graydebug/version.h"

namespace graydebug {

void CommonFlags::Register(FlagSet& flags) {
  flags.Enum("log-level", &log_level, {"debug", "info", "warn", "error"}, "minimum level of the log lines on stderr");
  flags.Enum("log-format", &log_format, {"json", "logfmt"}, "format of the log lines on stderr");
}

std::optional<int> ParseCommandLine(FlagSet& flags, const CommonFlags& common, const std::string& component,
                                    const std::vector<std::string>& args, std::vector<std::string>* positionals) {
  FlagParseResult parsed = flags.Parse(args);
  switch (parsed.kind) {
    case FlagParseResult::Kind::kHelp: std::cout << flags.Help(); return 0;
    case FlagParseResult::Kind::kVersion: std::cout << VersionLine(flags.program()) << "\n"; return 0;
    case FlagParseResult::Kind::kError: std::cerr << flags.program() << ": " << parsed.error << "\n"; return 2;
    case FlagParseResult::Kind::kOk: break;
  }
  // Both values were checked by their Enum flags, so the parses cannot fail here.
  log::Configure(component, log::ParseLevel(common.log_level).value_or(log::Level::kInfo),
                 log::ParseFormat(common.log_format).value_or(log::Format::kJson));
  if (positionals != nullptr) *positionals = std::move(parsed.positionals);
  return std::nullopt;
}

int UsageError(const FlagSet& flags, const std::string& message) {
  std::cerr << flags.program() << ": " << message << "\n";
  return 2;
}

std::vector<std::string> ArgsOf(int argc, char** argv) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  return args;
}

}  // namespace graydebug
