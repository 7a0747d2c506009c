// graydebug-webhook: the mutating admission webhook (SPEC §2). This file only wires flags, the
// injector, the HTTPS server and (with cluster access) the namespace and breaker caches into a
// manager, which serves metrics and health and stops them in order.
#include <signal.h>

#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <thread>

#include "graydebug/api/circuits.h"
#include "graydebug/cli_app.h"
#include "graydebug/config_file.h"
#include "graydebug/http_server.h"
#include "graydebug/kube/config.h"
#include "graydebug/kube/transport.h"
#include "graydebug/log.h"
#include "graydebug/manager.h"
#include "graydebug/stop_signals.h"
#include "graydebug/version.h"
#include "webhook/admission.h"
#include "webhook/cluster_state.h"
#include "webhook/config_reload.h"

using namespace graydebug;
using namespace graydebug::webhook;
using namespace std::chrono_literals;

namespace {

// Admission metrics (SPEC §5).
class AdmissionMetrics {
 public:
  explicit AdmissionMetrics(prometheus::Registry& registry)
      : requests_(prometheus::BuildCounter()
                      .Name("graydebug_admission_requests_total")
                      .Help("Admission requests by result (injected, skipped, error) and reason")
                      .Register(registry)),
        duration_(prometheus::BuildHistogram()
                      .Name("graydebug_admission_duration_seconds")
                      .Help("Time to decode, decide and encode one admission request")
                      .Register(registry)
                      .Add({}, prometheus::Histogram::BucketBoundaries{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                                       0.01, 0.025, 0.05, 0.1, 0.25, 1})) {}

  void Record(const AdmissionOutcome& o, double seconds) {
    requests_.Add({{"result", o.result}, {"reason", o.reason}}).Increment();
    duration_.Observe(seconds);
  }

 private:
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Histogram& duration_;
};

http::Response Serve(const http::Request& req, AdmissionMetrics& metrics,
                     const std::function<AdmissionReply(std::string_view, std::string_view)>& handle) {
  auto start = std::chrono::steady_clock::now();
  AdmissionReply reply = handle(req.content_type, req.body);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  metrics.Record(reply.outcome, seconds);
  if (reply.outcome.result == "error") {
    log::Warn("admission request refused", {{"path", req.path},
                                            {"status", std::to_string(reply.status)},
                                            {"reason", reply.outcome.reason},
                                            {"remote", req.remote_address},
                                            {"error", reply.body}});
  } else if (reply.outcome.result == "injected") {
    log::Info("admitted with mutation", {{"path", req.path}, {"what", reply.outcome.reason}});
  } else {
    log::Debug("admitted unchanged", {{"path", req.path}, {"reason", reply.outcome.reason}});
  }
  return {reply.status, reply.content_type, std::move(reply.body)};
}

// `graydebug-webhook check-ready`: the chart's `helm test` (in the graydebug image itself, so it
// works air-gapped). GET <url>/readyz over HTTPS, verified with --ca-file; retried while the
// connection fails or the webhook answers 503 (not synced yet).
int CheckReady(const std::vector<std::string>& args) {
  std::string url, ca_file, server_name;
  int64_t attempts = 5;
  std::chrono::milliseconds timeout = 10s, interval = 2s;
  CommonFlags common;
  FlagSet flags("graydebug-webhook check-ready",
                "graydebug-webhook check-ready --url https://HOST[:PORT] --ca-file FILE",
                "GETs <url>/readyz over HTTPS, verifying the server with the CA in --ca-file; exit 0 on 200, else 1\n"
                "with one line. The chart's `helm test` runs it.");
  flags.String("url", &url, "https://HOST[:PORT] of the webhook (no path)");
  flags.String("ca-file", &ca_file, "PEM CA bundle that must have signed the webhook's certificate");
  flags.String("tls-server-name", &server_name, "name to verify in the certificate instead of the URL's host");
  flags.Int("attempts", &attempts, 1, 100, "tries before giving up (connection failures and 503 are retried)");
  flags.Duration("timeout", &timeout, 100ms, 5min, "timeout of one try");
  flags.Duration("interval", &interval, 0ms, 1min, "pause between tries");
  common.Register(flags);
  std::vector<std::string> positionals;
  if (auto code = ParseCommandLine(flags, common, "webhook", args, &positionals)) return *code;
  if (!positionals.empty()) return UsageError(flags, "unexpected argument \"" + positionals[0] + "\" (see --help)");
  if (url.rfind("https://", 0) != 0 || url.find('/', 8) != std::string::npos) {
    return UsageError(flags, "--url must be https://HOST[:PORT] without a path, got \"" + url + "\"");
  }
  if (ca_file.empty()) return UsageError(flags, "--ca-file is required (the check verifies the certificate)");
  FileReadResult ca = ReadFileLimited(ca_file);
  if (!ca.ok) return UsageError(flags, ca.error);
  kube::RestConfig rc;
  rc.server = url;
  rc.ca_pem = ca.contents;
  rc.tls_server_name = server_name;
  rc.source = "check-ready";
  std::string error;
  auto transport = kube::NewHttpTransport(rc, std::chrono::seconds(60), &error);
  if (!transport) return UsageError(flags, "--ca-file " + ca_file + ": " + error);
  std::string last;
  for (int64_t i = 1; i <= attempts; ++i) {
    kube::HttpRequest req;
    req.path = "/readyz";
    req.timeout = timeout;
    kube::HttpResponse r = transport->Do(req);
    if (r.status == 200) {
      std::cout << url << "/readyz: 200 " << r.body.substr(0, r.body.find('\n')) << " (certificate verified with "
                << ca_file << ")\n";
      return 0;
    }
    std::string body = r.body.substr(0, std::min<std::size_t>(r.body.find('\n'), 200));
    last = r.status == 0 ? r.error.ToString() : "HTTP " + std::to_string(r.status) + ": " + body;
    // Only what may pass: no answer yet, or not synced yet. Anything else is the answer.
    if (r.status != 0 && r.status != 503) break;
    if (i < attempts) std::this_thread::sleep_for(interval);
  }
  std::cerr << "graydebug-webhook check-ready: " << url << "/readyz: " << last << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  {
    std::vector<std::string> args = ArgsOf(argc, argv);
    if (!args.empty() && args[0] == "check-ready") return CheckReady({args.begin() + 1, args.end()});
  }
  std::string listen = ":8443", metrics_addr = ":9090";
  std::string tls_cert_file, tls_key_file, config, kubeconfig, circuits_namespace;
  int64_t threads = 2;
  std::chrono::milliseconds watch_idle_timeout = std::chrono::seconds(330), kube_api_timeout = std::chrono::seconds(30);
  std::chrono::milliseconds shutdown_delay{0};
  CommonFlags common;
  FlagSet flags("graydebug-webhook", "graydebug-webhook --tls-cert-file FILE --tls-key-file FILE [flags]",
                "Mutating admission webhook: injects the dlv-server and graydebug-agent sidecars into gray pods\n"
                "and stamps spec.requestedBy on DebugSessions. Serves POST /mutate/pods, POST /mutate/debugsessions,\n"
                "GET /healthz and GET /readyz over TLS; metrics on a separate plain-HTTP port.");
  flags.Address("listen", &listen, "HTTPS listen address for admission requests and health checks");
  flags.String("tls-cert-file", &tls_cert_file, "PEM serving certificate (reloaded when the file changes)");
  flags.String("tls-key-file", &tls_key_file, "PEM private key of the serving certificate (reloaded with it)");
  flags.String("config", &config, "injection configuration (YAML); built-in defaults when empty");
  flags.String("kubeconfig", &kubeconfig,
               "kubeconfig for reading circuit breakers; in-cluster config inside a pod; standalone without either");
  flags.Address("metrics-addr", &metrics_addr, "plain-HTTP address of /metrics");
  flags.String("circuits-namespace", &circuits_namespace,
               "namespace of ConfigMap graydebug-circuits (the controller's); default: this pod's namespace");
  flags.Int("threads", &threads, 2, 64, "worker threads of the HTTPS server");
  flags.Duration("kube-api-timeout", &kube_api_timeout, std::chrono::seconds(1), std::chrono::minutes(10),
                 "how long one API request may wait for an answer before it is retried on a new connection");
  flags.Duration("watch-idle-timeout", &watch_idle_timeout, std::chrono::seconds(1), std::chrono::hours(1),
                 "a watch (namespaces, circuit breakers) that receives nothing, not even a bookmark, for this\n"
                 "long is reopened: bounds how long a silently dead connection leaves the webhook's view stale");
  flags.Duration("shutdown-delay", &shutdown_delay, std::chrono::milliseconds(0), std::chrono::hours(1),
                 "after SIGTERM, keep serving admission requests this long while /readyz says 503, so the\n"
                 "Service stops sending requests here before the listener closes (a rolling update or a deleted\n"
                 "pod then drops no injection); 0: stop at once");
  common.Register(flags);

  std::vector<std::string> positionals;
  if (auto code = ParseCommandLine(flags, common, "webhook", ArgsOf(argc, argv), &positionals)) return *code;
  if (!positionals.empty()) return UsageError(flags, "unexpected argument \"" + positionals[0] + "\" (see --help)");
  if (tls_cert_file.empty() || tls_key_file.empty()) {
    return UsageError(flags, "--tls-cert-file and --tls-key-file are required (admission webhooks must serve TLS)");
  }
  ConfigLoadResult cfg;
  std::string config_text;
  if (config.empty()) {
    cfg.ok = true;
  } else {
    FileReadResult file = ReadFileLimited(config);
    if (!file.ok) return UsageError(flags, file.error);
    config_text = std::move(file.contents);
    cfg = ParseInjectionConfig(config_text);
    if (!cfg.ok) return UsageError(flags, "config " + config + ": " + cfg.error);
  }

  // The stop signals are taken below; block them before any thread starts.
  BlockStopSignals();

  manager::Options mo;
  mo.metrics_addr = metrics_addr;
  mo.shutdown_delay = shutdown_delay;  // /readyz says 503 while admission goes on being served
  manager::Manager mgr(mo);            // the registry and the libraries' telemetry, before any client or server

  // Cluster access: --kubeconfig, else in-cluster, else standalone (never ~/.kube/config by accident).
  std::unique_ptr<NamespaceLevels> namespaces;
  std::unique_ptr<BreakerView> breakers;
  ClusterBreakers* cluster_breakers = nullptr;
  kube::ConfigOptions co;
  co.kubeconfig = kubeconfig;
  co.use_default_locations = false;
  kube::ConfigResult kc = kube::LoadConfig(co);
  if (kc.ok) {
    kube::ClientOptions client_options;
    client_options.user_agent = "graydebug-webhook/" + std::string(Version());
    client_options.request_timeout = kube_api_timeout;
    client_options.watch_idle_timeout = std::chrono::duration_cast<std::chrono::seconds>(watch_idle_timeout);
    auto client = kube::Client::Create(kc.config, client_options);
    if (!client.ok()) return UsageError(flags, client.error().ToString());
    namespaces = std::make_unique<NamespaceLevels>(client.value());
    log::Info("cluster access", {{"source", kc.config.source}});
    if (circuits_namespace.empty()) {
      const char* pod_ns = std::getenv("POD_NAMESPACE");
      circuits_namespace = pod_ns != nullptr && *pod_ns != '\0' ? pod_ns : kc.config.namespace_;
    }
    auto cb = std::make_unique<ClusterBreakers>(client.value(), circuits_namespace);
    cluster_breakers = cb.get();
    breakers = std::move(cb);
    log::Info("circuit breakers from the cluster", {{"configmap", circuits_namespace + "/" + api::kCircuitsConfigMap}});
  } else if (kube::IsNoConfig(kc)) {
    breakers = std::make_unique<StandaloneBreakers>();
  } else {
    return UsageError(flags, kc.error);
  }

  ClusterView view;
  view.breakers = breakers.get();
  if (namespaces) {
    view.pod_security_enforce = [ns = namespaces.get()](const std::string& n) { return ns->EnforceLevel(n); };
  }
  ReloadingAdmission admission(config, config_text, cfg.config, view, Version());

  AdmissionMetrics metrics(mgr.Registry());
  auto& reloads = prometheus::BuildCounter()
                      .Name("graydebug_webhook_config_reloads_total")
                      .Help("Changes of the --config file: applied, or refused (the previous config stays)")
                      .Register(mgr.Registry());
  auto& reloads_applied = reloads.Add({{"result", "applied"}});
  auto& reloads_refused = reloads.Add({{"result", "refused"}});

  http::ServerOptions so;
  so.listen = listen;
  so.tls_cert_file = tls_cert_file;
  so.tls_key_file = tls_key_file;
  so.threads = static_cast<int>(threads);
  so.max_body_bytes = kMaxAdmissionBodyBytes;
  so.name = "webhook";
  std::string error;
  auto server = http::Server::Create(so, &error);
  if (!server) return UsageError(flags, error);
  server->Handle("POST", "/mutate/pods", [&](const http::Request& r) {
    return Serve(r, metrics, [&](auto ct, auto body) { return admission.Current()->MutatePods(ct, body); });
  });
  server->Handle("POST", "/mutate/debugsessions", [&](const http::Request& r) {
    return Serve(r, metrics, [&](auto ct, auto body) { return admission.Current()->MutateDebugSessions(ct, body); });
  });
  mgr.ServeHealthOn(*server);
  mgr.AddReadyzCheck("tls", [&] { return server->TlsLoaded() ? "" : "serving certificate not loaded"; });
  if (namespaces) {
    mgr.AddReadyzCheck("namespaces", [&] { return namespaces->HasSynced() ? "" : "namespace cache not synced"; });
    mgr.Add({"namespaces",
             [&](const std::atomic<bool>&) {
               namespaces->Start();
               return std::string();
             },
             [&] { namespaces->Stop(); }});
  }
  if (cluster_breakers) {
    mgr.AddReadyzCheck("circuit-breakers",
                       [&] { return cluster_breakers->HasSynced() ? "" : "circuit breakers not synced"; });
    mgr.Add({"circuit-breakers",
             [&](const std::atomic<bool>&) {
               cluster_breakers->Start();
               return std::string();
             },
             [&] { cluster_breakers->Stop(); }});
  }
  mgr.Add({"admission",
           [&](const std::atomic<bool>&) {
             if (std::string why = server->Start(); !why.empty()) return "cannot serve admission requests: " + why;
             log::Info("serving", {{"listen", listen},
                                   {"port", std::to_string(server->port())},
                                   {"metrics_port", std::to_string(mgr.metrics_port())},
                                   {"config", config.empty() ? "built-in defaults" : config},
                                   {"version", Version()}});
             return std::string();
           },
           [&] {
             log::Info("finishing in-flight admission requests");
             server->Stop();
           }});
  // The config file is re-read every second, like the certificate (a mounted ConfigMap changes in
  // place); an invalid change is refused and the config in force stays.
  mgr.Add(manager::Every("config-reload", 1s, [&] {
    std::string error;
    switch (admission.Check(&error)) {
      case ReloadingAdmission::Outcome::kApplied:
        reloads_applied.Increment();
        log::Info("injection config reloaded", {{"config", config}});
        break;
      case ReloadingAdmission::Outcome::kRefused:
        reloads_refused.Increment();
        log::Error("injection config change refused; the previous config stays in force", {{"error", error}});
        break;
      case ReloadingAdmission::Outcome::kUnchanged: break;
    }
  }));
  return mgr.Run();
}
