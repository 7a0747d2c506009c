// The informer over a scripted transport (no network): what it does with odd watch events.
// Regressions of bugs found while writing the watch fuzz target (tests/fuzz/watch_fuzz.cpp).
#include "graydebug/kube/informer.h"

#include <doctest/doctest.h>

#include "support/recording_sink.h"

#include <condition_variable>
#include <deque>
#include <mutex>

using namespace std::chrono_literals;
using graydebug::kube::ApiError;
using graydebug::kube::Client;
using graydebug::kube::ClientOptions;
using graydebug::kube::ErrorKind;
using graydebug::kube::HttpRequest;
using graydebug::kube::HttpResponse;
using graydebug::kube::HttpTransport;
using graydebug::kube::Informer;
using graydebug::kube::InformerOptions;
using graydebug::kube::LineStream;
using graydebug::kube::Resource;
using graydebug::kube::StreamResponse;

namespace {

class Lines final : public LineStream {
 public:
  explicit Lines(std::deque<std::string> lines) : lines_(std::move(lines)) {}
  bool ReadLine(std::string* line, ApiError* error) override {
    *error = ApiError{};
    if (lines_.empty()) return false;
    *line = std::move(lines_.front());
    lines_.pop_front();
    return true;
  }
  void Cancel() override {}

 private:
  std::deque<std::string> lines_;
};

// Every list answers `list`; the first watch streams `events`, later ones fail. Counts requests.
class Transport final : public HttpTransport {
 public:
  Transport(std::string list, std::deque<std::string> events) : list_(std::move(list)), events_(std::move(events)) {}
  HttpResponse Do(const HttpRequest&) override {
    Bump(lists);
    return {200, list_, "", {}};
  }
  StreamResponse Stream(const HttpRequest&) override {
    StreamResponse s;
    if (Bump(watches) > 1) {
      s.head.error = {ErrorKind::kConnection, 0, "", "no more watches"};
      return s;
    }
    s.head.status = 200;
    s.stream = std::make_unique<Lines>(std::move(events_));
    return s;
  }
  // Waits until `counter` reaches `n`.
  bool WaitFor(const int& counter, int n) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, 10s, [&] { return counter >= n; });
  }
  std::mutex mu;
  std::condition_variable cv;
  int lists = 0, watches = 0;

 private:
  int Bump(int& counter) {
    std::lock_guard lock(mu);
    ++counter;
    cv.notify_all();
    return counter;
  }
  std::string list_;
  std::deque<std::string> events_;
};

const char* kList =
    R"({"metadata":{"resourceVersion":"10"},"items":[{"metadata":{"name":"a","namespace":"shop","resourceVersion":"9"}}]})";

struct Rig {
  Transport* transport;
  std::unique_ptr<Informer> informer;
  explicit Rig(std::deque<std::string> events) {
    auto t = std::make_unique<Transport>(kList, std::move(events));
    transport = t.get();
    ClientOptions o;
    o.qps = 0;
    o.max_retries = 0;
    graydebug::kube::RestConfig cfg;
    cfg.server = "https://127.0.0.1:1";
    InformerOptions io;
    io.backoff_base = 1ms;
    io.backoff_cap = 2ms;
    io.name = "pods";
    informer = std::make_unique<Informer>(std::make_shared<Client>(cfg, std::move(t), o), Resource::Pods(), "", io);
    informer->Start();
  }
};

}  // namespace

TEST_CASE("informer: an ERROR event whose Status has a string code or a numeric message does not kill it") {
  // Found while writing the watch fuzz target: json::value("code", 0) threw type_error on {"code":"410"} in the
  // informer's thread, which has no handler, so the whole process aborted.
  Rig rig({R"({"type":"ERROR","object":{"kind":"Status","code":"410","message":7}})"});
  REQUIRE(rig.transport->WaitFor(rig.transport->watches, 2));  // it reconnected instead of dying
  rig.informer->Stop();
  CHECK(rig.informer->Lists() == 1);  // an unreadable code is not a 410: no relist
  CHECK(rig.informer->Size() == 1);
}

TEST_CASE("informer: an ERROR event with code 410 relists") {
  Rig rig({R"({"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired"}})"});
  REQUIRE(rig.transport->WaitFor(rig.transport->lists, 2));
  rig.informer->Stop();
  CHECK(rig.informer->Size() == 1);
}

TEST_CASE("informer: lists and watch restarts are reported by reason") {
  graydebug::testing::RecordingSink sink;
  {
    // The first watch ends with a 410 (a relist follows); the second cannot start (an error).
    Rig rig({R"({"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired"}})"});
    REQUIRE(rig.transport->WaitFor(rig.transport->watches, 2));
    rig.informer->Stop();
  }
  CHECK(sink.Count("list pods ok") == 2);
  CHECK(sink.Count("watch-restart pods gone") == 1);
  CHECK(sink.Count("watch-restart pods error") >= 1);
  CHECK(sink.Count("watch-restart pods closed") == 0);
}

TEST_CASE("informer: a watch the server closes is reported as closed") {
  graydebug::testing::RecordingSink sink;
  {
    Rig rig({R"({"type":"ADDED","object":{"metadata":{"name":"b","namespace":"shop","resourceVersion":"11"}}})"});
    REQUIRE(rig.transport->WaitFor(rig.transport->watches, 2));
    rig.informer->Stop();
  }
  CHECK(sink.Count("list pods ok") == 1);
  CHECK(sink.Count("watch-restart pods closed") == 1);
}
