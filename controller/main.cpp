// graydebug-controller: DebugSession lifecycle, attach, metrics, circuit breakers (SPEC §3-§6).
// This file only wires flags.
#include <chrono>
#include <string>

#include "graydebug/cli_app.h"
#include "graydebug/config_file.h"
#include "graydebug/log.h"

using namespace graydebug;
using namespace std::chrono_literals;

int main(int argc, char** argv) {
  std::string kubeconfig, context, namespace_, config;
  std::string metrics_addr = ":9090", health_addr = ":8081";
  std::string lease_namespace, lease_name = "graydebug-controller";
  bool leader_elect = false;
  std::chrono::milliseconds probe_interval = 30s, max_ttl = 4h;
  int64_t workers = 4;
  CommonFlags common;
  FlagSet flags("graydebug-controller", "graydebug-controller [flags]",
                "Serves DebugSession resources: attaches to the target pod's dlv through its graydebug-agent,\n"
                "keeps the session's status, exports debug_session_active and dlv_attach_latency_seconds, and\n"
                "trips a circuit breaker on a gray release when attach failures exceed 5 %.");
  flags.String("kubeconfig", &kubeconfig, "kubeconfig file; in-cluster config when empty and running in a pod");
  flags.String("context", &context, "kubeconfig context to use instead of the current one");
  flags.String("namespace", &namespace_, "watch DebugSessions in this namespace only (default: all namespaces)");
  flags.Address("metrics-addr", &metrics_addr, "plain-HTTP address of /metrics");
  flags.Address("health-addr", &health_addr, "plain-HTTP address of /healthz and /readyz");
  flags.Bool("leader-elect", &leader_elect,
             "elect a leader through a coordination.k8s.io Lease; only the leader writes");
  flags.String("lease-namespace", &lease_namespace, "namespace of the leader Lease (default: the pod's namespace)");
  flags.String("lease-name", &lease_name, "name of the leader Lease");
  flags.Duration("probe-interval", &probe_interval, 1s, 24h, "how often Active sessions are re-probed");
  flags.Duration("max-ttl", &max_ttl, 1min, 168h, "longest ttl a DebugSession may ask for");
  flags.Int("workers", &workers, 1, 64, "reconcile workers");
  flags.String("config", &config, "controller configuration (YAML); built-in defaults when empty");
  common.Register(flags);

  std::vector<std::string> positionals;
  if (auto code = ParseCommandLine(flags, common, "controller", ArgsOf(argc, argv), &positionals)) return *code;
  if (!positionals.empty()) return UsageError(flags, "unexpected argument \"" + positionals[0] + "\" (see --help)");
  if (!config.empty()) {
    if (std::string why = CheckYamlConfigFile(config); !why.empty()) return UsageError(flags, why);
  }
  log::Error("the controller loop is not part of this build yet (tracked in issue #6); exiting",
             {{"metrics_addr", metrics_addr}, {"health_addr", health_addr}});
  return 3;
}
