#include "graydebug/telemetry.h"

#include <atomic>

namespace graydebug::telemetry {

namespace {

Sink& Default() {
  static Sink sink;
  return sink;
}

std::atomic<Sink*> current{nullptr};

}  // namespace

std::shared_ptr<QueueMetrics> Sink::Queue(std::string_view) {
  return std::make_shared<QueueMetrics>();
}

void Install(Sink* sink) {
  current.store(sink, std::memory_order_release);
}

Sink& Current() {
  Sink* s = current.load(std::memory_order_acquire);
  return s != nullptr ? *s : Default();
}

}  // namespace graydebug::telemetry
