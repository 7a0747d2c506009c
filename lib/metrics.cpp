#include "graydebug/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

namespace graydebug::metrics {

std::string Serialize(prometheus::Registry& registry) {
  prometheus::TextSerializer serializer;
  return serializer.Serialize(registry.Collect());
}

std::unique_ptr<http::Server> StartMetricsServer(const std::string& listen,
                                                 std::shared_ptr<prometheus::Registry> registry, std::string* error) {
  http::ServerOptions o;
  o.listen = listen;
  o.max_body_bytes = 64 << 10;  // nothing here takes a body
  o.name = "metrics";
  auto server = http::Server::Create(o, error);
  if (!server) return nullptr;
  server->Handle("GET", "/metrics", [registry](const http::Request&) {
    return http::Response{200, "text/plain; version=0.0.4; charset=utf-8", Serialize(*registry)};
  });
  server->Handle("GET", "/healthz", [](const http::Request&) { return http::Response{200, "text/plain", "ok\n"}; });
  if (std::string why = server->Start(); !why.empty()) {
    *error = "metrics server: " + why;
    return nullptr;
  }
  return server;
}

}  // namespace graydebug::metrics

namespace graydebug::metrics {

namespace {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;

// Seconds, from a local API server's 1 ms to a slow 30 s request.
Histogram::BucketBoundaries RequestBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
}
// controller-runtime's workqueue buckets: 1 µs to 10 s by tens.
Histogram::BucketBoundaries QueueBuckets() {
  return {1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1, 10};
}

class PrometheusQueue final : public telemetry::QueueMetrics {
 public:
  PrometheusQueue(Gauge& depth, Counter& adds, Histogram& waited, Histogram& worked, Counter& retries)
      : depth_(depth), adds_(adds), waited_(waited), worked_(worked), retries_(retries) {}
  void Added() override { adds_.Increment(); }
  void Depth(std::int64_t keys) override { depth_.Set(static_cast<double>(keys)); }
  void Waited(double s) override { waited_.Observe(s); }
  void Worked(double s) override { worked_.Observe(s); }
  void Retried() override { retries_.Increment(); }

 private:
  Gauge& depth_;
  Counter& adds_;
  Histogram& waited_;
  Histogram& worked_;
  Counter& retries_;
};

class PrometheusTelemetry final : public Telemetry, public telemetry::Sink {
 public:
  explicit PrometheusTelemetry(std::shared_ptr<prometheus::Registry> registry)
      : registry_(std::move(registry)),
        requests_(prometheus::BuildCounter()
                      .Name("graydebug_kube_requests_total")
                      .Help("Attempts of requests to the Kubernetes API server by verb and HTTP code (0: no reply)")
                      .Register(*registry_)),
        request_seconds_(prometheus::BuildHistogram()
                             .Name("graydebug_kube_request_duration_seconds")
                             .Help("Duration of one attempt of a Kubernetes API request (a watch: until its headers)")
                             .Register(*registry_)),
        retries_(prometheus::BuildCounter()
                     .Name("graydebug_kube_request_retries_total")
                     .Help("Kubernetes API requests sent again after 429, 5xx, a timeout or a connection error")
                     .Register(*registry_)),
        lists_(prometheus::BuildCounter()
                   .Name("graydebug_informer_lists_total")
                   .Help("Full lists of an informer (the first and every relist) by result (ok, error)")
                   .Register(*registry_)),
        watch_restarts_(prometheus::BuildCounter()
                            .Name("graydebug_informer_watch_restarts_total")
                            .Help("Watches of an informer opened again, by reason (closed, gone, error)")
                            .Register(*registry_)),
        leader_(prometheus::BuildGauge()
                    .Name("leader_election_master_status")
                    .Help("1 while this process leads on the lease, else 0")
                    .Register(*registry_)),
        transitions_(prometheus::BuildCounter()
                         .Name("graydebug_leader_transitions_total")
                         .Help("Times this process started or stopped leading on the lease")
                         .Register(*registry_)),
        tls_reloads_(prometheus::BuildCounter()
                         .Name("graydebug_tls_reloads_total")
                         .Help("Changes of a server's TLS files by result (loaded, refused: the current pair stays)")
                         .Register(*registry_)),
        depth_(
            prometheus::BuildGauge().Name("workqueue_depth").Help("Keys ready in the work queue").Register(*registry_)),
        adds_(prometheus::BuildCounter()
                  .Name("workqueue_adds_total")
                  .Help("Keys added to the work queue")
                  .Register(*registry_)),
        waited_(prometheus::BuildHistogram()
                    .Name("workqueue_queue_duration_seconds")
                    .Help("Time a key waited in the work queue before a worker took it")
                    .Register(*registry_)),
        worked_(prometheus::BuildHistogram()
                    .Name("workqueue_work_duration_seconds")
                    .Help("Time a worker spent on a key")
                    .Register(*registry_)),
        queue_retries_(prometheus::BuildCounter()
                           .Name("workqueue_retries_total")
                           .Help("Keys put back after a failure, with backoff")
                           .Register(*registry_)) {
    telemetry::Install(this);
  }
  ~PrometheusTelemetry() override { telemetry::Install(nullptr); }

  void KubeRequest(std::string_view verb, int code, double seconds) override {
    std::string v(verb);
    requests_.Add({{"verb", v}, {"code", std::to_string(code)}}).Increment();
    request_seconds_.Add({{"verb", v}}, RequestBuckets()).Observe(seconds);
  }
  void KubeRetry(std::string_view verb) override { retries_.Add({{"verb", std::string(verb)}}).Increment(); }
  void InformerList(std::string_view informer, bool ok) override {
    lists_.Add({{"informer", std::string(informer)}, {"result", ok ? "ok" : "error"}}).Increment();
  }
  void WatchRestart(std::string_view informer, std::string_view reason) override {
    watch_restarts_.Add({{"informer", std::string(informer)}, {"reason", std::string(reason)}}).Increment();
  }
  void Leading(std::string_view lease, bool leading) override {
    std::string name(lease);
    leader_.Add({{"name", name}}).Set(leading ? 1 : 0);
    transitions_.Add({{"name", name}}).Increment();
  }
  void TlsReload(std::string_view server, bool ok) override {
    tls_reloads_.Add({{"server", std::string(server)}, {"result", ok ? "loaded" : "refused"}}).Increment();
  }
  std::shared_ptr<telemetry::QueueMetrics> Queue(std::string_view name) override {
    prometheus::Labels l{{"name", std::string(name)}};
    return std::make_shared<PrometheusQueue>(depth_.Add(l), adds_.Add(l), waited_.Add(l, QueueBuckets()),
                                             worked_.Add(l, QueueBuckets()), queue_retries_.Add(l));
  }

 private:
  // The families below live in the registry.
  std::shared_ptr<prometheus::Registry> registry_;
  Family<Counter>& requests_;
  Family<Histogram>& request_seconds_;
  Family<Counter>& retries_;
  Family<Counter>& lists_;
  Family<Counter>& watch_restarts_;
  Family<Gauge>& leader_;
  Family<Counter>& transitions_;
  Family<Counter>& tls_reloads_;
  Family<Gauge>& depth_;
  Family<Counter>& adds_;
  Family<Histogram>& waited_;
  Family<Histogram>& worked_;
  Family<Counter>& queue_retries_;
};

}  // namespace

std::unique_ptr<Telemetry> InstallTelemetry(std::shared_ptr<prometheus::Registry> registry) {
  return std::make_unique<PrometheusTelemetry>(std::move(registry));
}

}  // namespace graydebug::metrics
