// The four real binaries: --help, --version, and bad flags give one clear line and exit 2.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "graydebug/version.h"
#include "support/process.h"

using graydebug::testing::Run;

namespace {
std::string Bin(const std::string& name) {
  return std::string(GRAYDEBUG_BIN_DIR) + "/" + name;
}
const char* const kBinaries[] = {"graydebug-webhook", "graydebug-controller", "graydebug-agent", "kubectl-graydebug"};
}  // namespace

TEST_CASE("every binary has --help and --version") {
  for (const char* name : kBinaries) {
    CAPTURE(name);
    auto help = Run({Bin(name), "--help"});
    CHECK(help.exit_code == 0);
    CHECK(help.out.find("Usage:") != std::string::npos);
    auto version = Run({Bin(name), "--version"});
    CHECK(version.exit_code == 0);
    CHECK(version.out.find(graydebug::Version()) != std::string::npos);
  }
}

TEST_CASE("SPEC flags are accepted and bad ones are refused with one line") {
  struct Case {
    std::vector<std::string> args;
    std::string want;  // substring of the single stderr line
  };
  const std::vector<Case> cases = {
      {{"graydebug-webhook", "--bogus"}, "graydebug-webhook: unknown flag --bogus (see --help)"},
      {{"graydebug-webhook", "--listen=:8443"}, "--tls-cert-file and --tls-key-file are required"},
      {{"graydebug-webhook", "--tls-cert-file=a", "--tls-key-file=b", "--listen=nope"},
       "invalid value \"nope\" for --listen"},
      {{"graydebug-webhook", "--tls-cert-file=a", "--tls-key-file=b", "--config=/nonexistent.yaml"},
       "/nonexistent.yaml: No such file"},
      {{"graydebug-controller", "--probe-interval=soon"}, "invalid value \"soon\" for --probe-interval"},
      {{"graydebug-controller", "--log-level=loud"}, "--log-level: must be one of debug|info|warn|error"},
      {{"graydebug-controller", "extra"}, "unexpected argument \"extra\""},
      {{"graydebug-agent", "--listen"}, "flag --listen needs a value"},
      {{"graydebug-agent", "frobnicate"}, "unknown command \"frobnicate\""},
      {{"graydebug-agent", "launch-dlv", "--listen=0.0.0.0:2345"}, "is not a loopback address"},
      {{"kubectl-graydebug", "attach"}, "needs exactly one argument"},
      {{"kubectl-graydebug", "attach", "pod-1", "--ttl=forever"}, "invalid value \"forever\" for --ttl"},
      {{"kubectl-graydebug", "list", "-o", "xml"}, "--output: must be one of table|json|yaml"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> argv = c.args;
    argv[0] = Bin(argv[0]);
    auto r = Run(argv);
    CAPTURE(c.args[0]);
    CAPTURE(r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(c.want) != std::string::npos);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  }
  // kubectl-graydebug with an unknown command lists the commands, exits 2.
  auto r = Run({Bin("kubectl-graydebug"), "frobnicate"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("unknown command \"frobnicate\"") != std::string::npos);
}

TEST_CASE("a valid command line gets past flag parsing") {
  // Valid SPEC flags are accepted: the controller gets as far as reading its kubeconfig, and says
  // in one line which file it could not read.
  auto r = Run({Bin("graydebug-controller"), "--namespace=shop", "--leader-elect", "--metrics-addr=127.0.0.1:0",
                "--health-addr", ":8081", "--lease-namespace", "graydebug-system", "--log-format=logfmt",
                "--kubeconfig=/nonexistent/kubeconfig"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("/nonexistent/kubeconfig") != std::string::npos);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
}

// `docker build` cannot run here (no Docker engine; `make images` builds the runtime stage without
// one, checked by tests/images), so check what the Dockerfile's build stages rely on: every path it
// copies exists (sources in the repository, binaries in the build output), the CMake options it
// passes exist, and it pins dlv like hack/tools/versions.env.
TEST_CASE("Dockerfile: every copied path and option exists") {
  std::string src = GRAYDEBUG_SOURCE_DIR;
  std::ifstream in(src + "/Dockerfile");
  REQUIRE(in);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Join continuation lines.
  for (std::size_t p; (p = text.find("\\\n")) != std::string::npos;) text.replace(p, 2, " ");
  std::istringstream lines(text);
  std::ifstream cm(src + "/CMakeLists.txt");
  std::string cmake((std::istreambuf_iterator<char>(cm)), std::istreambuf_iterator<char>());
  int copies = 0;
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    std::vector<std::string> w;
    for (std::string x; words >> x;) w.push_back(x);
    if (w.empty()) continue;
    if (w[0] == "COPY") {
      bool from_stage = w.size() > 1 && w[1].rfind("--from=", 0) == 0;
      for (std::size_t i = from_stage ? 2 : 1; i + 1 < w.size(); ++i) {
        ++copies;
        std::string path = w[i];
        CAPTURE(path);
        if (!from_stage) {
          CHECK(std::filesystem::exists(src + "/" + path));
        } else if (path.rfind("/src/build/bin/", 0) == 0) {
          CHECK(std::filesystem::exists(std::string(GRAYDEBUG_BIN_DIR) + "/" + path.substr(15)));
        } else if (path == "/go/bin/leaky-app") {
          CHECK(std::filesystem::exists(std::string(GRAYDEBUG_BIN_DIR) + "/leaky-app"));
        } else {
          CHECK(path == "/go/bin/dlv");
        }
      }
    }
    for (const auto& x : w) {
      if (x.rfind("-DGRAYDEBUG_", 0) == 0) {
        std::string option = x.substr(2, x.find('=') - 2);
        CHECK_MESSAGE(cmake.find("option(" + option + " ") != std::string::npos, option);
      }
      if (x.rfind("DLV_VERSION=", 0) == 0) {
        std::ifstream v(src + "/hack/tools/versions.env");
        std::string versions((std::istreambuf_iterator<char>(v)), std::istreambuf_iterator<char>());
        CHECK(versions.find(x) != std::string::npos);
      }
    }
  }
  CHECK(copies >= 10);
}
