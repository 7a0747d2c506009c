#pragma once

#include <memory>
#include <string>

#include "graydebug/http_server.h"

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

}  // namespace graydebug::metrics
