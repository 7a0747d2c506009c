#include "agent/target_finder.h"

#include "agent/dlv_launcher.h"
#include "agent/sidecar.h"

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

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

TEST_CASE("target: runc's init (native sidecars start before the app) and runtime helpers are never the target") {
  // With a native sidecar dlv-server runs before the app container execs its entrypoint: that
  // container is then "runc:[2:INIT]", runc's own Go executable (a sealed memfd copy), and the oldest.
  std::vector<ProcessInfo> ps = {P(1, "pause", false, 1), P(5, "graydebug-agent", false, 2),
                                 P(8, "runc:[2:INIT]", true, 3, "/memfd:runc_cloned:/proc/self/exe (deleted)"),
                                 P(9, "runc:[1:CHILD]", true, 3, "/usr/bin/runc"),
                                 P(10, "containerd-shim", true, 2, "/usr/bin/containerd-shim-runc-v2")};
  TargetQuery q;
  q.self_pid = 5;
  auto none = ChooseTarget(ps, q);
  CHECK_FALSE(none.target);
  CHECK(none.why == "no Go program besides graydebug, dlv and pause");
  ps.push_back(P(8, "order-service", true, 3));  // the same PID after its exec
  ps.erase(ps.begin() + 2);
  auto r = ChooseTarget(ps, q);
  REQUIRE(r.target);
  CHECK(r.target->comm == "order-service");
  CHECK(r.why == "the only Go program");
}

TEST_CASE("target: an exec keeps PID and start time but is no longer the process dlv attached to") {
  ProcFs fs;
  int go[2];
  REQUIRE(pipe(go) == 0);
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    close(go[1]);
    char c;
    if (read(go[0], &c, 1) == 1) execl("/bin/sleep", "sleep", "30", static_cast<char*>(nullptr));
    _exit(0);
  }
  close(go[0]);
  auto before = fs.Info(child);
  REQUIRE(before);
  REQUIRE_FALSE(before->exe.empty());
  CHECK(fs.Alive(child, before->start_ticks, before->exe));
  REQUIRE(write(go[1], "x", 1) == 1);
  close(go[1]);
  std::optional<ProcessInfo> after;
  for (int i = 0; i < 500; ++i) {  // until the exec happened (the comm becomes "sleep")
    after = fs.Info(child);
    if (after && after->comm == "sleep") break;
    usleep(10000);
  }
  REQUIRE(after);
  CHECK(after->comm == "sleep");
  CHECK(after->start_ticks == before->start_ticks);
  CHECK(fs.Alive(child, before->start_ticks));                   // the PID lives on ...
  CHECK_FALSE(fs.Alive(child, before->start_ticks, before->exe));  // ... as another program
  CHECK(fs.Alive(child, before->start_ticks, after->exe + " (deleted)"));  // a replaced binary is still itself
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
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

TEST_CASE("target: processes we cannot inspect give the real cause, not 'no Go program'") {
  // The app runs as root; dlv-server as 65532 without CAP_SYS_PTRACE: /proc/<pid>/exe is unreadable.
  ProcessInfo app = P(7, "order-service", false, 3);
  app.exe_readable = false;
  app.exe = "";
  app.uid = 0;
  app.gid = 0;
  std::vector<ProcessInfo> ps = {P(1, "pause", false, 1), app, P(9, "graydebug-agent", false, 5)};
  TargetQuery q;
  q.self_pid = 9;
  q.self.uid = 65532;
  q.self.gid = 65532;
  auto r = ChooseTarget(ps, q);
  CHECK_FALSE(r.target);
  CHECK(r.uninspectable);
  CHECK(r.why.rfind("cannot inspect pid 7 (uid 0, gid 0): dlv-server runs as uid 65532, gid 65532 without an "
                    "effective CAP_SYS_PTRACE; set runAsUser",
                    0) == 0);
  CHECK(r.why.find("no Go program") == std::string::npos);
  // With the capability (the kernel still refuses): says so.
  q.self.cap_eff = uint64_t{1} << kCapSysPtrace;
  CHECK(ChooseTarget(ps, q).why.find("with CAP_SYS_PTRACE, which the kernel still refuses") != std::string::npos);
  // A readable Go program wins over processes we cannot inspect.
  ps.push_back(P(12, "other-go", true, 4));
  CHECK(ChooseTarget(ps, q).target->pid == 12);
  ps.pop_back();
  // The metrics sidecar takes the oldest such process (RSS is world-readable).
  q.accept_uninspectable = true;
  r = ChooseTarget(ps, q);
  REQUIRE(r.target);
  CHECK(r.target->pid == 7);
  // Nothing but infrastructure: still "no Go program".
  q.accept_uninspectable = false;
  CHECK(ChooseTarget({P(1, "pause", false, 1)}, q).why == "no Go program besides graydebug, dlv and pause");
}

TEST_CASE("target: credentials and argv come from /proc") {
  ProcFs fs;
  Credentials self = fs.CredentialsOf("self");
  CHECK(self.uid == static_cast<int64_t>(getuid()));
  CHECK(self.gid == static_cast<int64_t>(getgid()));
  auto info = fs.Info(static_cast<int>(getpid()));
  REQUIRE(info);
  CHECK(info->uid == static_cast<int64_t>(getuid()));
  std::vector<std::string> argv = fs.Cmdline(static_cast<int>(getpid()));
  REQUIRE_FALSE(argv.empty());
  CHECK(argv[0].find("unit_tests") != std::string::npos);
  CHECK(fs.Cmdline(999999999).empty());
  const int scope = fs.PtraceScope();
  CHECK(scope >= -1);
  CHECK(scope <= 3);
}

TEST_CASE("launch-dlv: the ptrace diagnosis names ids, the capability and Yama") {
  Credentials self;
  self.uid = 1000;
  self.gid = 1000;
  ProcessInfo same = P(7, "app", true, 1);
  same.uid = 1000;
  same.gid = 1000;
  CHECK(PtraceProblem(self, same, 0).empty());
  CHECK(PtraceProblem(self, same, -1).empty());
  CHECK(PtraceProblem(self, same, 1).find("kernel.yama.ptrace_scope=1 on this node") == 0);
  ProcessInfo other = same;
  other.gid = 0;  // same uid, another group: ptrace needs both
  CHECK(PtraceProblem(self, other, 0).find("cannot attach to pid 7 (uid 1000, gid 0)") == 0);
  self.cap_eff = uint64_t{1} << kCapSysPtrace;  // root with SYS_PTRACE: anything but scope 3
  CHECK(PtraceProblem(self, other, 2).empty());
  CHECK(PtraceProblem(self, other, 3).find("ptrace_scope=3") != std::string::npos);
}

TEST_CASE("agent: dlv's argv says which port it serves and whether it accepts other users") {
  bool any = true;
  std::vector<std::string> ours = {"/usr/local/bin/dlv",
                                   "attach",
                                   "7",
                                   "--headless",
                                   "--api-version=2",
                                   "--accept-multiclient",
                                   "--continue",
                                   "--only-same-user=false",
                                   "--listen=127.0.0.1:2345"};
  CHECK(DlvServesPort(ours, 2345, &any));
  CHECK(any);
  CHECK_FALSE(DlvServesPort(ours, 2346, &any));
  std::vector<std::string> old = {"dlv", "attach", "7", "--headless", "--listen", "127.0.0.1:2345"};
  CHECK(DlvServesPort(old, 2345, &any));
  CHECK_FALSE(any);
  std::vector<std::string> spaced = {"dlv", "attach", "7", "--only-same-user", "false", "--listen=[::1]:2345"};
  CHECK(DlvServesPort(spaced, 2345, &any));
  CHECK_FALSE(any);  // pflag reads "false" as an argument, so the default (true) stays
  std::vector<std::string> on = {"dlv", "--only-same-user=true", "--listen=127.0.0.1:2345"};
  CHECK(DlvServesPort(on, 2345, &any));
  CHECK_FALSE(any);
  CHECK_FALSE(DlvServesPort({"graydebug-agent", "--dlv-addr=127.0.0.1:2345"}, 2345, &any));
  CHECK_FALSE(DlvServesPort({}, 2345, &any));
  CHECK_FALSE(DlvServesPort({"dlv", "--listen=127.0.0.1:12345"}, 2345, &any));
}
