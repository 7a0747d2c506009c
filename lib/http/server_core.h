#pragma once
// What the I/O thread, the handler threads and Stop of one http::Server share (internal to lib/):
// the acceptor and its connections, the handler queue, the in-flight and buffered-bytes counts.
// The connections themselves are in connection.cpp, the public face in http_server.cpp.

#include <utility>  // must precede boost/asio with C++20 (Boost 1.74)

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "graydebug/http_server.h"
#include "graydebug/log.h"
#include "http/tls_source.h"

namespace graydebug::http::detail {

namespace net = boost::asio;
using tcp = net::ip::tcp;
// Sockets carry the I/O thread's own executor type, not the type-erased any_io_executor: every
// asynchronous operation copies its executor to track work, and with any_io_executor each copy
// went through a type-erased call (3 % of the webhook's core at 16 connections).
using Executor = net::io_context::executor_type;
using Socket = net::basic_stream_socket<tcp, Executor>;
using Acceptor = net::basic_socket_acceptor<tcp, Executor>;

// ---- The server's shared state ----------------------------------------------------------------

// What Stop needs of a connection. Both run on the I/O thread.
class ConnectionBase {
 public:
  virtual ~ConnectionBase() = default;
  // Closes the connection when it is between requests; otherwise its answer will say "close".
  virtual void Drain() = 0;
  // Closes it now; pending operations end with an error and start nothing new.
  virtual void Close() = 0;
};

// Everything the I/O thread, the handler threads and Stop share. Held by shared_ptr from every
// connection and pending operation, so a late completion after Stop finds it alive.
class Core : public std::enable_shared_from_this<Core> {
 public:
  explicit Core(ServerOptions options) : options_(std::move(options)) {}

  const ServerOptions& options() const { return options_; }
  std::map<std::string, std::map<std::string, Handler>>& routes() { return routes_; }
  TlsSource* tls() const { return tls_.get(); }
  void set_tls(std::unique_ptr<TlsSource> tls) { tls_ = std::move(tls); }
  net::io_context& io() { return io_; }
  bool draining() const { return draining_; }
  void StartDraining() { draining_ = true; }

  // Binds and listens (the calling thread, before the I/O thread runs). "" or why not.
  std::string Listen(const tcp::endpoint& endpoint, int* port) {
    boost::system::error_code ec;
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec && endpoint.address().is_v6()) acceptor_.set_option(net::ip::v6_only(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      boost::system::error_code ignored;
      acceptor_.close(ignored);
      return ec.message();
    }
    *port = acceptor_.local_endpoint(ec).port();
    return "";
  }

  // The I/O thread's body: accept, serve, until Stop closed everything.
  void Run() {
    work_.emplace(io_.get_executor());
    Accept();
    while (true) {
      try {
        io_.run();
        break;
      } catch (const std::exception& e) {
        log::Error("http server I/O thread caught an exception; continuing",
                   {{"server", options_.name}, {"error", e.what()}});
      }
    }
  }

  // ---- I/O thread only ----
  void Register(ConnectionBase* raw, std::weak_ptr<ConnectionBase> conn) { connections_[raw] = std::move(conn); }
  void Unregister(ConnectionBase* raw) { connections_.erase(raw); }
  // Stop, first step: no new connections (the kernel refuses them), idle ones closed.
  void StopAccepting() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    retry_.cancel();
    for (auto& c : Live()) c->Drain();
  }
  // Stop, last step: every connection closed; the I/O thread then runs out of work.
  void CloseAll() {
    for (auto& c : Live()) c->Close();
    connections_.clear();
    work_.reset();
  }

  // ---- handler threads and Stop ----
  // Queues a handler run; false when the server is stopping.
  // A handler thread is woken only when one waits, and after the lock is let go: a busy one takes
  // the job when it is done with its own, and a woken one does not run into the lock held here.
  bool Dispatch(std::function<void()> job) {
    bool wake = false;
    {
      std::lock_guard lock(mu_);
      if (stopping_) return false;
      jobs_.push_back(std::move(job));
      wake = waiting_workers_ > 0;
    }
    if (wake) work_cv_.notify_one();
    return true;
  }
  // Handler threads: run queued jobs until Stop and the queue is empty.
  void WorkerLoop() {
    while (true) {
      std::function<void()> job;
      {
        std::unique_lock lock(mu_);
        if (!stopping_ && jobs_.empty()) {
          ++waiting_workers_;
          work_cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
          --waiting_workers_;
        }
        if (stopping_) break;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
    std::lock_guard lock(mu_);
    --live_workers_;
    idle_cv_.notify_all();
  }
  void AddWorker() {
    std::lock_guard lock(mu_);
    ++live_workers_;
  }
  // After CloseAll: jobs still queued belong to closed connections and are dropped (outside the
  // lock: dropping one may end its connection, which takes the lock).
  void StopWorkers() {
    std::deque<std::function<void()>> dropped;
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      dropped.swap(jobs_);
      work_cv_.notify_all();
    }
  }
  // A handler's answer to the I/O thread; dropped once that thread is gone for good (its queue
  // would never run and would keep the connection, and with it this Core, alive).
  void PostToIo(std::function<void()> fn) {
    std::lock_guard lock(post_mu_);
    if (io_finished_) return;
    net::post(io_, std::move(fn));
  }
  // Stop, after the I/O thread ended: completes what is left in its queue here (every connection
  // is closed, so each completion only lets go of its connection).
  void FinishIo() {
    {
      std::lock_guard lock(post_mu_);
      io_finished_ = true;
    }
    io_.restart();
    try {
      io_.poll();
    } catch (...) {
    }
  }
  // Reserves room for a request body of `bytes`; false when the bodies held at once would exceed
  // max_buffered_bytes. Release gives it back.
  bool Reserve(std::uint64_t bytes) {
    std::uint64_t held = buffered_.load();
    do {
      if (held + bytes > options_.max_buffered_bytes) return false;
    } while (!buffered_.compare_exchange_weak(held, held + bytes));
    return true;
  }
  void Release(std::uint64_t bytes) { buffered_ -= bytes; }
  void Begin() {
    std::lock_guard lock(mu_);
    ++in_flight_;
  }
  void End() {
    std::lock_guard lock(mu_);
    if (--in_flight_ == 0) idle_cv_.notify_all();
  }
  // Waits until no request is in flight; false when `deadline` came first.
  bool WaitIdle(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mu_);
    return idle_cv_.wait_until(lock, deadline, [&] { return in_flight_ == 0; });
  }
  // Waits until every handler thread has returned; false when `deadline` came first.
  bool WaitWorkersGone(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mu_);
    return idle_cv_.wait_until(lock, deadline, [&] { return live_workers_ == 0; });
  }
  int in_flight() const {
    std::lock_guard lock(mu_);
    return in_flight_;
  }

 private:
  std::vector<std::shared_ptr<ConnectionBase>> Live() {
    std::vector<std::shared_ptr<ConnectionBase>> out;
    for (auto it = connections_.begin(); it != connections_.end();) {
      if (auto c = it->second.lock()) {
        out.push_back(std::move(c));
        ++it;
      } else {
        it = connections_.erase(it);
      }
    }
    return out;
  }

  void Accept() {
    acceptor_.async_accept(io_, [self = shared_from_this()](boost::system::error_code ec, Socket socket) {
      self->OnAccept(ec, std::move(socket));
    });
  }
  void OnAccept(boost::system::error_code ec, Socket socket);

  // Logs a refusal at most every 10 s (a flood must not flood the log too).
  bool ShouldLog(std::chrono::steady_clock::time_point* last) {
    auto now = std::chrono::steady_clock::now();
    if (now - *last < std::chrono::seconds(10)) return false;
    *last = now;
    return true;
  }

  const ServerOptions options_;
  std::map<std::string, std::map<std::string, Handler>> routes_;
  std::unique_ptr<TlsSource> tls_;
  std::atomic<bool> draining_{false};

  net::io_context io_{1};
  Acceptor acceptor_{io_};
  net::steady_timer retry_{io_};  // after a failed accept (out of descriptors, say)
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_;
  std::unordered_map<ConnectionBase*, std::weak_ptr<ConnectionBase>> connections_;
  std::chrono::steady_clock::time_point last_full_log_{}, last_accept_log_{};

  std::atomic<std::uint64_t> buffered_{0};
  std::mutex post_mu_;
  bool io_finished_ = false;

  mutable std::mutex mu_;
  std::condition_variable idle_cv_;  // in_flight_ or live_workers_ reached 0
  std::condition_variable work_cv_;  // a job arrived, or stopping_
  int in_flight_ = 0;
  int live_workers_ = 0;
  int waiting_workers_ = 0;  // handler threads in work_cv_.wait
  bool stopping_ = false;
  std::deque<std::function<void()>> jobs_;
};

}  // namespace graydebug::http::detail
