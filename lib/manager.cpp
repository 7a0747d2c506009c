#include "graydebug/manager.h"

#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <condition_variable>
#include <cstdlib>
#include <exception>

#include "graydebug/http_server.h"
#include "graydebug/log.h"
#include "graydebug/memory.h"
#include "graydebug/metrics.h"
#include "graydebug/stop_signals.h"

namespace graydebug::manager {

namespace {

bool Verbose(const std::string& query) {
  return query == "verbose" || query.starts_with("verbose=") || query.find("&verbose") != std::string::npos;
}

}  // namespace

Runnable Every(std::string name, std::chrono::milliseconds interval, std::function<void()> tick) {
  struct Loop {
    std::mutex mu;
    std::condition_variable cv;
    bool stop = false;
    std::thread thread;
  };
  auto loop = std::make_shared<Loop>();
  Runnable r;
  r.name = std::move(name);
  r.start = [loop, interval, tick = std::move(tick)](const std::atomic<bool>&) {
    loop->thread = std::thread([loop, interval, tick] {
      std::unique_lock lock(loop->mu);
      while (!loop->cv.wait_for(lock, interval, [&] { return loop->stop; })) {
        lock.unlock();
        tick();
        lock.lock();
      }
    });
    return std::string();
  };
  r.stop = [loop] {
    {
      std::lock_guard lock(loop->mu);
      loop->stop = true;
    }
    loop->cv.notify_all();
    if (loop->thread.joinable()) loop->thread.join();
  };
  return r;
}

struct Manager::UpGauges {
  explicit UpGauges(prometheus::Registry& registry)
      : family(prometheus::BuildGauge()
                   .Name("graydebug_manager_runnable_up")
                   .Help("1 while the manager's runnable runs (started, not yet stopped), else 0")
                   .Register(registry)) {}
  prometheus::Family<prometheus::Gauge>& family;
};

Manager::Manager(Options options) : options_(std::move(options)), registry_(std::make_shared<prometheus::Registry>()) {
  KeepLargeAllocationsMapped();
  telemetry_ = std::shared_ptr<void>(metrics::InstallTelemetry(registry_));
  up_ = std::make_shared<UpGauges>(*registry_);
  if (!options_.fatal) {
    options_.fatal = [](const std::string& why) {
      log::Error(why);
      std::_Exit(1);
    };
  }
}

Manager::~Manager() {
  if (gate_thread_.joinable()) gate_thread_.join();
}

void Manager::Add(Runnable runnable) {
  SetUp(runnable.name, false);
  runnables_.push_back(std::move(runnable));
}

void Manager::AddLeaderGated(Runnable runnable) {
  SetUp(runnable.name, false);
  gated_.push_back(std::move(runnable));
}

void Manager::SetUp(const std::string& name, bool up) {
  up_->family.Add({{"runnable", name}}).Set(up ? 1 : 0);
}

void Manager::SetElection(Election election) {
  election_ = std::make_unique<Election>(std::move(election));
}

void Manager::AddHealthzCheck(std::string name, Check check) {
  healthz_.push_back({std::move(name), std::move(check)});
}

void Manager::AddReadyzCheck(std::string name, Check check) {
  readyz_.push_back({std::move(name), std::move(check)});
}

void Manager::ServeHealthOn(http::Server& server) {
  health_on_.push_back(&server);
}

Manager::Answer Manager::Health(bool readyz, const std::string& only, bool verbose) const {
  const char* what = readyz ? "readyz" : "healthz";
  std::string lines;
  bool failed = false, found = only.empty();
  if (readyz && stopping_ && only.empty()) {
    failed = true;
    lines += "[-]shutdown failed: shutting down\n";
  }
  for (const NamedCheck& c : readyz ? readyz_ : healthz_) {
    if (!only.empty() && c.name != only) continue;
    found = true;
    std::string why;
    try {
      why = c.check ? c.check() : "";
    } catch (const std::exception& e) {
      why = std::string("the check threw: ") + e.what();
    }
    if (why.empty()) {
      lines += "[+]" + c.name + " ok\n";
    } else {
      failed = true;
      lines += "[-]" + c.name + " failed: " + why + "\n";
    }
  }
  if (!found) return {404, "no " + std::string(what) + " check named \"" + only + "\"\n"};
  if (failed) return {503, lines + what + " check failed\n"};
  if (verbose) return {200, lines + what + " check passed\n"};
  std::string role;
  if (readyz && election_ && only.empty()) role = leading_ ? " (leader)" : " (standby)";
  return {200, "ok" + role + "\n"};
}

void Manager::InstallHealth(http::Server& server) {
  auto serve = [this](bool readyz, std::string only) {
    return [this, readyz, only](const http::Request& req) {
      Answer a = Health(readyz, only, Verbose(req.query));
      return http::Response{a.status, "text/plain", std::move(a.body)};
    };
  };
  server.Handle("GET", "/healthz", serve(false, ""));
  server.Handle("GET", "/readyz", serve(true, ""));
  for (const NamedCheck& c : healthz_) server.Handle("GET", "/healthz/" + c.name, serve(false, c.name));
  for (const NamedCheck& c : readyz_) server.Handle("GET", "/readyz/" + c.name, serve(true, c.name));
}

std::string Manager::StartAll(std::vector<Runnable>& list, std::size_t* started) {
  for (; *started < list.size(); ++*started) {
    Runnable& r = list[*started];
    std::string error;
    try {
      error = r.start ? r.start(stopping_) : "";
    } catch (const std::exception& e) {
      error = std::string("threw: ") + e.what();
    }
    if (!error.empty()) return stopping_ ? "stopping" : r.name + ": " + error;
    SetUp(r.name, true);
    if (stopping_) {
      ++*started;  // it did start: it is stopped with the others
      return "stopping";
    }
  }
  return "";
}

void Manager::StopAll(std::vector<Runnable>& list, std::size_t* started) {
  while (*started > 0) {
    Runnable& r = list[--*started];
    if (r.stop) r.stop();
    SetUp(r.name, false);
  }
}

void Manager::StartLeading() {
  std::string error = StartAll(gated_, &gated_started_);
  if (!error.empty() && !stopping_) options_.fatal("cannot start the leader's work: " + error);
}

int Manager::Run(std::function<std::string()> wait_for_stop) {
  if (!wait_for_stop) wait_for_stop = [] { return std::string(WaitForStopSignal()); };
  std::string error;
  std::unique_ptr<http::Server> metrics_server, health_server;
  auto stop_servers = [&] {
    if (health_server) health_server->Stop();
    if (metrics_server) metrics_server->Stop();
  };
  if (!options_.metrics_addr.empty()) {
    metrics_server = metrics::StartMetricsServer(options_.metrics_addr, registry_, &error);
    if (!metrics_server) {
      log::Error("cannot serve metrics", {{"error", error}});
      return 1;
    }
    metrics_port_ = metrics_server->port();
  }
  if (!options_.health_addr.empty()) {
    http::ServerOptions ho;
    ho.listen = options_.health_addr;
    ho.max_body_bytes = 64 << 10;  // nothing here takes a body
    ho.name = "health";
    health_server = http::Server::Create(ho, &error);
    if (health_server) {
      InstallHealth(*health_server);
      error = health_server->Start();
    }
    if (!health_server || !error.empty()) {
      log::Error("cannot serve health checks", {{"error", error}});
      health_server.reset();
      stop_servers();
      return 1;
    }
    health_port_ = health_server->port();
  }
  for (http::Server* s : health_on_) InstallHealth(*s);

  if (error = StartAll(runnables_, &runnables_started_); !error.empty()) {
    log::Error("cannot start", {{"error", error}});
    StopAll(runnables_, &runnables_started_);
    stop_servers();
    return 1;
  }
  std::thread election;
  auto start_gated = [this] {
    std::lock_guard lock(gate_mu_);
    if (stopping_ || gate_thread_.joinable()) return;
    gate_thread_ = std::thread([this] { StartLeading(); });
  };
  if (election_) {
    auto started = [this, start_gated] {
      log::Info("leading: starting the leader-gated runnables");
      leading_ = true;
      start_gated();  // on a thread of its own: the elector goes on renewing while it starts
    };
    auto stopped = [this] {
      leading_ = false;
      if (!stopping_) options_.fatal("leadership lost; exiting so a fresh replica stands by");
    };
    election = std::thread([this, started, stopped] { election_->run(started, stopped); });
  } else {
    leading_ = true;
    start_gated();
  }

  std::string why = wait_for_stop();
  {
    std::lock_guard lock(gate_mu_);
    stopping_ = true;  // /readyz fails from here on; leader-gated starts give up
  }
  if (options_.shutdown_delay.count() > 0) {
    log::Info("shutting down: not ready, still serving for the shutdown delay",
              {{"signal", why}, {"shutdown_delay", std::to_string(options_.shutdown_delay.count()) + "ms"}});
    std::this_thread::sleep_for(options_.shutdown_delay);
  }
  log::Info("shutting down", {{"signal", why}});
  if (gate_thread_.joinable()) gate_thread_.join();
  StopAll(gated_, &gated_started_);
  if (election.joinable()) {
    election_->stop();  // releases the lease, so a successor takes over at once
    election.join();
  }
  leading_ = false;
  StopAll(runnables_, &runnables_started_);
  stop_servers();
  log::Info("stopped");
  return 0;
}

}  // namespace graydebug::manager
