#include "agent/target_finder.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

using namespace graydebug::agent;

namespace {

ProcessInfo P(int pid, std::string comm, bool go, uint64_t start, std::string exe = "") {
  ProcessInfo p;
  p.pid = pid;
  p.comm = std::move(comm);
  p.go_binary = go;
  p.exe_readable = true;
  p.start_ticks = start;
  p.exe = exe.empty() ? "/app/" + p.comm : exe;
  return p;
}

}  // namespace

TEST_CASE("target: the one Go program that is not graydebug, dlv or pause") {
  std::vector<ProcessInfo> ps = {P(1, "pause", false, 1), P(7, "graydebug-agent", false, 5),
                                 P(9, "dlv", true, 6),    P(12, "order-service", true, 3),
                                 P(20, "sh", false, 2),   P(30, "x", true, 8, "/usr/local/bin/graydebug-agent")};
  TargetQuery q;
  q.self_pid = 7;
  auto r = ChooseTarget(ps, q);
  REQUIRE(r.target);
  CHECK(r.target->pid == 12);
  CHECK(r.why == "the only Go program");
}

TEST_CASE("target: by name, by pid, the oldest of several, and clear reasons for none") {
  std::vector<ProcessInfo> ps = {P(12, "worker", true, 30), P(13, "api", true, 10), P(14, "api", true, 20)};
  TargetQuery q;
  auto r = ChooseTarget(ps, q);
  CHECK(r.target->pid == 13);
  CHECK(r.why.find("3 candidates") != std::string::npos);
  q.process_name = "worker";
  CHECK(ChooseTarget(ps, q).target->pid == 12);
  q.process_name = "nope";
  auto none = ChooseTarget(ps, q);
  CHECK_FALSE(none.target);
  CHECK(none.why == "no process named \"nope\"");
  q = {};
  q.pid = 14;
  CHECK(ChooseTarget(ps, q).target->pid == 14);
  q.pid = 99;
  CHECK(ChooseTarget(ps, q).why == "no process with PID 99");
  CHECK(ChooseTarget({P(1, "pause", false, 1)}, {}).why.find("no Go program") != std::string::npos);
}

TEST_CASE("target: Go binaries are recognised by their build-info section") {
  CHECK(IsGoBinary(std::string(GRAYDEBUG_BIN_DIR) + "/leaky-app"));
  CHECK_FALSE(IsGoBinary("/bin/sh"));
  CHECK_FALSE(IsGoBinary("/nonexistent"));
  std::string junk = std::filesystem::temp_directory_path() / ("graydebug-junk-" + std::to_string(getpid()));
  // An ELF header whose section table points far outside the file, and a truncated one.
  std::string elf =
      "\x7f"
      "ELF\x02\x01\x01";
  elf.resize(64, '\xff');
  std::ofstream(junk, std::ios::binary) << elf;
  CHECK_FALSE(IsGoBinary(junk));
  std::ofstream(junk, std::ios::binary) << "\x7f"
                                           "ELF";
  CHECK_FALSE(IsGoBinary(junk));
  std::filesystem::remove(junk);
}

TEST_CASE("target: /proc reading finds this process with its start time") {
  ProcFs fs;
  auto me = fs.Info(static_cast<int>(getpid()));
  REQUIRE(me);
  CHECK(me->start_ticks > 0);
  CHECK(fs.Alive(me->pid, me->start_ticks));
  CHECK_FALSE(fs.Alive(me->pid, me->start_ticks + 1));
  CHECK(fs.RssBytes(me->pid).value_or(0) > 0);
  CHECK_FALSE(fs.Info(0x3fffffff));
}
