// graydebug-agent: the injected metrics sidecar, and with `launch-dlv` the dlv launcher (SPEC §2, §5).
// This file only wires flags.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "agent/dlv_launcher.h"

#include "graydebug/cli_app.h"
#include "graydebug/log.h"

using namespace graydebug;
using namespace std::chrono_literals;

namespace {

bool IsLoopbackListen(const std::string& address) {
  return address.rfind("127.", 0) == 0 || address.rfind("localhost:", 0) == 0 || address.rfind("[::1]:", 0) == 0;
}

int LaunchDlv(const std::vector<std::string>& args) {
  std::string dlv_path = "dlv", listen = "127.0.0.1:2345", target_process;
  int64_t target_pid = 0;
  bool allow_non_loopback = false;
  std::chrono::milliseconds wait_timeout = 5min;
  CommonFlags common;
  FlagSet flags("graydebug-agent launch-dlv", "graydebug-agent launch-dlv [flags]",
                "Finds the target Go process in the shared PID namespace and runs\n"
                "`dlv attach <pid> --headless --api-version=2 --accept-multiclient --continue --listen=<addr>`,\n"
                "re-attaching when the target restarts and restarting dlv with backoff when it dies.");
  flags.String("dlv-path", &dlv_path, "the dlv binary");
  flags.Address("listen", &listen, "address dlv listens on (dlv has no authentication: loopback only by default)");
  flags.Bool("allow-non-loopback", &allow_non_loopback,
             "let dlv listen beyond loopback (unauthenticated: opt-in only)");
  flags.Int("target-pid", &target_pid, 0, 4194304, "attach to this PID instead of searching");
  flags.String("target-process", &target_process, "attach to the process with this name (comm)");
  flags.Duration("wait-timeout", &wait_timeout, 1s, 24h, "how long to wait for the target process to appear");
  common.Register(flags);
  std::vector<std::string> positionals;
  if (auto code = ParseCommandLine(flags, common, "agent", args, &positionals)) return *code;
  if (!positionals.empty()) return UsageError(flags, "unexpected argument \"" + positionals[0] + "\" (see --help)");
  if (!allow_non_loopback && !IsLoopbackListen(listen)) {
    return UsageError(
        flags, "--listen " + listen +
                   " is not a loopback address; dlv has no authentication (pass --allow-non-loopback to opt in)");
  }
  agent::LauncherOptions o;
  o.dlv_path = dlv_path;
  o.listen = listen;
  o.target_pid = static_cast<int>(target_pid);
  o.target_process = target_process;
  o.wait_timeout = wait_timeout;
  // SIGTERM/SIGINT end the launcher (and stop dlv); they are taken by a thread via sigwait.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  static std::atomic<bool> stop{false};
  std::thread([signals]() mutable {
    int sig = 0;
    sigwait(&signals, &sig);
    log::Info("signal received; stopping", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
    stop = true;
  }).detach();
  return agent::RunLauncher(o, stop);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args = ArgsOf(argc, argv);
  if (!args.empty() && args[0] == "launch-dlv") return LaunchDlv({args.begin() + 1, args.end()});

  std::string listen = ":9102", dlv_addr = "127.0.0.1:2345", target_process;
  int64_t target_pid = 0;
  std::chrono::milliseconds sample_interval = 5s, probe_timeout = 2s;
  CommonFlags common;
  FlagSet flags(
      "graydebug-agent", "graydebug-agent [flags] | graydebug-agent launch-dlv [flags]",
      "The graydebug metrics sidecar: serves /metrics (graydebug_target_*), /healthz and /probe/dlv,\n"
      "which makes one JSON-RPC call to the pod's dlv. `graydebug-agent launch-dlv --help` for the launcher.");
  flags.Address("listen", &listen, "plain-HTTP address of /metrics, /healthz and /probe/dlv");
  flags.Address("dlv-addr", &dlv_addr, "address of the pod's dlv server");
  flags.Int("target-pid", &target_pid, 0, 4194304, "watch this PID instead of searching");
  flags.String("target-process", &target_process, "watch the process with this name (comm)");
  flags.Duration("sample-interval", &sample_interval, 100ms, 1h, "how often the target's memory is sampled");
  flags.Duration("probe-timeout", &probe_timeout, 10ms, 1min, "connect + reply timeout of one dlv probe");
  common.Register(flags);
  std::vector<std::string> positionals;
  if (auto code = ParseCommandLine(flags, common, "agent", args, &positionals)) return *code;
  if (!positionals.empty()) {
    return UsageError(flags, "unknown command \"" + positionals[0] + "\" (the only command is launch-dlv)");
  }
  log::Error("the metrics sidecar is not part of this build yet (tracked in issue #5); exiting", {{"listen", listen}});
  return 3;
}
