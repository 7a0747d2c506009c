// graydebug-controller: DebugSession lifecycle, attach, metrics, circuit breakers (SPEC §3-§6).
// This file only wires flags.
#include <signal.h>

#include <prometheus/registry.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <random>
#include <string>
#include <thread>

#include "controller/breaker_store.h"
#include "controller/controller_config.h"
#include "controller/session_controller.h"
#include "graydebug/api/circuits.h"
#include "graydebug/backoff.h"
#include "graydebug/http_server.h"
#include "graydebug/kube/config.h"
#include "graydebug/kube/leader_election.h"
#include "graydebug/metrics.h"
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

  auto registry = std::make_shared<prometheus::Registry>();
  auto telemetry = metrics::InstallTelemetry(registry);  // before any request, queue or server
  std::string error;
  auto metrics_server = metrics::StartMetricsServer(metrics_addr, registry, &error);
  if (!metrics_server) {
    log::Error("cannot serve metrics", {{"error", error}});
    return 1;
  }

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
  // The Lease gets a client of its own too: the workers' requests never hold a renewal back in the
  // rate limiter, and a renewal stuck on a dead connection is retried on a new one well within the
  // renew deadline (the elector gives up leadership at that deadline whatever the request does).
  std::shared_ptr<kube::Client> lease_client;
  if (leader_elect) {
    kube::ClientOptions lease_options = client_options;
    lease_options.request_timeout = std::min(kube_api_timeout, kube::LeaderElectionConfig{}.renew_deadline / 2);
    lease_options.user_agent += " leader-election";
    auto created = kube::Client::Create(kc.config, lease_options);
    if (!created.ok()) return UsageError(flags, created.error().ToString());
    lease_client = created.value();
  }
  // The breakers live in ConfigMap graydebug-circuits in the controller's own namespace.
  controller::BreakerStore breakers(client.value(), lease_namespace, cfg.breaker, *registry, &events);
  controller::SessionController sessions(client.value(), opts, prober, breakers, *registry, &events);
  // Workers start once the breakers are loaded (they decide whether an attach may run). The wait
  // ends early on shutdown: without it, a controller whose ConfigMap cannot be read (RBAC, a
  // refused token) would never get to take SIGTERM. start_mu orders "started" against "stopping".
  std::atomic<bool> stopping{false};
  std::mutex start_mu;
  auto start_leading = [&] {
    for (int failures = 1; !breakers.Load(); ++failures) {
      const auto retry = Backoff::Ceiling(1s, 30s, failures);
      for (auto waited = 0ms; waited < retry; waited += 100ms) {
        if (stopping) return;
        std::this_thread::sleep_for(100ms);
      }
    }
    std::lock_guard lock(start_mu);
    if (stopping) return;
    breakers.Start();
    sessions.StartWorkers();
  };

  std::atomic<bool> leading{!leader_elect};
  http::ServerOptions ho;
  ho.listen = health_addr;
  ho.name = "health";
  auto health = http::Server::Create(ho, &error);
  if (!health) return UsageError(flags, error);
  health->Handle("GET", "/healthz", [](const http::Request&) { return http::Response{200, "text/plain", "ok\n"}; });
  health->Handle("GET", "/readyz", [&](const http::Request&) {
    if (!sessions.HasSynced()) return http::Response{503, "text/plain", "informers not synced\n"};
    return http::Response{200, "text/plain", leading ? "ok (leader)\n" : "ok (standby)\n"};
  });
  if (std::string why = health->Start(); !why.empty()) {
    log::Error("cannot serve health checks", {{"error", why}});
    return 1;
  }
  sessions.StartInformers();
  log::Info("controller started", {{"cluster", kc.config.source},
                                   {"namespace", namespace_.empty() ? "(all)" : namespace_},
                                   {"leader_elect", leader_elect ? "true" : "false"},
                                   {"identity", identity},
                                   {"circuits", lease_namespace + "/" + api::kCircuitsConfigMap},
                                   {"metrics_port", std::to_string(metrics_server->port())},
                                   {"health_port", std::to_string(health->port())},
                                   {"version", Version()}});

  std::unique_ptr<kube::LeaderElector> elector;
  std::thread election, starter;
  if (leader_elect) {
    kube::LeaderElectionConfig lc;  // SPEC §4: lease 15 s, renew deadline 10 s, retry 2 s (the defaults)
    lc.lease_namespace = lease_namespace;
    lc.lease_name = lease_name;
    lc.identity = identity;
    lc.on_started_leading = [&] {
      log::Info("leading: starting workers", {{"identity", identity}});
      leading = true;
      // On a thread of its own: the elector must go on renewing the lease while this waits.
      std::lock_guard lock(start_mu);
      if (!stopping) starter = std::thread(start_leading);
    };
    lc.on_stopped_leading = [&] {
      leading = false;
      if (!stopping) {
        // Another replica leads now; a restart gives a clean standby (controller-runtime does the same).
        log::Error("leadership lost; exiting so a fresh replica stands by", {{"identity", identity}});
        std::_Exit(1);
      }
    };
    elector = std::make_unique<kube::LeaderElector>(lease_client, lc);
    election = std::thread([&] { elector->Run(); });
  } else {
    starter = std::thread(start_leading);
  }

  const char* sig = WaitForStopSignal();
  {
    std::lock_guard lock(start_mu);
    stopping = true;
  }
  log::Info("shutting down", {{"signal", sig}});
  if (starter.joinable()) starter.join();
  sessions.Stop();
  breakers.Stop();
  if (elector) {
    elector->Stop();  // releases the lease so a successor takes over at once
    election.join();
  }
  events.Flush();
  health->Stop();
  metrics_server->Stop();
  log::Info("stopped");
  return 0;
}
