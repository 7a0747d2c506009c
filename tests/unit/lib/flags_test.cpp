#include "graydebug/flags.h"

#include <doctest/doctest.h>

using namespace std::chrono_literals;
using graydebug::FlagParseResult;
using graydebug::FlagSet;
using Kind = FlagParseResult::Kind;

namespace {

struct Fixture {
  std::string listen = ":8443", name = "x", level = "info";
  bool leader = false;
  int64_t workers = 4;
  std::chrono::milliseconds ttl = 15min;
  FlagSet flags{"prog", "prog [flags]", "test program"};
  Fixture() {
    flags.Address("listen", &listen, "listen address");
    flags.String("name", &name, "a name");
    flags.Bool("leader-elect", &leader, "elect");
    flags.Int("workers", &workers, 1, 64, "workers");
    flags.Duration("ttl", &ttl, 1min, 4h, "ttl");
    flags.Enum("log-level", &level, {"debug", "info"}, "level");
    flags.Alias('n', "name");
  }
};

}  // namespace

TEST_CASE("flags: both value syntaxes, booleans, aliases and positionals") {
  Fixture f;
  auto r = f.flags.Parse({"attach", "--listen=127.0.0.1:0", "--name", "shop", "--leader-elect", "--workers=8", "--ttl",
                          "1h30m", "pod-1", "--log-level=debug"});
  REQUIRE(r.kind == Kind::kOk);
  CHECK(f.listen == "127.0.0.1:0");
  CHECK(f.name == "shop");
  CHECK(f.leader);
  CHECK(f.workers == 8);
  CHECK(f.ttl == 90min);
  CHECK(f.level == "debug");
  CHECK(r.positionals == std::vector<std::string>{"attach", "pod-1"});
  CHECK(f.flags.WasSet("name"));
  CHECK_FALSE(Fixture().flags.WasSet("name"));

  Fixture g;
  REQUIRE(g.flags.Parse({"-n", "a"}).kind == Kind::kOk);
  CHECK(g.name == "a");
  REQUIRE(g.flags.Parse({"-nb"}).kind == Kind::kOk);
  CHECK(g.name == "b");
  REQUIRE(g.flags.Parse({"--leader-elect=false", "--", "--name", "-x"}).kind == Kind::kOk);
  CHECK_FALSE(g.leader);
  CHECK(g.name == "b");  // after "--" nothing is a flag
}

TEST_CASE("flags: help and version") {
  Fixture f;
  CHECK(f.flags.Parse({"--name", "a", "--help"}).kind == Kind::kHelp);
  CHECK(f.flags.Parse({"-h"}).kind == Kind::kHelp);
  CHECK(f.flags.Parse({"--version"}).kind == Kind::kVersion);
  std::string help = f.flags.Help();
  CHECK(help.find("Usage: prog [flags]") != std::string::npos);
  CHECK(help.find("--ttl duration") != std::string::npos);
  CHECK(help.find("(default 15m)") != std::string::npos);
  CHECK(help.find("-n, --name string") != std::string::npos);
}

TEST_CASE("flags: every bad flag is one line naming the flag, and leaves the default") {
  struct Case {
    std::vector<std::string> args;
    std::string want;
  };
  for (const Case& c : std::vector<Case>{
           {{"--nope"}, "unknown flag --nope"},
           {{"-z"}, "unknown flag -z"},
           {{"--name"}, "flag --name needs a value"},
           {{"--workers=0"}, "--workers: must be an integer from 1 to 64"},
           {{"--workers=1e3"}, "--workers: must be an integer"},
           {{"--workers", "99999999999999999999999"}, "--workers: must be an integer"},
           {{"--ttl=5"}, "--ttl: must be a duration from 1m to 4h"},
           {{"--ttl=5h"}, "--ttl: must be a duration"},
           {{"--listen=8443"}, "--listen: must be host:port"},
           {{"--listen=:70000"}, "--listen: port must be a number"},
           {{"--listen=::1:80"}, "--listen: an IPv6 host must be in brackets"},
           {{"--listen=a b:80"}, "--listen: host has an invalid character"},
           {{"--leader-elect=yes"}, "--leader-elect: must be true or false"},
           {{"--log-level=trace"}, "--log-level: must be one of debug|info"},
           {{"--=x"}, "bad flag syntax"},
       }) {
    Fixture f;
    auto r = f.flags.Parse(c.args);
    CAPTURE(c.args[0]);
    CHECK(r.kind == Kind::kError);
    CHECK(r.error.find(c.want) != std::string::npos);
    CHECK(r.error.find('\n') == std::string::npos);
    CHECK(f.workers == 4);
    CHECK(f.ttl == 15min);
    CHECK(f.listen == ":8443");
  }
}

TEST_CASE("ValidateListenAddress") {
  using graydebug::ValidateListenAddress;
  for (const char* ok : {":8443", "127.0.0.1:0", "[::1]:2345", "localhost:9102", "0.0.0.0:65535"}) {
    CAPTURE(ok);
    CHECK(ValidateListenAddress(ok).empty());
  }
  for (const char* bad : {"", ":", "8443", "[::1]", "[::1:80", "host:-1", "host:80x", ":65536"}) {
    CAPTURE(bad);
    CHECK_FALSE(ValidateListenAddress(bad).empty());
  }
  CHECK_FALSE(ValidateListenAddress(std::string(1000, 'a') + ":80").empty());
}
