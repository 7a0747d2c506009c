// graydebug-agent's metrics sidecar over real loopback sockets: the real leaky Go app as the
// target (RSS from /proc, heap from its expvar), a fake dlv that accepts and never answers, the
// real pinned dlv attached to the app, and the built binary for signals and its own footprint.
// No timing assertions: every wait is a bounded poll.
#include "agent/sidecar.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>
#include <thread>
#include <vector>

#include "graydebug/dlv_client.h"
#include "graydebug/http_get.h"
#include "graydebug/log.h"
#include "support/eventually.h"
#include "support/log_capture.h"
#include "support/ports.h"
#include "support/process.h"

namespace fs = std::filesystem;
using graydebug::HttpGet;
using graydebug::HttpGetResult;
using graydebug::agent::Sidecar;
using graydebug::agent::SidecarOptions;
using graydebug::testing::Child;
using graydebug::testing::Run;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

// ---- Log capture: the sidecar's lines, readable while its threads write. ----

graydebug::testing::LockedBuf& Logs() {
  return graydebug::testing::CapturedLogs("agent-test");
}

bool Logged(const std::string& text) {
  return Logs().Text().find(text) != std::string::npos;
}

// ---- Helpers ----

using graydebug::testing::Eventually;

using graydebug::testing::AgentServing;
using graydebug::testing::DlvListening;
using graydebug::testing::LeakyAppServing;
using graydebug::testing::NothingListens;
using graydebug::testing::PortPrinted;

std::string Local(int port, const std::string& path) {
  return "http://127.0.0.1:" + std::to_string(port) + path;
}

HttpGetResult Get(int port, const std::string& path) {
  return HttpGet(Local(port, path), 30s);
}

// The value of the series written exactly as `series` ("name" or "name{label=\"v\"}").
std::optional<double> Sample(const std::string& exposition, const std::string& series) {
  std::istringstream in(exposition);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 && line[series.size()] == ' ') {
      return std::strtod(line.c_str() + series.size() + 1, nullptr);
    }
  }
  return std::nullopt;
}

std::optional<double> Metric(int port, const std::string& series) {
  HttpGetResult r = Get(port, "/metrics");
  if (!r.ok()) return std::nullopt;
  return Sample(r.body, series);
}

fs::path TempDir() {
  static fs::path dir = [] {
    fs::path d = fs::temp_directory_path() / ("agent-sidecar-test-" + std::to_string(getpid()));
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

std::string Bin(const std::string& name) {
  return std::string(GRAYDEBUG_BIN_DIR) + "/" + name;
}

// The demo's leaky Go service on a free loopback port.
struct LeakyApp {
  std::unique_ptr<Child> child;
  int port = 0;

  LeakyApp() {
    static int n = 0;
    child = Child::Spawn({Bin("leaky-app"), "--listen", "127.0.0.1:0"},
                         (TempDir() / ("leaky-" + std::to_string(++n) + ".log")).string());
    REQUIRE(child != nullptr);
    port = PortPrinted(*child, LeakyAppServing());
    REQUIRE_MESSAGE(port != 0, child->Output());
    REQUIRE_MESSAGE(Eventually([&] { return Get(port, "/healthz").ok(); }, 30s), child->Output());
  }
  int pid() const { return child->pid(); }
  std::string ExpvarUrl() const { return Local(port, "/debug/vars"); }
  bool Serves() const {
    HttpGetResult r = HttpGet(Local(port, "/order"), 10s);
    return r.ok() && r.body.find(" ok") != std::string::npos;
  }
};

// A "dlv" that accepts every connection and never answers, counting connections.
struct SilentDlv {
  int fd = -1, port = 0;
  std::atomic<int> accepted{0};
  std::thread thread;

  SilentDlv() {
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
    REQUIRE(listen(fd, 256) == 0);
    socklen_t len = sizeof(a);
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    thread = std::thread([this] {
      std::vector<int> open;
      for (;;) {
        int c = accept(fd, nullptr, nullptr);
        if (c < 0) break;
        ++accepted;
        open.push_back(c);  // read nothing, answer nothing, close nothing
      }
      for (int c : open) close(c);
    });
  }
  ~SilentDlv() {
    shutdown(fd, SHUT_RDWR);
    thread.join();
    close(fd);
  }
};

SidecarOptions FastOptions(int target_pid) {
  SidecarOptions o;
  o.listen = "127.0.0.1:0";
  o.dlv_addr = "127.0.0.1:" + std::to_string(NothingListens());
  o.target_pid = target_pid;
  o.sample_interval = 200ms;
  o.probe_timeout = 2s;
  o.dlv_probe_interval = 0ms;  // only /probe/dlv probes: the tests count dlv connections
  o.leak.window = 2s;
  o.leak.baseline_window = 20s;
  o.leak.baseline_capacity = 100;  // one rate per 200 ms sample
  return o;
}

std::unique_ptr<Sidecar> StartSidecar(const SidecarOptions& o) {
  Logs();
  std::string error;
  auto sidecar = Sidecar::Start(o, &error);
  REQUIRE_MESSAGE(sidecar != nullptr, error);
  return sidecar;
}

json ProbeJson(const HttpGetResult& r) {
  json j = json::parse(r.body, nullptr, false);
  REQUIRE_MESSAGE(j.is_object(), r.body);
  return j;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// VmRSS of `pid` in bytes, 0 when unreadable.
uint64_t VmRss(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10) * 1024;
  }
  return 0;
}

}  // namespace

TEST_CASE("agent expvar: URLs it accepts, memstats parsing, the real app's /debug/vars, bounded reads") {
  using graydebug::ValidateHttpUrl;
  using graydebug::agent::ParseExpvarHeap;
  CHECK(ValidateHttpUrl("http://127.0.0.1:8080/debug/vars") == "");
  CHECK(ValidateHttpUrl("http://[::1]:8080/debug/vars") == "");
  CHECK(ValidateHttpUrl("http://localhost/debug/vars") == "");
  CHECK(ValidateHttpUrl("https://127.0.0.1:8080/debug/vars") != "");
  CHECK(ValidateHttpUrl("http://:8080/x") != "");
  CHECK(ValidateHttpUrl("http://127.0.0.1:99999/x") != "");
  CHECK(ValidateHttpUrl("http://127.0.0.1:80/a b") != "");
  CHECK(ValidateHttpUrl("http://u:p@127.0.0.1/") != "");

  std::string error;
  auto heap = ParseExpvarHeap(R"({"cmdline":["x"],"memstats":{"HeapInuse":4096,"HeapAlloc":1234}})", &error);
  REQUIRE(heap);
  CHECK(*heap->heap_inuse == 4096);
  CHECK(*heap->heap_alloc == 1234);
  CHECK_FALSE(ParseExpvarHeap("not json", &error));
  CHECK_FALSE(ParseExpvarHeap(R"({"memstats":{"HeapInuse":-1}})", &error));
  CHECK_FALSE(ParseExpvarHeap(R"({"memstats":[]})", &error));
  CHECK_FALSE(ParseExpvarHeap(R"([1,2])", &error));

  LeakyApp app;
  HttpGetResult vars = HttpGet(app.ExpvarUrl(), 10s);
  REQUIRE_MESSAGE(vars.ok(), vars.error);
  CHECK(ParseExpvarHeap(vars.body, &error));
  CHECK(HttpGet(Local(app.port, "/nope"), 10s).status == 404);
  HttpGetResult capped = HttpGet(app.ExpvarUrl(), 10s, 100);
  CHECK_FALSE(capped.ok());
  CHECK(capped.error.find("larger than 100 bytes") != std::string::npos);

  HttpGetResult refused = HttpGet(Local(NothingListens(), "/"), 10s);
  CHECK(refused.status == 0);
  CHECK(refused.refused);

  SilentDlv silent;  // a server that never answers: the timeout bounds the call
  HttpGetResult hung = HttpGet(Local(silent.port, "/"), 300ms);
  CHECK(hung.status == 0);
  CHECK(hung.timed_out);
}

TEST_CASE("sidecar: gauges of the leaky app; a fast leak is suspected, and cleared when it stops") {
  LeakyApp app;
  SidecarOptions o = FastOptions(app.pid());
  o.expvar_url = app.ExpvarUrl();
  // Reading expvar five times a second makes ~100 KiB/s of garbage in the idle app, which its
  // HeapInuse shows as growth until the next GC: above the default 64 KiB/s floor, far below the
  // 20 MiB/s leak.
  o.leak.floor_bytes_per_second = 1024 * 1024;
  auto sidecar = StartSidecar(o);
  const int port = sidecar->port();

  CHECK(Get(port, "/healthz").body == "ok\n");
  REQUIRE(Eventually([&] {
    HttpGetResult m = Get(port, "/metrics");
    return Sample(m.body, "graydebug_target_rss_bytes") && Sample(m.body, "graydebug_target_heap_inuse_bytes") &&
           Sample(m.body, "graydebug_target_heap_alloc_bytes") &&
           Sample(m.body, "graydebug_target_heap_growth_bytes_per_second") &&
           Sample(m.body, "graydebug_target_leak_suspected");
  }));
  HttpGetResult m = Get(port, "/metrics");
  INFO(m.body);
  CHECK(Sample(m.body, "graydebug_target_up") == 1.0);
  CHECK(*Sample(m.body, "graydebug_target_rss_bytes") > 1e6);
  CHECK(*Sample(m.body, "graydebug_target_heap_inuse_bytes") > 0);
  CHECK(Sample(m.body, "graydebug_target_leak_suspected") == 0.0);
  CHECK(Sample(m.body, "graydebug_agent_expvar_reads_total{result=\"ok\"}") >= 1.0);
  // Never measured, so absent: nobody probed dlv yet.
  CHECK(m.body.find("graydebug_target_dlv_up") == std::string::npos);
  CHECK(m.body.find("graydebug_target_dlv_probe_latency_seconds") == std::string::npos);
  CHECK(Logged("watching target process"));
  CHECK(Logged("\"source\":\"heap_inuse\""));

  REQUIRE(Get(app.port, "/leak?kind=slice&rate=20000").ok());
  bool suspected = Eventually([&] { return Metric(port, "graydebug_target_leak_suspected") == 1.0; });
  std::optional<double> growth = Metric(port, "graydebug_target_heap_growth_bytes_per_second");
  REQUIRE(Get(app.port, "/leak/reset").ok());
  REQUIRE(Get(app.port, "/leak/off").ok());
  REQUIRE(suspected);
  REQUIRE(growth);
  CHECK(*growth > 1024 * 1024);
  CHECK(Logged("memory leak suspected"));

  CHECK(Eventually([&] { return Metric(port, "graydebug_target_leak_suspected") == 0.0; }));
  CHECK(Logged("memory leak suspicion cleared"));
  CHECK(app.Serves());
  sidecar->Stop();
}

TEST_CASE("sidecar: without a target only graydebug_target_up=0 is served, and /healthz still says ok") {
  SidecarOptions o = FastOptions(4194000);  // no such process
  auto sidecar = StartSidecar(o);
  const int port = sidecar->port();
  REQUIRE(Eventually([&] { return Metric(port, "graydebug_target_up") == 0.0; }));
  HttpGetResult m = Get(port, "/metrics");
  CHECK(m.body.find("graydebug_target_rss_bytes") == std::string::npos);
  CHECK(m.body.find("graydebug_target_heap_growth_bytes_per_second") == std::string::npos);
  CHECK(m.body.find("graydebug_target_leak_suspected") == std::string::npos);
  CHECK(Get(port, "/healthz").status == 200);
  CHECK(Logged("no target process"));
}

TEST_CASE("sidecar: the target's expvar failing is logged and the growth rate falls back to RSS") {
  LeakyApp app;
  SidecarOptions o = FastOptions(app.pid());
  o.expvar_url = Local(NothingListens(), "/debug/vars");
  auto sidecar = StartSidecar(o);
  const int port = sidecar->port();
  REQUIRE(Eventually([&] { return Metric(port, "graydebug_target_heap_growth_bytes_per_second").has_value(); }));
  HttpGetResult m = Get(port, "/metrics");
  CHECK(Sample(m.body, "graydebug_target_rss_bytes"));
  CHECK(m.body.find("graydebug_target_heap_inuse_bytes ") == std::string::npos);
  CHECK(Sample(m.body, "graydebug_agent_expvar_reads_total{result=\"error\"}") >= 3.0);
  CHECK(Logged("cannot read the Go heap from expvar"));
  CHECK(Logged("\"source\":\"rss\""));
}

TEST_CASE("sidecar: /probe/dlv with nothing listening answers 502 refused without waiting for the timeout") {
  SidecarOptions o = FastOptions(getpid());
  o.probe_timeout = 3s;
  auto sidecar = StartSidecar(o);
  const int port = sidecar->port();
  HttpGetResult r = Get(port, "/probe/dlv");
  REQUIRE_MESSAGE(r.error.empty(), r.error);
  CHECK(r.status == 502);
  json j = ProbeJson(r);
  CHECK(j["ok"] == false);
  CHECK(j["errorKind"] == "refused");
  CHECK(j["dlvVersion"] == "");
  CHECK(j["error"].get<std::string>().find("refused") != std::string::npos);
  REQUIRE(j["latencySeconds"].is_number());
  CHECK(j["latencySeconds"].get<double>() < 3.0);  // refused, not timed out
  HttpGetResult m = Get(port, "/metrics");
  CHECK(Sample(m.body, "graydebug_target_dlv_up") == 0.0);
  CHECK(Sample(m.body, "graydebug_agent_probes_total{result=\"refused\"}") >= 1.0);
  CHECK(Sample(m.body, "graydebug_target_dlv_probe_latency_seconds"));
  CHECK(Logged("dlv probe failed"));
}

TEST_CASE("sidecar: a dlv that never answers is bounded by the probe timeout; 50 concurrent probes share one call") {
  SilentDlv dlv;
  SidecarOptions o = FastOptions(getpid());
  o.dlv_addr = "127.0.0.1:" + std::to_string(dlv.port);
  o.probe_timeout = 500ms;
  auto sidecar = StartSidecar(o);
  const int port = sidecar->port();

  HttpGetResult r = Get(port, "/probe/dlv");
  REQUIRE_MESSAGE(r.error.empty(), r.error);
  CHECK(r.status == 502);
  json j = ProbeJson(r);
  CHECK(j["errorKind"] == "timeout");
  CHECK(j["latencySeconds"].get<double>() >= 0.4);  // the reply timeout, less poll rounding
  CHECK(j["latencySeconds"].get<double>() < 5.0);
  CHECK(dlv.accepted == 1);

  std::this_thread::sleep_for(300ms);  // past the reuse interval: the next caller probes again
  const int before = dlv.accepted;
  std::vector<HttpGetResult> answers(50);
  std::vector<std::thread> callers;
  callers.reserve(answers.size());
  for (auto& a : answers) callers.emplace_back([&] { a = Get(port, "/probe/dlv"); });
  // The hostile burst does not take the readiness endpoint down.
  HttpGetResult health = Get(port, "/healthz");
  for (auto& t : callers) t.join();
  CHECK(health.status == 200);

  int timeouts = 0, busy = 0;
  for (const auto& a : answers) {
    REQUIRE_MESSAGE(a.error.empty(), a.error);
    json aj = ProbeJson(a);
    if (a.status == 502) {
      CHECK(aj["errorKind"] == "timeout");
      ++timeouts;
    } else {
      CHECK(a.status == 503);
      CHECK(aj["errorKind"] == "busy");
      ++busy;
    }
  }
  CHECK(timeouts >= 1);
  CHECK(timeouts + busy == 50);
  MESSAGE("50 concurrent probes: ", timeouts, " timeouts (probed, shared or cached), ", busy, " busy; dlv saw ",
          dlv.accepted - before, " connection(s)");
  CHECK(dlv.accepted - before >= 1);
  CHECK(dlv.accepted - before <= 3);
  HttpGetResult m = Get(port, "/metrics");
  CHECK(Sample(m.body, "graydebug_target_dlv_up") == 0.0);
  CHECK(Sample(m.body, "graydebug_agent_probes_total{result=\"timeout\"}") == double(dlv.accepted));
  CHECK(Sample(m.body, "graydebug_agent_probe_requests_total{answer=\"busy\"}") == double(busy));
  sidecar->Stop();
}

TEST_CASE("sidecar: /probe/dlv against the real dlv attached to the leaky app") {
  std::string dlv_path = Trim(Run({std::string(GRAYDEBUG_SOURCE_DIR) + "/hack/tools/bin-dir", "dlv"}).out) + "/dlv";
  REQUIRE_MESSAGE(fs::exists(dlv_path), "the pinned dlv is missing (hack/tools/build.sh dlv): ", dlv_path);
  LeakyApp app;
  auto dlv = Child::Spawn({dlv_path, "attach", std::to_string(app.pid()), "--headless", "--api-version=2",
                           "--accept-multiclient", "--continue", "--only-same-user=false", "--listen=127.0.0.1:0"},
                          (TempDir() / "dlv.log").string());
  REQUIRE(dlv != nullptr);
  const int dlv_port = PortPrinted(*dlv, DlvListening());
  REQUIRE_MESSAGE(dlv_port != 0, dlv->Output());

  SidecarOptions o = FastOptions(app.pid());
  o.dlv_addr = "127.0.0.1:" + std::to_string(dlv_port);
  o.expvar_url = app.ExpvarUrl();
  o.probe_timeout = 5s;
  auto sidecar = StartSidecar(o);
  const int port = sidecar->port();

  HttpGetResult r;
  REQUIRE_MESSAGE(Eventually([&] {
                    r = Get(port, "/probe/dlv");
                    return r.status == 200;
                  }),
                  r.body, dlv->Output());
  json j = ProbeJson(r);
  CHECK(j["ok"] == true);
  CHECK_FALSE(j["dlvVersion"].get<std::string>().empty());
  CHECK(j["error"] == "");
  CHECK_FALSE(j.contains("errorKind"));
  CHECK(j["latencySeconds"].get<double>() > 0);
  MESSAGE("dlv version ", j["dlvVersion"].get<std::string>(), ", probe latency ", j["latencySeconds"].get<double>(),
          " s");
  CHECK(app.Serves());  // dlv attached with --continue: the app keeps serving

  // Probes keep the app running (several rounds, past the reuse interval).
  for (int i = 0; i < 5; ++i) {
    std::this_thread::sleep_for(150ms);
    CHECK(Get(port, "/probe/dlv").status == 200);
    CHECK(app.Serves());
  }
  HttpGetResult m = Get(port, "/metrics");
  CHECK(Sample(m.body, "graydebug_target_dlv_up") == 1.0);
  CHECK(Sample(m.body, "graydebug_agent_probes_total{result=\"ok\"}") >= 1.0);
  CHECK(Sample(m.body, "graydebug_target_rss_bytes"));  // /proc still readable while ptraced
  CHECK(Logged("dlv answers"));

  dlv->Signal(SIGTERM);
  if (dlv->Wait(20s) == -2) dlv->Signal(SIGKILL);
  dlv->Wait(10s);
  CHECK(Eventually([&] { return app.Serves(); }, 30s));  // and after dlv is gone
  sidecar->Stop();
}

TEST_CASE("graydebug-agent binary: serves a scraped target, stays small, stops on SIGTERM with exit 0") {
  LeakyApp app;
  auto agent = Child::Spawn({Bin("graydebug-agent"), "--listen", "127.0.0.1:0", "--target-pid",
                             std::to_string(app.pid()), "--expvar-url", app.ExpvarUrl(), "--sample-interval", "200ms",
                             "--dlv-addr", "127.0.0.1:" + std::to_string(NothingListens()), "--leak-window", "2s"},
                            (TempDir() / "agent.log").string());
  REQUIRE(agent != nullptr);
  const int port = PortPrinted(*agent, AgentServing());
  REQUIRE_MESSAGE(port != 0, agent->Output());
  REQUIRE_MESSAGE(Eventually([&] { return Get(port, "/healthz").status == 200; }, 30s), agent->Output());
  REQUIRE_MESSAGE(Eventually([&] { return Metric(port, "graydebug_target_heap_growth_bytes_per_second").has_value(); }),
                  agent->Output());

  // Scraped like Prometheus would, only much faster, with probes in between.
  uint64_t max_rss = 0;
  for (int i = 0; i < 200; ++i) {
    CHECK(Get(port, "/metrics").status == 200);
    if (i % 10 == 0) CHECK(Get(port, "/probe/dlv").status == 502);
    max_rss = std::max(max_rss, VmRss(agent->pid()));
  }
  MESSAGE("graydebug-agent VmRSS while scraped: ", max_rss / 1024, " KiB (peak over 200 scrapes)");
  CHECK(max_rss > 0);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // A sanitizer build (make test-asan/test-tsan) adds shadow memory and quarantine to the agent:
  // the container's 64 MiB limit says nothing there, only that it stays bounded.
  CHECK(max_rss < 512u * 1024 * 1024);
#else
  CHECK(max_rss < 64u * 1024 * 1024);
#endif

  agent->Signal(SIGTERM);
  CHECK(agent->Wait(30s) == 0);
  CHECK(agent->Output().find("\"msg\":\"stopped\"") != std::string::npos);

  auto bad = Run({Bin("graydebug-agent"), "--expvar-url", "ftp://127.0.0.1/debug/vars"});
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("--expvar-url") != std::string::npos);
}

TEST_CASE("sidecar: a dlv started without --only-same-user=false fails /probe/dlv: people would be refused") {
  // issue #19: port-forwarded clients come from the container runtime's user, which dlv refuses
  // by default, while a probe from dlv's own user passes. The agent reads dlv's argv instead.
  std::string dlv_path = Trim(Run({std::string(GRAYDEBUG_SOURCE_DIR) + "/hack/tools/bin-dir", "dlv"}).out) + "/dlv";
  REQUIRE_MESSAGE(fs::exists(dlv_path), "the pinned dlv is missing (hack/tools/build.sh dlv): ", dlv_path);
  LeakyApp app;
  // A fixed port: the agent finds dlv's flags by the --listen address in its argv.
  const int dlv_port = graydebug::testing::FreePort();
  auto dlv = Child::Spawn({dlv_path, "attach", std::to_string(app.pid()), "--headless", "--api-version=2",
                           "--accept-multiclient", "--continue", "--listen=127.0.0.1:" + std::to_string(dlv_port)},
                          (TempDir() / "dlv-same-user.log").string());
  REQUIRE(dlv != nullptr);
  REQUIRE(Eventually([&] { return graydebug::dlv::Client("127.0.0.1:" + std::to_string(dlv_port)).GetVersion().ok(); },
                     30s));  // dlv itself answers us: we are its user

  SidecarOptions o = FastOptions(app.pid());
  o.dlv_addr = "127.0.0.1:" + std::to_string(dlv_port);
  o.probe_timeout = 5s;
  auto sidecar = StartSidecar(o);
  HttpGetResult r = Get(sidecar->port(), "/probe/dlv");
  CHECK(r.status == 502);
  json j = ProbeJson(r);
  CHECK(j["ok"] == false);
  CHECK(j["errorKind"] == "same-user-only");
  CHECK_MESSAGE(j["error"].get<std::string>().find("accepts only uid " + std::to_string(getuid()) +
                                                   " (started without --only-same-user=false); port-forwarded "
                                                   "clients will be refused") != std::string::npos,
                j.dump());
  HttpGetResult m = Get(sidecar->port(), "/metrics");
  CHECK(Sample(m.body, "graydebug_target_dlv_up") == 0.0);
  CHECK(Sample(m.body, "graydebug_agent_probes_total{result=\"same-user-only\"}") >= 1.0);
  CHECK(Logged("dlv refuses people"));

  // The readiness probe of dlv-server says the same.
  auto probe = Run({std::string(GRAYDEBUG_BIN_DIR) + "/graydebug-agent", "probe-dlv",
                    "--addr=127.0.0.1:" + std::to_string(dlv_port)});
  CHECK(probe.exit_code == 1);
  CHECK(probe.out.find("port-forwarded clients will be refused") != std::string::npos);

  dlv->Signal(SIGTERM);
  if (dlv->Wait(20s) == -2) dlv->Signal(SIGKILL);
  dlv->Wait(10s);
  sidecar->Stop();
}
