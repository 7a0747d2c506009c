// graydebug-agent: the injected metrics sidecar, and with `launch-dlv` the dlv launcher (SPEC §2, §5).
// This file only wires flags.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>

#include "agent/dlv_launcher.h"
#include "agent/sidecar.h"
#include "graydebug/cli_app.h"
#include "graydebug/dlv_client.h"
#include "graydebug/http_get.h"
#include "graydebug/log.h"
#include "graydebug/net/address.h"
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

// `graydebug-agent probe-dlv`: dlv-server's exec readiness probe. One GetVersion to the pod's dlv,
// and the check that dlv accepts clients of other users (port-forwarded ones). Exit 0 when a
// person could attach, else 1 with one line (the kubelet puts it in the probe's event).
int ProbeDlv(const std::vector<std::string>& args) {
  std::string addr = "127.0.0.1:2345";
  std::chrono::milliseconds timeout = 3s;
  CommonFlags common;
  common.log_level = "warn";
  FlagSet flags("graydebug-agent probe-dlv", "graydebug-agent probe-dlv [--addr HOST:PORT]",
                "One RPCServer.GetVersion call to dlv, and a check that dlv accepts clients of any user (as\n"
                "kubectl port-forward's are). Exit 0 when both hold, else 1 with one line: dlv-server's readiness.");
  flags.Address("addr", &addr, "dlv's address");
  flags.Duration("timeout", &timeout, 10ms, 1min, "connect and reply timeout (each)");
  common.Register(flags);
  std::vector<std::string> positionals;
  if (auto code = ParseCommandLine(flags, common, "agent", args, &positionals)) return *code;
  if (!positionals.empty()) return UsageError(flags, "unexpected argument \"" + positionals[0] + "\" (see --help)");
  dlv::Reply r = dlv::Client(addr, dlv::Options{timeout, timeout, 1u << 20}).GetVersion();
  if (!r.ok()) {
    std::cout << "dlv at " << addr << " does not answer (" << dlv::ErrorKindName(r.error_kind) << ": " << r.error
              << "); the reason is in the dlv-server container's log\n";
    return 1;
  }
  std::string unused;
  const int port = net::ParseHostPort(addr, &unused).value_or(net::HostPort{}).port;
  if (auto d = agent::FindDlvServing("/proc", port); d && !d->any_user) {
    std::cout << "dlv (pid " << d->pid << ") accepts only uid " << d->uid
              << " (started without --only-same-user=false); port-forwarded clients will be refused\n";
    return 1;
  }
  std::string version =
      r.result.is_object() && r.result.contains("DelveVersion") && r.result["DelveVersion"].is_string()
          ? r.result["DelveVersion"].get<std::string>()
          : "?";
  version = version.substr(0, version.find('\n'));  // "Version: 1.27.2\nBuild: ..."
  std::cout << "dlv answers at " << addr << " (" << version << ")\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args = ArgsOf(argc, argv);
  if (!args.empty() && args[0] == "launch-dlv") return LaunchDlv({args.begin() + 1, args.end()});
  if (!args.empty() && args[0] == "probe-dlv") return ProbeDlv({args.begin() + 1, args.end()});

  agent::SidecarOptions o;
  int64_t target_pid = 0, leak_floor = static_cast<int64_t>(o.leak.floor_bytes_per_second),
          leak_consecutive = o.leak.consecutive;
  CommonFlags common;
  FlagSet flags(
      "graydebug-agent",
      "graydebug-agent [flags] | graydebug-agent launch-dlv [flags] | graydebug-agent probe-dlv [flags]",
      "The graydebug metrics sidecar: serves /metrics (graydebug_target_*), /healthz and /probe/dlv,\n"
      "which makes one JSON-RPC call to the pod's dlv. `graydebug-agent launch-dlv --help` for the launcher,\n"
      "`graydebug-agent probe-dlv --help` for dlv-server's readiness probe.");
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
    return UsageError(flags, "unknown command \"" + positionals[0] + "\" (the commands are launch-dlv and probe-dlv)");
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
