#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace graydebug::agent {

// What /proc says about one process.
struct ProcessInfo {
  int pid = 0;
  std::string comm;           // /proc/<pid>/comm (at most 15 characters)
  std::string exe;            // readlink /proc/<pid>/exe; "" when not permitted
  bool go_binary = false;     // the executable has Go's build-info section
  bool exe_readable = false;  // whether go_binary could be decided
  uint64_t start_ticks = 0;   // field 22 of /proc/<pid>/stat: tells a restarted PID apart
  int64_t uid = -1;           // real uid and gid from /proc/<pid>/status; -1 when unreadable
  int64_t gid = -1;
};

// A process's identity and effective capabilities (/proc/<pid>/status).
struct Credentials {
  int64_t uid = -1, gid = -1;  // real ids; -1 when unreadable
  uint64_t cap_eff = 0;        // CapEff bits
  bool HasCapability(int cap) const { return cap >= 0 && cap < 64 && ((cap_eff >> cap) & 1u) != 0; }
};
inline constexpr int kCapSysPtrace = 19;

// Reads processes from a /proc tree (the real one, or a directory laid out like it in tests).
class ProcFs {
 public:
  explicit ProcFs(std::string root = "/proc") : root_(std::move(root)) {}
  std::vector<int> Pids() const;
  // nullopt when the process is gone (or its stat is unreadable).
  std::optional<ProcessInfo> Info(int pid) const;
  // Resident set size in bytes from /proc/<pid>/status (VmRSS), nullopt when gone.
  std::optional<uint64_t> RssBytes(int pid) const;
  // True while `pid` exists and still has `start_ticks` (0: any).
  // The process still runs: same PID, start time and (when exe is given and readable) executable.
  bool Alive(int pid, uint64_t start_ticks, const std::string& exe = "") const;
  // The ids and effective capabilities of `pid` ("self" for this process).
  Credentials CredentialsOf(const std::string& pid) const;
  // The NUL-separated argv of /proc/<pid>/cmdline (world-readable); empty when gone.
  std::vector<std::string> Cmdline(int pid) const;
  // kernel.yama.ptrace_scope (<root>/sys/kernel/yama/ptrace_scope), -1 without Yama.
  int PtraceScope() const;
  const std::string& root() const { return root_; }

 private:
  std::string root_;
};

// True when `path` is an ELF file with a ".go.buildinfo" section (every Go binary since 1.13).
// Reads at most the headers and the section-name table, with bounds checks; false on any doubt.
bool IsGoBinary(const std::string& path);

struct TargetQuery {
  int pid = 0;               // exactly this PID (outside Kubernetes)
  std::string process_name;  // the process whose comm (or exe basename) is this
  int self_pid = 0;          // never pick ourselves (nor our parent)
  // Whose view this is, to say why a process cannot be inspected.
  Credentials self;
  // The metrics sidecar: when no Go program can be recognised because no executable is readable
  // (the app runs as another user), take the oldest such process (its memory is world-readable).
  bool accept_uninspectable = false;
};

struct TargetResult {
  std::optional<ProcessInfo> target;
  std::string why;  // one line: why nothing was chosen, or how the choice was made
  // Set when nothing was chosen because processes could not be inspected (their executables are
  // unreadable to us): then `why` names the real cause, not "no Go program".
  bool uninspectable = false;
};

// Picks the debug target among `processes` (pure; ProcFs supplies them): `query.pid` when it
// exists; else the process named `query.process_name`; else the one Go program that is not
// graydebug's, dlv or the pause process. Several candidates: the oldest wins and `why` says so.
// Processes whose executable we cannot read (another user, no effective CAP_SYS_PTRACE) cannot be
// recognised: when they are all there is, `why` says so with their uid and ours.
TargetResult ChooseTarget(const std::vector<ProcessInfo>& processes, const TargetQuery& query);

// Every process of `fs` (skips those that vanish while reading).
std::vector<ProcessInfo> ListProcesses(const ProcFs& fs);

}  // namespace graydebug::agent
