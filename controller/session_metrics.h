#pragma once

#include <map>
#include <mutex>
#include <set>
#include <string>

#include "controller/session_reconciler.h"

namespace prometheus {
class Registry;
template <class T>
class Family;
class Gauge;
class Counter;
class Histogram;
}  // namespace prometheus

namespace graydebug::controller {

// The SPEC §5 session series: debug_session_active{namespace,pod,release} (how many Active sessions
// debug the pod; the series goes away with the last), dlv_attach_latency_seconds{status} and
// graydebug_attach_attempts_total{namespace,release,result}. Thread-safe.
class SessionMetrics {
 public:
  explicit SessionMetrics(prometheus::Registry& registry);
  // Session `key` is Active on (ns, pod, release), or not (`active` false: its series count drops).
  void SetActive(const std::string& key, bool active, const std::string& ns, const std::string& pod,
                 const std::string& release);
  void RecordAttempt(const std::string& ns, const std::string& release, const ProbeResult& p);

 private:
  using Labels = std::map<std::string, std::string>;
  prometheus::Family<prometheus::Gauge>& active_;
  prometheus::Family<prometheus::Histogram>& latency_;
  prometheus::Family<prometheus::Counter>& attempts_;
  std::mutex mu_;
  std::map<std::string, Labels> labels_;             // session key -> its series
  std::map<Labels, std::set<std::string>> holders_;  // series -> sessions
};

}  // namespace graydebug::controller
