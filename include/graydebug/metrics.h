#pragma once

#include <memory>
#include <string>

#include "graydebug/http_server.h"
#include "graydebug/telemetry.h"

namespace prometheus {
class Registry;
}

namespace graydebug::metrics {

// The Prometheus text exposition (format 0.0.4) of everything in `registry`.
std::string Serialize(prometheus::Registry& registry);

// Serves `registry` at GET /metrics (plus GET /healthz) on a plain-HTTP port through the shared
// http::Server. Returns nullptr and one line in *error when the address is bad or in use.
std::unique_ptr<http::Server> StartMetricsServer(const std::string& listen,
                                                 std::shared_ptr<prometheus::Registry> registry, std::string* error);

// The libraries' own series in `registry` (docs/operations.md, "The libraries' metrics"):
//   graydebug_kube_requests_total{verb,code}, graydebug_kube_request_duration_seconds{verb},
//   graydebug_kube_request_retries_total{verb}, graydebug_informer_lists_total{informer,result},
//   graydebug_informer_watch_restarts_total{informer,reason}, leader_election_master_status{name},
//   graydebug_leader_transitions_total{name}, graydebug_tls_reloads_total{server,result}, and
//   controller-runtime's workqueue_{depth,adds_total,queue_duration_seconds,work_duration_seconds,
//   retries_total}{name}.
// Installs itself as the process-wide telemetry sink for as long as the returned object lives: create
// it before any client, queue or server, so that it outlives them.
class Telemetry {
 public:
  virtual ~Telemetry() = default;
};
std::unique_ptr<Telemetry> InstallTelemetry(std::shared_ptr<prometheus::Registry> registry);

}  // namespace graydebug::metrics
