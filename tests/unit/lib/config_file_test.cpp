#include "graydebug/config_file.h"

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;
using graydebug::CheckYamlConfigFile;
using graydebug::ReadFileLimited;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "graydebug-test-XXXXXX").string();
    path = mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path); }
  std::string Write(const std::string& name, const std::string& contents) const {
    std::ofstream(path / name, std::ios::binary) << contents;
    return (path / name).string();
  }
};

}  // namespace

TEST_CASE("ReadFileLimited: reads, refuses missing, directories and oversize files") {
  TempDir dir;
  auto ok = ReadFileLimited(dir.Write("a", "hello"), 5);
  CHECK(ok.ok);
  CHECK(ok.contents == "hello");
  auto big = ReadFileLimited(dir.Write("b", "hello!"), 5);
  CHECK_FALSE(big.ok);
  CHECK(big.error.find("larger than the limit of 5 bytes") != std::string::npos);
  auto missing = ReadFileLimited((dir.path / "nope").string());
  CHECK_FALSE(missing.ok);
  CHECK(missing.error.find("No such file") != std::string::npos);
  CHECK(ReadFileLimited(dir.path.string()).error.find("not a regular file") != std::string::npos);
  // A FIFO would block a naive reader forever; it must be refused at once.
  std::string fifo = (dir.path / "fifo").string();
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
  CHECK(ReadFileLimited(fifo).error.find("not a regular file") != std::string::npos);
  CHECK(ReadFileLimited("/dev/zero").error.find("not a regular file") != std::string::npos);
}

TEST_CASE("CheckYamlConfigFile: a mapping or empty file is fine; everything else is one line") {
  TempDir dir;
  CHECK(CheckYamlConfigFile(dir.Write("ok.yaml", "injection:\n  dlvPort: 2345\n")).empty());
  CHECK(CheckYamlConfigFile(dir.Write("empty.yaml", "")).empty());
  std::string list = CheckYamlConfigFile(dir.Write("list.yaml", "- a\n- b\n"));
  CHECK(list.find("must be a YAML mapping") != std::string::npos);
  std::string broken = CheckYamlConfigFile(dir.Write("broken.yaml", "a: [1, 2\nb: c\n"));
  CHECK(broken.find("invalid YAML at line") != std::string::npos);
  CHECK(broken.find('\n') == std::string::npos);
  std::string huge = CheckYamlConfigFile(dir.Write("huge.yaml", std::string(graydebug::kMaxConfigFileBytes + 1, '#')));
  CHECK(huge.find("larger than the limit") != std::string::npos);
  // Deep nesting must not crash the parser (yaml-cpp limits its own depth).
  std::string deep = CheckYamlConfigFile(dir.Write("deep.yaml", std::string(100000, '[')));
  CHECK_FALSE(deep.empty());
}
