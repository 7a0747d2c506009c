// graydebug-agent: the injected metrics sidecar, and with `launch-dlv` the dlv launcher (SPEC §2, §5).
// This file only wires flags.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "agent/dlv_launcher.h"
#include "agent/sidecar.h"
#include "graydebug/cli_app.h"
#include "graydebug/http_get.h"
#include "graydebug/log.h"
#include "graydebug/stop_signals.h"

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
  // SIGTERM/SIGINT end the launcher (and stop dlv); a thread takes them.
  BlockStopSignals();
  static std::atomic<bool> stop{false};
  std::thread([] {
    log::Info("signal received; stopping", {{"signal", WaitForStopSignal()}});
    stop = true;
  }).detach();
  return agent::RunLauncher(o, stop);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args = ArgsOf(argc, argv);
  if (!args.empty() && args[0] == "launch-dlv") return LaunchDlv({args.begin() + 1, args.end()});

  agent::SidecarOptions o;
  int64_t target_pid = 0, leak_floor = static_cast<int64_t>(o.leak.floor_bytes_per_second),
          leak_consecutive = o.leak.consecutive;
  CommonFlags common;
  FlagSet flags(
      "graydebug-agent", "graydebug-agent [flags] | graydebug-agent launch-dlv [flags]",
      "The graydebug metrics sidecar: serves /metrics (graydebug_target_*), /healthz and /probe/dlv,\n"
      "which makes one JSON-RPC call to the pod's dlv. `graydebug-agent launch-dlv --help` for the launcher.");
  flags.Address("listen", &o.listen, "plain-HTTP address of /metrics, /healthz and /probe/dlv");
  flags.Address("dlv-addr", &o.dlv_addr, "address of the pod's dlv server");
  flags.Int("target-pid", &target_pid, 0, 4194304, "watch this PID instead of searching");
  flags.String("target-process", &o.target_process, "watch the process with this name (comm)");
  flags.Duration("sample-interval", &o.sample_interval, 100ms, 1h, "how often the target's memory is sampled");
  flags.Duration("probe-timeout", &o.probe_timeout, 10ms, 1min, "connect + reply timeout of one dlv probe");
  flags.Duration("dlv-probe-interval", &o.dlv_probe_interval, 0ms, 24h,
                 "how often dlv is probed for graydebug_target_dlv_up without a /probe/dlv call (0: never)");
  flags.String("expvar-url", &o.expvar_url,
               "the target's Go expvar endpoint, e.g. http://127.0.0.1:8080/debug/vars (heap gauges, heap growth); "
               "empty: RSS only");
  flags.Duration("leak-window", &o.leak.window, 1s, 24h, "window of the heap growth rate (least-squares slope)");
  flags.Duration("leak-baseline-window", &o.leak.baseline_window, 1s, 168h,
                 "how far back the baseline of past growth rates reaches");
  flags.Int("leak-floor", &leak_floor, 0, int64_t{1} << 40,
            "bytes per second of growth below which no leak is suspected, whatever the baseline");
  flags.Int("leak-consecutive", &leak_consecutive, 1, 1000,
            "consecutive samples above (below) the threshold that raise (clear) the leak suspicion");
  common.Register(flags);
  std::vector<std::string> positionals;
  if (auto code = ParseCommandLine(flags, common, "agent", args, &positionals)) return *code;
  if (!positionals.empty()) {
    return UsageError(flags, "unknown command \"" + positionals[0] + "\" (the only command is launch-dlv)");
  }
  if (!o.expvar_url.empty()) {
    if (std::string why = ValidateHttpUrl(o.expvar_url); !why.empty()) {
      return UsageError(flags, "--expvar-url " + o.expvar_url + ": " + why);
    }
  }
  o.target_pid = static_cast<int>(target_pid);
  o.leak.floor_bytes_per_second = static_cast<double>(leak_floor);
  o.leak.consecutive = static_cast<int>(leak_consecutive);
  return agent::RunSidecar(o);
}
