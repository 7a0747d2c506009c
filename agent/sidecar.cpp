// The metrics sidecar's adapters: the sampler thread (target process, /proc, expvar -> LeakDetector
// -> gauges), the dlv probe behind a singleflight gate, and the HTTP endpoints.
#include "agent/sidecar.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "agent/target_finder.h"
#include "graydebug/api/probe.h"
#include "graydebug/dlv_client.h"
#include "graydebug/duration.h"
#include "graydebug/http_get.h"
#include "graydebug/http_server.h"
#include "graydebug/log.h"
#include "graydebug/manager.h"
#include "graydebug/metrics.h"
#include "graydebug/net/address.h"
#include "graydebug/stop_signals.h"

namespace graydebug::agent {
namespace {

using json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

constexpr std::size_t kMaxExpvarBytes = 4u << 20;
// Consecutive failed expvar reads before the growth rate falls back to RSS (one slow answer
// should not restart the baseline).
constexpr int kExpvarFailuresBeforeRss = 3;

// ---- Metrics ----

// Sets a gauge of no labels, creating its series on first use.
void SetGauge(prometheus::Family<prometheus::Gauge>& family, double value) {
  family.Add({}).Set(value);
}

// Removes the series: a value that is not measured any more is absent, not stale.
void DropGauge(prometheus::Family<prometheus::Gauge>& family) {
  if (family.Has({})) family.Remove(&family.Add({}));
}

prometheus::Family<prometheus::Gauge>& RegisterGauge(prometheus::Registry& r, const char* name, const char* help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r);
}

// SPEC §5 graydebug_target_* and the agent's own counters.
struct AgentMetrics {
  explicit AgentMetrics(prometheus::Registry& r)
      : target_up(RegisterGauge(r, "graydebug_target_up", "1 when the target process is found, else 0")),
        rss(RegisterGauge(r, "graydebug_target_rss_bytes", "Resident set size of the target process (VmRSS)")),
        heap_inuse(
            RegisterGauge(r, "graydebug_target_heap_inuse_bytes", "Go memstats.HeapInuse of the target (expvar)")),
        heap_alloc(
            RegisterGauge(r, "graydebug_target_heap_alloc_bytes", "Go memstats.HeapAlloc of the target (expvar)")),
        growth(
            RegisterGauge(r, "graydebug_target_heap_growth_bytes_per_second",
                          "Least-squares growth rate of the target's heap (HeapInuse, else RSS) over the leak window")),
        leak(RegisterGauge(r, "graydebug_target_leak_suspected",
                           "1 while the growth rate stays above baseline mean + 3 sigma and the floor, else 0")),
        dlv_up(RegisterGauge(r, "graydebug_target_dlv_up", "1 when the last probe of the pod's dlv succeeded, else 0")),
        dlv_latency(RegisterGauge(r, "graydebug_target_dlv_probe_latency_seconds", "Duration of the last dlv probe")),
        probes(prometheus::BuildCounter()
                   .Name("graydebug_agent_probes_total")
                   .Help("dlv probes made (one GetVersion round trip each) by result")
                   .Register(r)),
        probe_requests(prometheus::BuildCounter()
                           .Name("graydebug_agent_probe_requests_total")
                           .Help("/probe/dlv answers by how they were made: probed, shared (waited for the "
                                 "in-flight probe), cached (a result younger than the reuse interval), busy (503)")
                           .Register(r)),
        expvar_reads(prometheus::BuildCounter()
                         .Name("graydebug_agent_expvar_reads_total")
                         .Help("Reads of the target's expvar endpoint by result (ok, error)")
                         .Register(r)) {}

  // The target is gone: only graydebug_target_up remains, at 0.
  void TargetLost() {
    SetGauge(target_up, 0);
    for (auto* family : {&rss, &heap_inuse, &heap_alloc, &growth, &leak}) DropGauge(*family);
  }

  prometheus::Family<prometheus::Gauge>& target_up;
  prometheus::Family<prometheus::Gauge>& rss;
  prometheus::Family<prometheus::Gauge>& heap_inuse;
  prometheus::Family<prometheus::Gauge>& heap_alloc;
  prometheus::Family<prometheus::Gauge>& growth;
  prometheus::Family<prometheus::Gauge>& leak;
  prometheus::Family<prometheus::Gauge>& dlv_up;
  prometheus::Family<prometheus::Gauge>& dlv_latency;
  prometheus::Family<prometheus::Counter>& probes;
  prometheus::Family<prometheus::Counter>& probe_requests;
  prometheus::Family<prometheus::Counter>& expvar_reads;
};

// ---- The dlv probe gate ----

// Makes every dlv probe go through one GetVersion at a time: callers that arrive while a probe is
// in flight wait for it and share its result (at most `max_waiters` of them; the rest are told
// "busy" at once, so hostile traffic cannot occupy every handler thread), and a result younger
// than `reuse` is answered again instead of calling dlv.
class DlvProber {
 public:
  enum class How { kProbed, kShared, kCached, kBusy };
  struct Outcome {
    How how = How::kBusy;
    dlv::Reply reply;
    double seconds = 0;  // the probe's own duration (also for failures)
    // Set when dlv answers (or not) but refuses every client of another user, so no person can
    // connect through a port-forward: the probe fails with errorKind "same-user-only".
    std::string same_user_only;
  };

  DlvProber(const SidecarOptions& o, AgentMetrics& metrics)
      : client_(o.dlv_addr, dlv::Options{o.probe_timeout, o.probe_timeout, 1u << 20}),
        proc_root_(o.proc_root),
        dlv_port_(PortOf(o.dlv_addr)),
        reuse_(o.probe_reuse),
        max_waiters_(std::max(o.threads - 2, 0)),
        metrics_(metrics) {}

  // `wait`: false for the sampler, which never waits for someone else's probe.
  Outcome Probe(bool wait) {
    std::unique_lock lock(mu_);
    if (in_flight_) {
      if (!wait || waiters_ >= max_waiters_) return Outcome{};
      ++waiters_;
      const uint64_t generation = generation_;
      // Bounded: the probe in flight ends within its connect + reply timeouts.
      done_.wait(lock, [&] { return generation_ != generation; });
      --waiters_;
      return Outcome{How::kShared, last_.reply, last_.seconds, last_.same_user_only};
    }
    if (has_last_ && SteadyClock::now() - finished_ < reuse_) {
      return Outcome{How::kCached, last_.reply, last_.seconds, last_.same_user_only};
    }
    in_flight_ = true;
    lock.unlock();
    const auto start = SteadyClock::now();
    Outcome out{How::kProbed, client_.GetVersion(), 0, ""};
    const auto end = SteadyClock::now();
    out.seconds = std::chrono::duration<double>(end - start).count();
    // A GetVersion from here proves little about people: the agent may be dlv's own user. What
    // decides whether a port-forwarded client is served is dlv's --only-same-user.
    if (auto d = FindDlvServing(proc_root_, dlv_port_); d && !d->any_user) {
      out.same_user_only = "dlv (pid " + std::to_string(d->pid) + ") accepts only uid " + std::to_string(d->uid) +
                           " (started without --only-same-user=false); port-forwarded clients will be refused";
    }
    Record(out);
    lock.lock();
    const bool was_up = has_last_ && Up(last_);
    const bool first = !has_last_;
    last_ = out;
    has_last_ = true;
    finished_ = end;
    in_flight_ = false;
    ++generation_;
    done_.notify_all();
    lock.unlock();
    if (Up(out) && (first || !was_up)) {
      log::Info("dlv answers", {{"dlv_addr", client_.address()}, {"latency", FormatSeconds(out.seconds)}});
    } else if (!out.same_user_only.empty() && (first || was_up)) {
      log::Error("dlv refuses people: graydebug_target_dlv_up is 0",
                 {{"dlv_addr", client_.address()}, {"error", out.same_user_only}});
    } else if (!Up(out) && (first || was_up)) {
      log::Warn("dlv probe failed; graydebug_target_dlv_up is 0",
                {{"dlv_addr", client_.address()},
                 {"error_kind", dlv::ErrorKindName(out.reply.error_kind)},
                 {"error", out.reply.error}});
    }
    return out;
  }

 private:
  static std::string FormatSeconds(double s) { return std::to_string(s) + "s"; }

  void Record(const Outcome& o) {
    SetGauge(metrics_.dlv_up, Up(o) ? 1 : 0);
    SetGauge(metrics_.dlv_latency, o.seconds);
    const char* result = !o.same_user_only.empty() ? "same-user-only"
                         : o.reply.ok()            ? "ok"
                                                   : dlv::ErrorKindName(o.reply.error_kind);
    metrics_.probes.Add({{"result", result}}).Increment();
  }

  // dlv answered and serves people.
  static bool Up(const Outcome& o) { return o.reply.ok() && o.same_user_only.empty(); }

  static int PortOf(const std::string& address) {
    std::string unused;
    auto hp = net::ParseHostPort(address, &unused);
    return hp ? hp->port : 0;
  }

  const dlv::Client client_;
  const std::string proc_root_;
  const int dlv_port_;
  const std::chrono::milliseconds reuse_;
  const int max_waiters_;
  AgentMetrics& metrics_;

  std::mutex mu_;
  std::condition_variable done_;
  bool in_flight_ = false;
  int waiters_ = 0;
  uint64_t generation_ = 0;
  bool has_last_ = false;
  Outcome last_;
  SteadyClock::time_point finished_;
};

const char* HowName(DlvProber::How how) {
  switch (how) {
    case DlvProber::How::kProbed: return "probed";
    case DlvProber::How::kShared: return "shared";
    case DlvProber::How::kCached: return "cached";
    case DlvProber::How::kBusy: return "busy";
  }
  return "busy";
}

http::Response ProbeResponse(const DlvProber::Outcome& o, int max_waiters) {
  api::ProbeReply body;
  if (o.how == DlvProber::How::kBusy) {
    body.error =
        "a dlv probe is in flight and " + std::to_string(max_waiters) + " callers already wait for it; try again";
    body.error_kind = api::kProbeBusy;
    return {503, "application/json", body.ToJson()};
  }
  body.latency_seconds = o.seconds;
  body.cached = o.how == DlvProber::How::kCached;
  body.shared = o.how == DlvProber::How::kShared;
  if (!o.same_user_only.empty()) {
    body.error = o.same_user_only;
    body.error_kind = api::kProbeSameUserOnly;
    return {502, "application/json", body.ToJson()};
  }
  const dlv::Reply& r = o.reply;
  if (r.ok() && r.result.is_object()) {
    auto v = r.result.find("DelveVersion");
    if (v != r.result.end() && v->is_string()) body.dlv_version = v->get<std::string>();
  }
  body.ok = r.ok();
  body.error = r.error;
  if (!r.ok()) body.error_kind = dlv::ErrorKindName(r.error_kind);
  return {r.ok() ? 200 : 502, "application/json", body.ToJson()};
}

// ---- The sampler ----

enum class Source { kNone, kHeapInuse, kHeapAlloc, kRss };

const char* SourceName(Source s) {
  switch (s) {
    case Source::kNone: return "none";
    case Source::kHeapInuse: return "heap_inuse";
    case Source::kHeapAlloc: return "heap_alloc";
    case Source::kRss: return "rss";
  }
  return "none";
}

// Runs on the sampler thread only: no locking inside.
class Sampler {
 public:
  Sampler(const SidecarOptions& o, AgentMetrics& metrics)
      : options_(o), fs_(o.proc_root), detector_(o.leak), metrics_(metrics) {
    query_.pid = o.target_pid;
    query_.process_name = o.target_process;
    query_.self_pid = static_cast<int>(::getpid());
    query_.self = fs_.CredentialsOf("self");
    query_.accept_uninspectable = true;  // RSS is world-readable even when the executable is not
  }

  void SampleOnce() {
    if (!FindTarget()) return;
    std::optional<uint64_t> rss = fs_.RssBytes(target_->pid);
    if (!rss) {
      Lose("the target process exited");
      return;
    }
    SetGauge(metrics_.target_up, 1);
    SetGauge(metrics_.rss, static_cast<double>(*rss));

    std::optional<GoHeap> heap = ReadExpvar();
    if (heap && heap->heap_inuse) {
      SetGauge(metrics_.heap_inuse, static_cast<double>(*heap->heap_inuse));
    } else {
      DropGauge(metrics_.heap_inuse);
    }
    if (heap && heap->heap_alloc) {
      SetGauge(metrics_.heap_alloc, static_cast<double>(*heap->heap_alloc));
    } else {
      DropGauge(metrics_.heap_alloc);
    }

    Source source = Source::kRss;
    uint64_t bytes = *rss;
    if (heap && heap->heap_inuse) {
      source = Source::kHeapInuse;
      bytes = *heap->heap_inuse;
    } else if (heap && heap->heap_alloc) {
      source = Source::kHeapAlloc;
      bytes = *heap->heap_alloc;
    } else if ((source_ == Source::kHeapInuse || source_ == Source::kHeapAlloc) &&
               expvar_failures_ < kExpvarFailuresBeforeRss) {
      return;  // a missed expvar read: skip this sample rather than restart the baseline on RSS
    }
    if (source != source_) {
      log::Info("growth rate source", {{"source", SourceName(source)}, {"previous", SourceName(source_)}});
      detector_.Reset();
      source_ = source;
    }
    const LeakStatus& s = detector_.Add(SteadyClock::now(), bytes);
    if (s.has_rate) {
      SetGauge(metrics_.growth, s.growth_bytes_per_second);
      SetGauge(metrics_.leak, s.leak_suspected ? 1 : 0);
    } else {
      DropGauge(metrics_.growth);
      DropGauge(metrics_.leak);
    }
    if (s.changed) {
      std::string rate = std::to_string(static_cast<int64_t>(s.growth_bytes_per_second));
      std::string threshold = std::to_string(static_cast<int64_t>(s.threshold_bytes_per_second));
      std::string pid = std::to_string(target_->pid);
      if (s.leak_suspected) {
        log::Warn("memory leak suspected: the target's heap keeps growing",
                  {{"pid", pid},
                   {"source", SourceName(source_)},
                   {"bytes_per_second", rate},
                   {"threshold_bytes_per_second", threshold}});
      } else {
        log::Info("memory leak suspicion cleared",
                  {{"pid", pid}, {"source", SourceName(source_)}, {"bytes_per_second", rate}});
      }
    }
  }

 private:
  // Keeps the current target while it lives (same PID and start time), else looks again.
  bool FindTarget() {
    if (target_ && fs_.Alive(target_->pid, target_->start_ticks, target_->exe)) return true;
    if (target_) Lose("the target process exited or exec'd another program");
    TargetResult r = ChooseTarget(ListProcesses(fs_), query_);
    if (!r.target) {
      if (!target_missing_logged_) {
        log::Warn("no target process; memory gauges are absent until one appears", {{"why", r.why}});
        target_missing_logged_ = true;
      }
      metrics_.TargetLost();
      return false;
    }
    target_ = r.target;
    target_missing_logged_ = false;
    detector_.Reset();
    source_ = Source::kNone;
    expvar_failures_ = 0;
    log::Info("watching target process",
              {{"pid", std::to_string(target_->pid)}, {"comm", target_->comm}, {"exe", target_->exe}, {"why", r.why}});
    return true;
  }

  void Lose(const char* why) {
    if (target_)
      log::Warn("lost the target process; looking for it again", {{"pid", std::to_string(target_->pid)}, {"why", why}});
    target_.reset();
    detector_.Reset();
    source_ = Source::kNone;
    metrics_.TargetLost();
  }

  std::optional<GoHeap> ReadExpvar() {
    if (options_.expvar_url.empty()) return std::nullopt;
    HttpGetResult r = HttpGet(options_.expvar_url, options_.expvar_timeout, kMaxExpvarBytes);
    std::string error = r.error;
    if (error.empty() && r.status != 200) error = "HTTP status " + std::to_string(r.status);
    std::optional<GoHeap> heap;
    if (error.empty()) heap = ParseExpvarHeap(r.body, &error);
    if (heap) {
      metrics_.expvar_reads.Add({{"result", "ok"}}).Increment();
      if (expvar_failures_ >= kExpvarFailuresBeforeRss || !expvar_ever_ok_) {
        log::Info("reading the Go heap from expvar", {{"url", options_.expvar_url}});
      }
      expvar_failures_ = 0;
      expvar_ever_ok_ = true;
      return heap;
    }
    metrics_.expvar_reads.Add({{"result", "error"}}).Increment();
    if (++expvar_failures_ == kExpvarFailuresBeforeRss) {
      log::Warn("cannot read the Go heap from expvar; heap gauges are absent and the growth rate uses RSS",
                {{"url", options_.expvar_url}, {"error", error}});
    } else {
      log::Debug("expvar read failed", {{"url", options_.expvar_url}, {"error", error}});
    }
    return std::nullopt;
  }

  const SidecarOptions& options_;
  ProcFs fs_;
  TargetQuery query_;
  LeakDetector detector_;
  AgentMetrics& metrics_;
  std::optional<ProcessInfo> target_;
  bool target_missing_logged_ = false;
  Source source_ = Source::kNone;
  int expvar_failures_ = 0;
  bool expvar_ever_ok_ = false;
};

}  // namespace

// ---- dlv's users ----

bool DlvServesPort(const std::vector<std::string>& argv, int port, bool* any_user) {
  if (argv.empty() || port <= 0) return false;
  const std::string& exe = argv[0];
  const std::string base = exe.substr(exe.rfind('/') == std::string::npos ? 0 : exe.rfind('/') + 1);
  if (base != "dlv") return false;
  const std::string suffix = ":" + std::to_string(port);
  auto ends = [&](const std::string& v) {
    return v.size() > suffix.size() && v.compare(v.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  bool serves = false;
  *any_user = false;
  for (std::size_t i = 1; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (a == "--") break;
    if ((a.rfind("--listen=", 0) == 0 || a.rfind("-l=", 0) == 0) && ends(a)) serves = true;
    if ((a == "--listen" || a == "-l") && i + 1 < argv.size() && ends(argv[i + 1])) serves = true;
    // pflag booleans: only the "=value" form sets false (strconv.ParseBool's spellings).
    if (a.rfind("--only-same-user=", 0) == 0) {
      std::string v = a.substr(17);
      *any_user = v == "false" || v == "0" || v == "f" || v == "F" || v == "FALSE" || v == "False";
    }
  }
  return serves;
}

std::optional<DlvProcess> FindDlvServing(const std::string& proc_root, int port) {
  ProcFs fs(proc_root);
  for (int pid : fs.Pids()) {
    bool any_user = false;
    if (!DlvServesPort(fs.Cmdline(pid), port, &any_user)) continue;
    return DlvProcess{pid, fs.CredentialsOf(std::to_string(pid)).uid, any_user};
  }
  return std::nullopt;
}

// ---- ParseExpvarHeap ----

std::optional<GoHeap> ParseExpvarHeap(std::string_view body, std::string* error) {
  json doc = json::parse(body.begin(), body.end(), nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    *error = "expvar answer is not a JSON object";
    return std::nullopt;
  }
  auto memstats = doc.find("memstats");
  if (memstats == doc.end() || !memstats->is_object()) {
    *error = "expvar answer has no memstats object";
    return std::nullopt;
  }
  auto number = [&](const char* name) -> std::optional<uint64_t> {
    auto it = memstats->find(name);
    if (it == memstats->end() || !it->is_number_unsigned()) return std::nullopt;
    return it->get<uint64_t>();
  };
  GoHeap heap{number("HeapInuse"), number("HeapAlloc")};
  if (!heap.heap_inuse && !heap.heap_alloc) {
    *error = "expvar memstats has neither HeapInuse nor HeapAlloc";
    return std::nullopt;
  }
  return heap;
}

// ---- Sidecar ----

struct Sidecar::Impl {
  explicit Impl(SidecarOptions o)
      : options(std::move(o)),
        registry(options.registry ? options.registry : std::make_shared<prometheus::Registry>()),
        metrics(*registry),
        prober(options, metrics),
        sampler(options, metrics) {}

  void Loop() {
    auto next_probe = SteadyClock::now();
    std::unique_lock lock(mu);
    while (!stopping) {
      lock.unlock();
      sampler.SampleOnce();
      if (options.dlv_probe_interval.count() > 0 && SteadyClock::now() >= next_probe) {
        prober.Probe(false);
        next_probe = SteadyClock::now() + options.dlv_probe_interval;
      }
      lock.lock();
      wake.wait_for(lock, options.sample_interval, [&] { return stopping; });
    }
  }

  SidecarOptions options;
  std::shared_ptr<prometheus::Registry> registry;
  AgentMetrics metrics;
  DlvProber prober;
  Sampler sampler;
  std::unique_ptr<http::Server> server;
  std::thread thread;
  std::mutex mu;
  std::condition_variable wake;
  bool stopping = false;
  bool stopped = false;
};

std::unique_ptr<Sidecar> Sidecar::Start(SidecarOptions options, std::string* error) {
  if (!options.expvar_url.empty()) {
    if (std::string why = ValidateHttpUrl(options.expvar_url); !why.empty()) {
      *error = "--expvar-url " + options.expvar_url + ": " + why;
      return nullptr;
    }
  }
  options.threads = std::max(options.threads, 3);
  auto impl = std::make_unique<Impl>(std::move(options));
  const SidecarOptions& o = impl->options;

  http::ServerOptions so;
  so.listen = o.listen;
  so.threads = o.threads;
  so.max_body_bytes = 64u << 10;  // nothing here takes a body
  so.drain_timeout = std::max(std::chrono::milliseconds(2000), 2 * o.probe_timeout + std::chrono::milliseconds(500));
  so.name = "agent";
  impl->server = http::Server::Create(so, error);
  if (!impl->server) return nullptr;
  Impl* self = impl.get();
  impl->server->Handle("GET", "/metrics", [self](const http::Request&) {
    return http::Response{200, "text/plain; version=0.0.4; charset=utf-8", metrics::Serialize(*self->registry)};
  });
  impl->server->Handle("GET", "/healthz", [](const http::Request&) {
    return http::Response{200, "text/plain", "ok\n"};
  });
  impl->server->Handle("GET", api::kProbePath, [self](const http::Request& req) {
    DlvProber::Outcome o = self->prober.Probe(true);
    self->metrics.probe_requests.Add({{"answer", HowName(o.how)}}).Increment();
    if (o.how == DlvProber::How::kBusy) {
      log::Debug("/probe/dlv answered busy: a probe is in flight and its waiters are full",
                 {{"remote", req.remote_address}});
    }
    return ProbeResponse(o, std::max(self->options.threads - 2, 0));
  });
  if (std::string why = impl->server->Start(); !why.empty()) {
    *error = "cannot serve on " + o.listen + ": " + why;
    return nullptr;
  }
  impl->thread = std::thread([self] { self->Loop(); });
  log::Info("agent serving", {{"listen", o.listen},
                              {"port", std::to_string(impl->server->port())},
                              {"dlv_addr", o.dlv_addr},
                              {"expvar_url", o.expvar_url.empty() ? "(none: RSS only)" : o.expvar_url},
                              {"sample_interval", FormatDuration(o.sample_interval)},
                              {"leak_window", FormatDuration(o.leak.window)}});
  return std::unique_ptr<Sidecar>(new Sidecar(std::move(impl)));
}

Sidecar::Sidecar(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Sidecar::~Sidecar() {
  Stop();
}

int Sidecar::port() const {
  return impl_->server->port();
}

void Sidecar::Stop() {
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->stopped) return;
    impl_->stopped = true;
  }
  impl_->server->Stop();
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->wake.notify_all();
  if (impl_->thread.joinable()) impl_->thread.join();
}

int RunSidecar(const SidecarOptions& options) {
  // The stop signals are taken by the manager; block them before any thread starts.
  BlockStopSignals();
  manager::Options mo;
  manager::Manager mgr(mo);
  SidecarOptions o = options;
  o.registry = mgr.registry();
  std::unique_ptr<Sidecar> sidecar;
  mgr.Add({"sidecar",
           [&](const std::atomic<bool>&) {
             std::string error;
             sidecar = Sidecar::Start(o, &error);
             return sidecar ? std::string() : "cannot start the agent: " + error;
           },
           [&] {
             log::Info("finishing in-flight requests");
             sidecar->Stop();
           }});
  return mgr.Run();
}

}  // namespace graydebug::agent
