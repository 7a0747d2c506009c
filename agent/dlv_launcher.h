#pragma once

#include <atomic>
#include <chrono>
#include <string>

#include "agent/target_finder.h"

namespace graydebug::agent {

struct LauncherOptions {
  std::string dlv_path = "dlv";
  std::string listen = "127.0.0.1:2345";
  int target_pid = 0;          // attach to exactly this PID (outside Kubernetes)
  std::string target_process;  // else the process with this name; else the one Go program
  std::chrono::milliseconds wait_timeout{std::chrono::minutes(5)};  // for the target to appear
  std::chrono::milliseconds poll_interval{250};
  std::chrono::milliseconds backoff_base{1000};  // dlv restarts: 1 s, 2 s, 4 s ... up to the cap
  std::chrono::milliseconds backoff_cap{30000};
  std::chrono::milliseconds stable_after{60000};  // a dlv that ran this long resets the backoff
};

// `graydebug-agent launch-dlv`: finds the target, runs
//   dlv attach <pid> --headless --api-version=2 --accept-multiclient --continue --listen=<listen>
// and keeps it so: dlv dies → restarted with backoff; the target exits → dlv is stopped and the
// next target (a restarted app) is attached. Returns when `stop` becomes true (0, dlv stopped) or
// when no target appears within wait_timeout / an explicit --target-pid exits (1). Every step is
// one log line. dlv is stopped with SIGTERM (the kernel detaches the tracee, which keeps running),
// never through dlv's Detach call, and never with SIGINT (dlv would halt the target).
int RunLauncher(const LauncherOptions& options, const std::atomic<bool>& stop);

// Why dlv, running with `self`'s credentials, cannot ptrace `target` on a node with the given
// kernel.yama.ptrace_scope (-1: no Yama): "" when it can (as far as ids, capabilities and Yama
// tell; seccomp and AppArmor are not visible here). Pure.
std::string PtraceProblem(const Credentials& self, const ProcessInfo& target, int ptrace_scope);

}  // namespace graydebug::agent
