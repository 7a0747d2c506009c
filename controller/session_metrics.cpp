#include "controller/session_metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace graydebug::controller {

SessionMetrics::SessionMetrics(prometheus::Registry& registry)
    : active_(prometheus::BuildGauge()
                  .Name("debug_session_active")
                  .Help("Active DebugSessions on the pod (the series is removed when the last one ends)")
                  .Register(registry)),
      latency_(prometheus::BuildHistogram()
                   .Name("dlv_attach_latency_seconds")
                   .Help("Round trip of one attach (controller -> agent -> dlv GetVersion -> back)")
                   .Register(registry)),
      attempts_(prometheus::BuildCounter()
                    .Name("graydebug_attach_attempts_total")
                    .Help("Attach attempts by release and result (success, failure)")
                    .Register(registry)) {}

void SessionMetrics::SetActive(const std::string& key, bool active, const std::string& ns, const std::string& pod,
                               const std::string& release) {
  // Several sessions may debug one pod: the series of (namespace, pod, release) counts them and
  // goes away with the last one.
  std::lock_guard l(mu_);
  Labels labels = {{"namespace", ns}, {"pod", pod}, {"release", release}};
  auto it = labels_.find(key);
  if (it != labels_.end() && (!active || it->second != labels)) {
    auto& holders = holders_[it->second];
    holders.erase(key);
    if (holders.empty()) {
      active_.Remove(&active_.Add(it->second));
      holders_.erase(it->second);
    } else {
      active_.Add(it->second).Set(static_cast<double>(holders.size()));
    }
    labels_.erase(it);
  }
  if (active) {
    auto& holders = holders_[labels];
    holders.insert(key);
    active_.Add(labels).Set(static_cast<double>(holders.size()));
    labels_[key] = labels;
  }
}

void SessionMetrics::RecordAttempt(const std::string& ns, const std::string& release, const ProbeResult& p) {
  latency_
      .Add({{"status", p.ok ? "success" : "failure"}},
           prometheus::Histogram::BucketBoundaries{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
                                                   10})
      .Observe(p.latency_seconds);
  attempts_.Add({{"namespace", ns}, {"release", release}, {"result", p.ok ? "success" : "failure"}}).Increment();
}

}  // namespace graydebug::controller
