// libFuzzer target: the watch-event decoder (kube::ParseWatchEvent) and what the informer does
// with the events, over a scripted transport (no network). The input's first line is the body of
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

class Lines final : public LineStream {
 public:
  Lines(std::deque<std::string> lines, Done& done) : lines_(std::move(lines)), done_(done) {}
  bool ReadLine(std::string* line, ApiError* error) override {
    if (cancelled_ || lines_.empty()) {
      done_.Set();
      *error = ApiError{};
      return false;
    }
    *line = std::move(lines_.front());
    lines_.pop_front();
    return true;
  }
  void Cancel() override { cancelled_ = true; }

 private:
  std::deque<std::string> lines_;
  Done& done_;
  std::atomic<bool> cancelled_{false};
};

class OneShotTransport final : public HttpTransport {
 public:
  OneShotTransport(std::string list_body, std::deque<std::string> watch_lines, Done& done)
      : list_body_(std::move(list_body)), watch_lines_(std::move(watch_lines)), done_(done) {}
  HttpResponse Do(const HttpRequest&) override {
    if (lists_++ == 0) return {200, list_body_, "", {}};
    return Later();
  }
  StreamResponse Stream(const HttpRequest&) override {
    StreamResponse s;
    if (watches_++ > 0) {
      s.head = Later();
      return s;
    }
    s.head.status = 200;
    s.stream = std::make_unique<Lines>(std::move(watch_lines_), done_);
    return s;
  }

 private:
  HttpResponse Later() {
    done_.Set();
    HttpResponse r;
    r.error = {ErrorKind::kConnection, 0, "", "fuzz: no more answers"};
    return r;
  }
  std::string list_body_;
  std::deque<std::string> watch_lines_;
  Done& done_;
  int lists_ = 0, watches_ = 0;
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

  Done done;
  RestConfig cfg;
  cfg.server = "https://127.0.0.1:1";
  ClientOptions copts;
  copts.qps = 0;
  copts.max_retries = 0;
  auto client = std::make_shared<Client>(cfg, std::make_unique<OneShotTransport>(list_body, lines, done), copts);
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
