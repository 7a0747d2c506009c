// The libraries' metrics as Prometheus series: what metrics::InstallTelemetry exports for each hook.
#include <doctest/doctest.h>

#include <prometheus/registry.h>

#include "graydebug/clock.h"
#include "graydebug/metrics.h"
#include "graydebug/telemetry.h"
#include "graydebug/workqueue.h"
#include "support/fake_clock.h"

using namespace std::chrono_literals;
using graydebug::telemetry::Current;

namespace {

bool Has(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}

}  // namespace

TEST_CASE("telemetry: the default sink does nothing; the Prometheus one is installed for its lifetime") {
  graydebug::telemetry::Sink* before = &Current();
  auto registry = std::make_shared<prometheus::Registry>();
  {
    auto telemetry = graydebug::metrics::InstallTelemetry(registry);
    CHECK(&Current() != before);
  }
  CHECK(&Current() == before);
  Current().KubeRequest("GET", 200, 0.1);  // the default: no series anywhere
  CHECK(graydebug::metrics::Serialize(*registry).find("graydebug_kube_requests_total{") == std::string::npos);
}

TEST_CASE("telemetry: every hook becomes its series") {
  auto registry = std::make_shared<prometheus::Registry>();
  auto telemetry = graydebug::metrics::InstallTelemetry(registry);
  Current().KubeRequest("GET", 200, 0.003);
  Current().KubeRequest("GET", 200, 0.004);
  Current().KubeRequest("PUT", 0, 0.5);
  Current().KubeRetry("PUT");
  Current().InformerList("pods", true);
  Current().InformerList("pods", false);
  Current().WatchRestart("pods", "gone");
  Current().Leading("graydebug-controller", true);
  Current().Leading("graydebug-controller", false);
  Current().TlsReload("webhook", true);
  Current().TlsReload("webhook", false);
  graydebug::FakeClock clock;
  graydebug::WorkQueue q(clock);
  q.Instrument("debugsession");
  q.Add("a");
  clock.Advance(2s);
  q.Done(*q.Get());

  std::string m = graydebug::metrics::Serialize(*registry);
  CAPTURE(m);
  CHECK(Has(m, R"(graydebug_kube_requests_total{code="200",verb="GET"} 2)"));
  CHECK(Has(m, R"(graydebug_kube_requests_total{code="0",verb="PUT"} 1)"));
  CHECK(Has(m, R"(graydebug_kube_request_duration_seconds_count{verb="GET"} 2)"));
  CHECK(Has(m, R"(graydebug_kube_request_duration_seconds_bucket{verb="GET",le="0.005"} 2)"));
  CHECK(Has(m, R"(graydebug_kube_request_retries_total{verb="PUT"} 1)"));
  CHECK(Has(m, R"(graydebug_informer_lists_total{informer="pods",result="ok"} 1)"));
  CHECK(Has(m, R"(graydebug_informer_lists_total{informer="pods",result="error"} 1)"));
  CHECK(Has(m, R"(graydebug_informer_watch_restarts_total{informer="pods",reason="gone"} 1)"));
  CHECK(Has(m, R"(leader_election_master_status{name="graydebug-controller"} 0)"));
  CHECK(Has(m, R"(graydebug_leader_transitions_total{name="graydebug-controller"} 2)"));
  CHECK(Has(m, R"(graydebug_tls_reloads_total{result="loaded",server="webhook"} 1)"));
  CHECK(Has(m, R"(graydebug_tls_reloads_total{result="refused",server="webhook"} 1)"));
  CHECK(Has(m, R"(workqueue_adds_total{name="debugsession"} 1)"));
  CHECK(Has(m, R"(workqueue_depth{name="debugsession"} 0)"));
  CHECK(Has(m, R"(workqueue_queue_duration_seconds_sum{name="debugsession"} 2)"));
  CHECK(Has(m, R"(workqueue_work_duration_seconds_count{name="debugsession"} 1)"));
}
