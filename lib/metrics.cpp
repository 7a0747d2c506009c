#include "graydebug/metrics.h"

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
