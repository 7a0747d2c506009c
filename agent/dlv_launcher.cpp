#include "agent/dlv_launcher.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <thread>
#include <vector>

#include "agent/target_finder.h"
#include "graydebug/backoff.h"
#include "graydebug/log.h"

extern char** environ;

namespace graydebug::agent {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

bool SleepUnlessStopped(milliseconds d, const std::atomic<bool>& stop) {
  auto until = Clock::now() + d;
  while (Clock::now() < until) {
    if (stop) return false;
    std::this_thread::sleep_for(std::min<milliseconds>(milliseconds(50), d));
  }
  return !stop;
}

std::string Describe(int status) {
  if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("signal ") + strsignal(WTERMSIG(status));
  return "status " + std::to_string(status);
}

pid_t SpawnDlv(const LauncherOptions& o, int target, std::string* error) {
  std::vector<std::string> args = {o.dlv_path, "attach", std::to_string(target), "--headless", "--api-version=2",
                                   "--accept-multiclient", "--continue",
                                   // People connect through kubectl port-forward, which arrives
                                   // from the container runtime's user, not dlv's: without this
                                   // dlv closes every such connection. --listen stays loopback.
                                   "--only-same-user=false", "--listen=" + o.listen};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  // posix_spawnp searches PATH for a bare "dlv"; the child's stdout/stderr are ours (container logs).
  int rc = posix_spawnp(&pid, o.dlv_path.c_str(), nullptr, nullptr, argv.data(), environ);
  if (rc != 0) {
    *error = "cannot start " + o.dlv_path + ": " + strerror(rc);
    return -1;
  }
  return pid;
}

// SIGTERM, then SIGKILL after a grace period; reaps the child.
void StopDlv(pid_t pid) {
  kill(pid, SIGTERM);
  for (int i = 0; i < 100; ++i) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) return;
    std::this_thread::sleep_for(milliseconds(50));
  }
  log::Warn("dlv did not stop within 5s after SIGTERM; killing it", {{"dlv_pid", std::to_string(pid)}});
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

}  // namespace

std::string PtraceProblem(const Credentials& self, const ProcessInfo& target, int ptrace_scope) {
  const bool cap = self.HasCapability(kCapSysPtrace);
  const std::string who = "dlv-server runs as uid " + std::to_string(self.uid) + ", gid " + std::to_string(self.gid);
  if (ptrace_scope >= 3) {
    return "kernel.yama.ptrace_scope=3 on this node forbids every ptrace attach; dlv cannot attach to pid " +
           std::to_string(target.pid);
  }
  if (cap) return "";
  if (target.uid >= 0 && (target.uid != self.uid || target.gid != self.gid)) {
    return "cannot attach to pid " + std::to_string(target.pid) + " (uid " + std::to_string(target.uid) + ", gid " +
           std::to_string(target.gid) + "): " + who +
           " without an effective CAP_SYS_PTRACE; set runAsUser and runAsGroup of the target container (or the pod) "
           "to the app's, or leave them unset so graydebug runs dlv-server as root with only CAP_SYS_PTRACE";
  }
  if (ptrace_scope >= 1) {
    return "kernel.yama.ptrace_scope=" + std::to_string(ptrace_scope) + " on this node: attaching to pid " +
           std::to_string(target.pid) + ", which is not dlv's child, needs an effective CAP_SYS_PTRACE, and " + who +
           " without it (a non-root container never has one); leave runAsUser unset and do not demand runAsNonRoot "
           "so graydebug runs dlv-server as root with only CAP_SYS_PTRACE";
  }
  return "";
}

int RunLauncher(const LauncherOptions& o, const std::atomic<bool>& stop) {
  ProcFs fs;
  TargetQuery query;
  query.pid = o.target_pid;
  query.process_name = o.target_process;
  query.self_pid = static_cast<int>(getpid());
  query.self = fs.CredentialsOf("self");
  int failures = 0;
  std::string said_problem;

  while (!stop) {
    // 1. The target.
    auto deadline = Clock::now() + o.wait_timeout;
    TargetResult found;
    bool said_waiting = false;
    while (!stop) {
      found = ChooseTarget(ListProcesses(fs), query);
      if (found.target) break;
      if (Clock::now() >= deadline) {
        log::Error(found.uninspectable ? "cannot inspect the target process; giving up"
                                       : "no target process appeared; giving up",
                   {{"waited", std::to_string(o.wait_timeout.count()) + "ms"}, {"why", found.why}});
        return 1;
      }
      if (found.uninspectable && said_problem != found.why) {
        // The real cause, once: waiting longer will not help until the pod's spec changes.
        log::Error("cannot inspect the target process", {{"why", found.why}});
        said_problem = found.why;
        said_waiting = true;
      } else if (!said_waiting) {
        log::Info("waiting for the target process", {{"why", found.why}});
        said_waiting = true;
      }
      SleepUnlessStopped(o.poll_interval, stop);
    }
    if (stop) break;
    const ProcessInfo target = *found.target;
    log::Info("target found", {{"pid", std::to_string(target.pid)},
                               {"comm", target.comm},
                               {"uid", std::to_string(target.uid)},
                               {"why", found.why}});
    const std::string problem = PtraceProblem(query.self, target, fs.PtraceScope());
    if (!problem.empty()) log::Error("dlv will not be able to attach", {{"why", problem}});

    // 2. dlv on it, for as long as the target lives.
    while (!stop && fs.Alive(target.pid, target.start_ticks, target.exe)) {
      std::string error;
      pid_t dlv = SpawnDlv(o, target.pid, &error);
      if (dlv < 0) {
        log::Error("cannot start dlv", {{"error", error}});
        return 1;
      }
      log::Info("dlv started",
                {{"dlv_pid", std::to_string(dlv)}, {"target_pid", std::to_string(target.pid)}, {"listen", o.listen}});
      auto started = Clock::now();
      int status = 0;
      bool exited = false;
      while (!stop) {
        if (waitpid(dlv, &status, WNOHANG) == dlv) {
          exited = true;
          break;
        }
        if (!fs.Alive(target.pid, target.start_ticks, target.exe)) break;
        std::this_thread::sleep_for(o.poll_interval);
      }
      if (!exited) {
        if (stop) {
          log::Info("stopping dlv", {{"dlv_pid", std::to_string(dlv)}});
        } else {
          log::Info("target exited or exec'd another program; stopping dlv",
                    {{"target_pid", std::to_string(target.pid)}});
        }
        StopDlv(dlv);
        break;
      }
      bool target_alive = fs.Alive(target.pid, target.start_ticks, target.exe);
      if (!target_alive) {
        log::Info("dlv exited with its target",
                  {{"dlv", Describe(status)}, {"target_pid", std::to_string(target.pid)}});
        break;
      }
      failures = Clock::now() - started >= o.stable_after ? 1 : failures + 1;
      const milliseconds wait = Backoff::Ceiling(o.backoff_base, o.backoff_cap, failures);
      const std::string restart_in = std::to_string(wait.count()) + "ms", dlv_status = Describe(status),
                        count = std::to_string(failures);
      if (problem.empty()) {
        log::Warn("dlv exited; restarting with backoff",
                  {{"dlv", dlv_status}, {"restart_in", restart_in}, {"failures", count}});
      } else {
        log::Warn("dlv exited; restarting with backoff",
                  {{"dlv", dlv_status}, {"restart_in", restart_in}, {"failures", count}, {"likely_cause", problem}});
      }
      SleepUnlessStopped(wait, stop);
    }
    if (!stop && o.target_pid > 0) {
      // The same process (PID and start time) running another program: a wrapper that exec'd the
      // app, or a process found between fork and exec. dlv follows it; only its end is final.
      if (fs.Alive(target.pid, target.start_ticks, "")) {
        log::Info("the target given by --target-pid exec'd another program; attaching to that",
                  {{"target_pid", std::to_string(o.target_pid)}});
        continue;
      }
      log::Error("the target given by --target-pid exited", {{"target_pid", std::to_string(o.target_pid)}});
      return 1;
    }
    if (!stop) log::Info("looking for the restarted target");
  }
  log::Info("launcher stopped");
  return 0;
}

}  // namespace graydebug::agent
