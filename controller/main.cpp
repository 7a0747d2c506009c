// graydebug-controller: DebugSession lifecycle, attach, metrics, circuit breakers (SPEC §3-§6).
// This file only wires flags.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>

#include "controller/breaker_store.h"
#include "controller/controller_config.h"
#include "controller/session_controller.h"
#include "graydebug/api/circuits.h"
#include "graydebug/backoff.h"
#include "graydebug/kube/config.h"
#include "graydebug/kube/leader_election.h"
#include "graydebug/manager.h"
#include "graydebug/version.h"

#include "graydebug/cli_app.h"
#include "graydebug/config_file.h"
#include "graydebug/log.h"
#include "graydebug/stop_signals.h"

using namespace graydebug;
using namespace std::chrono_literals;

int main(int argc, char** argv) {
  std::string kubeconfig, context, namespace_, config;
  std::string metrics_addr = ":9090", health_addr = ":8081";
  std::string lease_namespace, lease_name = "graydebug-controller";
  bool leader_elect = false;
  std::chrono::milliseconds probe_interval = 30s, max_ttl = 4h;
  std::chrono::milliseconds watch_idle_timeout = 330s, kube_api_timeout = 30s;
  int64_t workers = 4, kube_api_qps = 50, kube_api_burst = 100;
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
  flags.Int("kube-api-qps", &kube_api_qps, 1, 10000, "client-side limit of requests per second to the API server");
  flags.Int("kube-api-burst", &kube_api_burst, 1, 10000, "burst above --kube-api-qps");
  flags.Duration("kube-api-timeout", &kube_api_timeout, 1s, 10min,
                 "how long one API request may wait for an answer before it is retried on a new connection");
  flags.Duration("watch-idle-timeout", &watch_idle_timeout, 1s, 1h,
                 "a watch that receives nothing (not even a bookmark) for this long is reopened: bounds how\n"
                 "long a silently dead connection (stalled network, lost NAT entry) blinds the controller");
  flags.String("config", &config, "controller configuration (YAML); built-in defaults when empty");
  common.Register(flags);

  std::vector<std::string> positionals;
  if (auto code = ParseCommandLine(flags, common, "controller", ArgsOf(argc, argv), &positionals)) return *code;
  if (!positionals.empty()) return UsageError(flags, "unexpected argument \"" + positionals[0] + "\" (see --help)");
  controller::ControllerConfig cfg;
  if (!config.empty()) {
    auto loaded = controller::LoadControllerConfig(config);
    if (!loaded.ok) return UsageError(flags, loaded.error);
    cfg = loaded.config;
  }
  // Flags given on the command line win over the config file.
  if (flags.WasSet("probe-interval") || config.empty()) cfg.reconciler.reprobe_interval = probe_interval;
  if (flags.WasSet("max-ttl") || config.empty()) cfg.reconciler.max_ttl = max_ttl;
  BlockStopSignals();  // taken below; blocked before any thread starts

  kube::ConfigOptions co;
  co.kubeconfig = kubeconfig;
  co.context = context;
  kube::ConfigResult kc = kube::LoadConfig(co);
  if (!kc.ok) return UsageError(flags, kc.error);
  kube::ClientOptions client_options;
  client_options.qps = static_cast<double>(kube_api_qps);
  client_options.burst = static_cast<int>(kube_api_burst);
  client_options.user_agent = "graydebug-controller/" + std::string(Version());
  client_options.request_timeout = kube_api_timeout;
  client_options.watch_idle_timeout = std::chrono::duration_cast<std::chrono::seconds>(watch_idle_timeout);
  auto client = kube::Client::Create(kc.config, client_options);  // sends nothing yet
  if (!client.ok()) return UsageError(flags, client.error().ToString());
  if (lease_namespace.empty()) {
    const char* pod_ns = std::getenv("POD_NAMESPACE");
    lease_namespace = pod_ns != nullptr && *pod_ns != '\0' ? pod_ns : kc.config.namespace_;
  }
  std::string identity = std::getenv("HOSTNAME") != nullptr ? std::getenv("HOSTNAME") : "graydebug-controller";
  identity += "-" + std::to_string(std::random_device{}() % 1000000);

  manager::Options mo;
  mo.metrics_addr = metrics_addr;
  mo.health_addr = health_addr;
  manager::Manager mgr(mo);  // the registry and the libraries' telemetry, before any client or queue

  controller::ControllerOptions opts;
  opts.namespace_ = namespace_;
  opts.workers = static_cast<int>(workers);
  opts.reconciler = cfg.reconciler;
  controller::HttpAttachProber prober(cfg.attach_timeout);
  kube::EventRecorder::Options eo;
  eo.component = "graydebug-controller";
  eo.instance = identity;
  // Events get a client of their own, so their rate limit never delays a status write.
  auto events_client = kube::Client::Create(kc.config, client_options);
  if (!events_client.ok()) return UsageError(flags, events_client.error().ToString());
  kube::EventRecorder events(events_client.value(), eo);
  // The breakers live in ConfigMap graydebug-circuits in the controller's own namespace.
  controller::BreakerStore breakers(client.value(), lease_namespace, cfg.breaker, mgr.Registry(), &events);
  controller::SessionController sessions(client.value(), opts, prober, breakers, mgr.Registry(), &events);

  mgr.AddReadyzCheck("informers", [&] { return sessions.HasSynced() ? "" : "informers not synced"; });
  mgr.Add({"events", nullptr, [&] { events.Flush(); }});  // stopped last: flushes what the others recorded
  mgr.Add({"informers",
           [&](const std::atomic<bool>&) {
             sessions.StartInformers();
             log::Info("controller started", {{"cluster", kc.config.source},
                                              {"namespace", namespace_.empty() ? "(all)" : namespace_},
                                              {"leader_elect", leader_elect ? "true" : "false"},
                                              {"identity", identity},
                                              {"circuits", lease_namespace + "/" + api::kCircuitsConfigMap},
                                              {"metrics_port", std::to_string(mgr.metrics_port())},
                                              {"health_port", std::to_string(mgr.health_port())},
                                              {"version", Version()}});
             return std::string();
           },
           [&] { sessions.Stop(); }});
  // The leader's work: the breakers first (they decide whether an attach may run), retried until
  // the ConfigMap can be read (RBAC, a refused token) and given up on shutdown; then the workers.
  mgr.AddLeaderGated({"breakers",
                      [&](const std::atomic<bool>& stopping) {
                        for (int failures = 1; !breakers.Load(); ++failures) {
                          const auto retry = Backoff::Ceiling(1s, 30s, failures);
                          for (auto waited = 0ms; waited < retry; waited += 100ms) {
                            if (stopping) return std::string("stopping");
                            std::this_thread::sleep_for(100ms);
                          }
                        }
                        breakers.Start();
                        return std::string();
                      },
                      [&] { breakers.Stop(); }});
  mgr.AddLeaderGated({"workers",
                      [&](const std::atomic<bool>&) {
                        sessions.StartWorkers();
                        return std::string();
                      },
                      [&] { sessions.Stop(); }});
  if (leader_elect) {
    // The Lease gets a client of its own: the workers' requests never hold a renewal back in the
    // rate limiter, and a renewal stuck on a dead connection is retried on a new one well within
    // the renew deadline (the elector gives up leadership at that deadline whatever the request does).
    kube::ClientOptions lease_options = client_options;
    lease_options.request_timeout = std::min(kube_api_timeout, kube::LeaderElectionConfig{}.renew_deadline / 2);
    lease_options.user_agent += " leader-election";
    auto lease_client = kube::Client::Create(kc.config, lease_options);
    if (!lease_client.ok()) return UsageError(flags, lease_client.error().ToString());
    kube::LeaderElectionConfig lc;  // SPEC §4: lease 15 s, renew deadline 10 s, retry 2 s (the defaults)
    lc.lease_namespace = lease_namespace;
    lc.lease_name = lease_name;
    lc.identity = identity;
    mgr.SetElection(kube::ElectionOf(lease_client.value(), lc));
  }
  return mgr.Run();
}
