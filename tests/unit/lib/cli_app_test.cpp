#include "graydebug/cli_app.h"

#include <doctest/doctest.h>

using graydebug::CommonFlags;
using graydebug::FlagSet;
using graydebug::ParseCommandLine;

TEST_CASE("ParseCommandLine: exit codes for help, version, bad flags; positionals otherwise") {
  auto run = [](std::vector<std::string> args, std::vector<std::string>* pos) {
    std::string name;
    CommonFlags common;
    FlagSet flags("prog", "prog", "d");
    flags.String("name", &name, "n");
    common.Register(flags);
    return ParseCommandLine(flags, common, "test", args, pos);
  };
  std::vector<std::string> pos;
  CHECK(run({"--help"}, &pos) == 0);
  CHECK(run({"--version"}, &pos) == 0);
  CHECK(run({"--log-level=loud"}, &pos) == 2);
  CHECK(run({"--name"}, &pos) == 2);
  CHECK_FALSE(run({"a", "--name=x", "b", "--log-format=logfmt"}, &pos).has_value());
  CHECK(pos == std::vector<std::string>{"a", "b"});
}
