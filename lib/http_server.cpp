// http::Server's public face: options checked, the listener bound, the I/O and handler threads
// started, and the graceful Stop. The shared state is in http/server_core.h, one connection's
// state machine in http/connection.cpp, the TLS pair in http/tls_source.cpp and the address in
// http/listen_address.cpp.
#include "graydebug/http_server.h"

#include <utility>  // must precede boost/asio with C++20 (Boost 1.74)

#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <future>
#include <system_error>
#include <thread>

#include "graydebug/log.h"
#include "http/listen_address.h"
#include "http/server_core.h"
#include "http/tls_source.h"

namespace graydebug::http {

using detail::Core;
using detail::ListenAddress;
using detail::ParseListen;
using detail::PortRegistry;
using detail::Resolve;
using detail::TlsSource;
namespace net = boost::asio;

namespace {

// Handler threads run as SCHED_BATCH (docs/decisions.md, issue #18): a woken handler thread does
// not preempt the thread that woke it. The I/O thread (normal policy) then goes on reading and
// dispatching every request that is ready before a handler runs, and the handler answers them in
// one run: 2 KB reviews at 16 connections on one core, +16 % (fewer thread switches per review). A batch thread still
// runs at once on an idle core; on a busy one it waits at most for the running thread's slice. Lowering one's own
// policy needs no privilege; if a seccomp profile refuses it, the thread stays as it was.
void RunHandlersAsBatch(const std::string& server) {
  sched_param param{};
  if (sched_setscheduler(0, SCHED_BATCH, &param) != 0) {
    log::Debug("handler thread keeps its scheduling policy",
               {{"server", server}, {"error", std::error_code(errno, std::system_category()).message()}});
  }
}

}  // namespace

struct Server::Impl {
  std::shared_ptr<Core> core;
  ListenAddress address;
  std::thread io_thread;
  std::future<void> io_done;
  std::vector<std::thread> workers;
  std::thread poller;
  std::mutex poll_mu;
  std::condition_variable poll_cv;
  bool poll_stop = false;
  std::atomic<int> port{0};
  int claimed = 0;  // our port in PortRegistry, 0 when none
  bool started = false;
  bool stopped = false;
  std::mutex lifecycle_mu;  // Start and Stop
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() {
  Stop();
}

std::unique_ptr<Server> Server::Create(ServerOptions options, std::string* error) {
  auto address = ParseListen(options.listen, error);
  if (!address) return nullptr;
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    *error = "TLS needs both a certificate file and a key file";
    return nullptr;
  }
  options.threads = std::max(options.threads, 2);
  options.reload_interval = std::max(options.reload_interval, std::chrono::milliseconds(10));
  options.drain_timeout = std::max(options.drain_timeout, std::chrono::milliseconds(0));
  options.idle_timeout = std::max(options.idle_timeout, std::chrono::milliseconds(100));
  options.request_timeout = std::max(options.request_timeout, std::chrono::milliseconds(100));
  options.max_connections = std::max(options.max_connections, 1);
  options.max_buffered_bytes = std::max(options.max_buffered_bytes, options.max_body_bytes);

  auto impl = std::make_unique<Impl>();
  impl->address = *address;
  std::unique_ptr<TlsSource> source;
  if (!options.tls_cert_file.empty()) {
    source = std::make_unique<TlsSource>(options.tls_cert_file, options.tls_key_file, options.name);
    if (std::string why = source->Load(); !why.empty()) {
      *error = why;
      return nullptr;
    }
  }
  impl->core = std::make_shared<Core>(std::move(options));
  impl->core->set_tls(std::move(source));
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

void Server::Handle(std::string method, std::string path, Handler handler) {
  std::lock_guard lock(impl_->lifecycle_mu);
  if (impl_->started) {
    log::Error("route added after Start; ignored", {{"server", impl_->core->options().name}, {"path", path}});
    return;
  }
  impl_->core->routes()[std::move(path)][std::move(method)] = std::move(handler);
}

std::string Server::Start() {
  std::lock_guard lock(impl_->lifecycle_mu);
  if (impl_->started) return "the server was already started";
  const ServerOptions& options = impl_->core->options();
  ListenAddress address = impl_->address;
  std::string error;
  auto endpoint = Resolve(address, &error);
  if (!endpoint) return error;
  if (address.port != 0 && !PortRegistry::Get().Claim(address.port)) {
    return "cannot listen on " + address.Text() + ": port already in use by another server of this process";
  }
  int port = 0;
  if (std::string why = impl_->core->Listen(*endpoint, &port); !why.empty()) {
    if (address.port != 0) PortRegistry::Get().Release(address.port);
    return "cannot listen on " + address.Text() + ": " + why;
  }
  if (address.port == 0) PortRegistry::Get().Claim(port);  // the kernel's pick: free by definition
  impl_->claimed = port;
  address.port = port;
  impl_->port = port;
  impl_->started = true;
  for (int i = 0; i < options.threads; ++i) {
    impl_->core->AddWorker();
    impl_->workers.emplace_back([core = impl_->core] {
      RunHandlersAsBatch(core->options().name);
      core->WorkerLoop();
    });
  }
  std::packaged_task<void()> io([core = impl_->core] { core->Run(); });
  impl_->io_done = io.get_future();
  impl_->io_thread = std::thread(std::move(io));
  if (impl_->core->tls() != nullptr) {
    impl_->poller = std::thread([impl = impl_.get(), core = impl_->core] {
      std::unique_lock lock(impl->poll_mu);
      while (!impl->poll_cv.wait_for(lock, core->options().reload_interval, [&] { return impl->poll_stop; })) {
        lock.unlock();
        core->tls()->Poll();
        lock.lock();
      }
    });
  }
  log::Info("http server listening",
            {{"server", options.name}, {"address", address.Text()}, {"tls", impl_->core->tls() ? "true" : "false"}});
  return "";
}

int Server::port() const {
  return impl_->port.load();
}

bool Server::TlsLoaded() const {
  return impl_->core->tls() != nullptr && impl_->core->tls()->Current() != nullptr;
}

std::uint64_t Server::cert_reloads() const {
  return impl_->core->tls() != nullptr ? impl_->core->tls()->reloads() : 0;
}

void Server::Stop() {
  std::lock_guard lock(impl_->lifecycle_mu);
  if (!impl_->started || impl_->stopped) return;
  impl_->stopped = true;
  const std::shared_ptr<Core>& core = impl_->core;
  const ServerOptions& options = core->options();
  const auto deadline = std::chrono::steady_clock::now() + options.drain_timeout;
  // Drain: no new connections, idle ones closed, answers from now on say "Connection: close";
  // the requests in flight get until drain_timeout to be answered.
  core->StartDraining();
  net::post(core->io(), [core] { core->StopAccepting(); });
  if (!core->WaitIdle(deadline)) {
    log::Warn("requests still in flight at the drain deadline; closing their connections",
              {{"server", options.name}, {"in_flight", std::to_string(core->in_flight())}});
  }
  net::post(core->io(), [core] { core->CloseAll(); });
  // With every connection closed the I/O thread runs out of work and returns; a bound anyway.
  if (impl_->io_done.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
    log::Warn("http server I/O did not wind down; stopping it", {{"server", options.name}});
    core->io().stop();
  }
  impl_->io_thread.join();
  core->FinishIo();
  if (impl_->claimed != 0) PortRegistry::Get().Release(impl_->claimed);
  if (impl_->poller.joinable()) {
    {
      std::lock_guard poll_lock(impl_->poll_mu);
      impl_->poll_stop = true;
    }
    impl_->poll_cv.notify_all();
    impl_->poller.join();
  }
  core->StopWorkers();
  // A handler that never returns must not hang shutdown: its thread is left behind, holding
  // only the shared state.
  const bool gone =
      core->WaitWorkersGone(std::max(deadline, std::chrono::steady_clock::now()) + std::chrono::seconds(1));
  for (auto& t : impl_->workers) {
    if (gone) {
      t.join();
    } else {
      t.detach();
    }
  }
  if (!gone) log::Warn("handlers still running after shutdown; abandoned", {{"server", options.name}});
  impl_->workers.clear();
  log::Info("http server stopped", {{"server", options.name}});
}

}  // namespace graydebug::http
