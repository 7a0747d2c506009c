// libFuzzer target: the watch-event decoder (kube::ParseWatchEvent) and what the informer does
// with the events, over the fake API server's scripted answers (no network). The input's first line is the body of
// the informer's list; every further line is one line of the watch stream. Any later request
// ends the run. Run by `make fuzz`.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "graydebug/kube/client.h"
#include "graydebug/kube/informer.h"
#include "graydebug/log.h"
#include "support/fake_apiserver.h"

namespace {

using namespace graydebug::kube;

struct Done {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  void Set() {
    std::lock_guard lock(mu);
    done = true;
    cv.notify_all();
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = [] {
    graydebug::log::Configure("fuzz", graydebug::log::Level::kError, graydebug::log::Format::kJson);
    return true;
  }();
  (void)quiet;
  std::string input(reinterpret_cast<const char*>(data), size);
  std::deque<std::string> lines;
  for (std::size_t start = 0; start <= input.size();) {
    std::size_t nl = input.find('\n', start);
    if (nl == std::string::npos) nl = input.size();
    lines.push_back(input.substr(start, nl - start));
    start = nl + 1;
  }
  std::string list_body = std::move(lines.front());
  lines.pop_front();

  // The decoder on its own: an event is either decoded or a kDecode error, never a throw.
  for (const std::string& line : lines) {
    auto ev = ParseWatchEvent(line);
    if (!ev.ok() && ev.error().kind != ErrorKind::kDecode) __builtin_trap();
  }

  // The fake API server answers the first list with the input's first line and the first watch
  // with the rest; any later request ends the run.
  Done done;
  graydebug::testing::FakeApiServer api;
  api.Script({{200, list_body, "", {}}});
  api.ScriptWatch(lines);
  std::atomic<int> requests{0};
  api.Intercept([&](const HttpRequest&) -> std::optional<HttpResponse> {
    if (++requests <= 2) return std::nullopt;
    done.Set();
    HttpResponse r;
    r.error = {ErrorKind::kConnection, 0, "", "fuzz: no more answers"};
    return r;
  });
  ClientOptions copts;
  copts.max_retries = 0;
  auto client = api.NewClient(copts);
  InformerOptions iopts;
  iopts.backoff_base = std::chrono::milliseconds(1);
  iopts.backoff_cap = std::chrono::milliseconds(2);
  iopts.name = "fuzz";
  Informer informer(client, Resource::Pods(), "", iopts);
  std::atomic<std::size_t> seen{0};
  auto touch = [&seen](const nlohmann::json& o) {
    seen += Informer::KeyOf(o).size() + o.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).size();
  };
  informer.AddHandlers({touch, [&](const nlohmann::json& a, const nlohmann::json& b) { touch(a), touch(b); }, touch});
  informer.Start();
  {
    std::unique_lock lock(done.mu);
    // A stream that never ends the run is a hang; libFuzzer's -timeout reports it.
    done.cv.wait(lock, [&] { return done.done; });
  }
  for (const auto& o : informer.List()) touch(o);
  (void)informer.LastResourceVersion();
  informer.Stop();
  return 0;
}
