// The one HTTP(S) server of graydebug, over Boost.Beast and Boost.Asio (header-only, the same
// Boost 1.74 that Debian's cpprestsdk is built with).
//
// Threads: one I/O thread per server runs every socket, TLS handshake, parse and write; the
// handlers run on the server's own handler threads, so a slow handler never stalls the I/O. A
// connection's state is touched only on the I/O thread; handler threads hand their answer back
// with a post. Stop therefore knows every connection it has to drain or close (no scanning of
// descriptors, no race with the I/O thread).
//
// Limits and timeouts (ServerOptions; docs/decisions.md): header 64 KiB (431), body
// max_body_bytes (413), bodies held at once max_buffered_bytes (503), TLS handshake 10 s, the next
// request's first byte idle_timeout (keep-alive), then its header, body and answer
// request_timeout each, max_connections open at once.
#include "graydebug/http_server.h"

#include <utility>  // must precede boost/asio with C++20 (Boost 1.74)

#include <netdb.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <vector>

#include "graydebug/file_read.h"
#include "graydebug/flags.h"
#include "graydebug/log.h"
#include "graydebug/net/address.h"
#include "graydebug/telemetry.h"

namespace graydebug::http {
namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;

constexpr std::size_t kMaxPemBytes = 1u << 20;
constexpr std::uint32_t kHeaderLimit = 64u << 10;
constexpr auto kHandshakeTimeout = std::chrono::seconds(10);
// After a final answer with "Connection: close": how long the rest of what the client sends is
// read and dropped, so that closing does not reset the connection before it read the answer.
constexpr auto kLingerTimeout = std::chrono::seconds(2);

// Mozilla's "intermediate" list for TLS 1.2: ECDHE key exchange with AEAD ciphers only. TLS 1.3
// keeps OpenSSL's default suites, which are all AEAD.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// Drains OpenSSL's thread-local error queue into one line.
std::string OpenSslError() {
  std::string out;
  while (unsigned long code = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

// ---- TLS material ---------------------------------------------------------------------------

// A parsed certificate chain and its key; immutable once built, shared by every connection
// context that uses it (OpenSSL reference-counts the objects).
struct TlsPair {
  X509* leaf = nullptr;
  STACK_OF(X509) * chain = nullptr;  // intermediates after the leaf, maybe empty
  EVP_PKEY* key = nullptr;
  std::string subject;
  std::string not_after;
  // The server context every new connection is made from (configured from the fields above).
  // Shared by the connections that use it; a rotation builds a new one.
  std::shared_ptr<ssl::context> context;

  TlsPair() = default;
  TlsPair(const TlsPair&) = delete;
  TlsPair& operator=(const TlsPair&) = delete;
  ~TlsPair() {
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
    EVP_PKEY_free(key);
  }
};

// Encrypted keys are refused instead of prompting on a terminal.
int NoPassphrase(char*, int, int, void*) {
  return -1;
}

// Sets the protocol floor, ciphers and the pair on one connection's fresh context.
// Returns "" or OpenSSL's reason.
std::string ConfigureContext(SSL_CTX* ctx, const TlsPair& pair) {
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(
      ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
  // No resumption: a client reconnecting after a rotation must see the new certificate, and
  // webhook clients keep their connections open anyway.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(ctx, 0);
  if (SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1 || SSL_CTX_use_certificate(ctx, pair.leaf) != 1 ||
      SSL_CTX_set1_chain(ctx, pair.chain) != 1 || SSL_CTX_use_PrivateKey(ctx, pair.key) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1) {
    return OpenSslError();
  }
  return "";
}

using BioPtr = std::unique_ptr<BIO, decltype(&BIO_free)>;

BioPtr MemBio(const std::string& data) {
  return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())), BIO_free);
}

std::string AsnTime(const ASN1_TIME* t) {
  BioPtr out(BIO_new(BIO_s_mem()), BIO_free);
  if (!out || ASN1_TIME_print(out.get(), t) != 1) return "";
  char* data = nullptr;
  long n = BIO_get_mem_data(out.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

// Reads and checks a certificate/key pair. Returns nullptr and one line in *error when a file is
// unreadable, is not complete PEM, or the key does not belong to the certificate.
std::shared_ptr<const TlsPair> LoadTlsPair(const std::string& cert_file, const std::string& key_file,
                                           std::string* error) {
  ERR_clear_error();
  FileReadResult cert_pem = ReadFileLimited(cert_file, kMaxPemBytes);
  if (!cert_pem.ok) {
    *error = "cannot read the TLS certificate: " + cert_pem.error;
    return nullptr;
  }
  FileReadResult key_pem = ReadFileLimited(key_file, kMaxPemBytes);
  if (!key_pem.ok) {
    *error = "cannot read the TLS key: " + key_pem.error;
    return nullptr;
  }
  auto pair = std::make_shared<TlsPair>();
  BioPtr cert_bio = MemBio(cert_pem.contents);
  pair->chain = sk_X509_new_null();
  if (!cert_bio || !pair->chain) {
    *error = "out of memory reading " + cert_file;
    return nullptr;
  }
  pair->leaf = PEM_read_bio_X509(cert_bio.get(), nullptr, NoPassphrase, nullptr);
  if (pair->leaf == nullptr) {
    *error = cert_file + ": no PEM certificate in it (" + OpenSslError() + ")";
    return nullptr;
  }
  while (X509* extra = PEM_read_bio_X509(cert_bio.get(), nullptr, NoPassphrase, nullptr)) {
    if (sk_X509_push(pair->chain, extra) == 0) {
      X509_free(extra);
      *error = "out of memory reading " + cert_file;
      return nullptr;
    }
  }
  // The loop ends at "no start line" when the file is complete; anything else is a torn or
  // corrupt certificate after the leaf (a half-written file, say).
  unsigned long last = ERR_peek_last_error();
  if (ERR_GET_LIB(last) != ERR_LIB_PEM || ERR_GET_REASON(last) != PEM_R_NO_START_LINE) {
    *error = cert_file + ": malformed certificate after the first one (" + OpenSslError() + ")";
    return nullptr;
  }
  ERR_clear_error();

  BioPtr key_bio = MemBio(key_pem.contents);
  pair->key = key_bio ? PEM_read_bio_PrivateKey(key_bio.get(), nullptr, NoPassphrase, nullptr) : nullptr;
  if (pair->key == nullptr) {
    *error = key_file + ": no unencrypted PEM private key in it (" + OpenSslError() + ")";
    return nullptr;
  }
  if (X509_check_private_key(pair->leaf, pair->key) != 1) {
    ERR_clear_error();
    *error = key_file + ": the private key does not match the certificate in " + cert_file;
    return nullptr;
  }
  // The context the connections will use: also catches keys or signatures that OpenSSL's
  // security level refuses (RSA < 2048 bits, say).
  try {
    pair->context = std::make_shared<ssl::context>(ssl::context::tls_server);
  } catch (const std::exception& e) {
    *error = std::string("cannot create a TLS context: ") + e.what();
    return nullptr;
  }
  if (std::string why = ConfigureContext(pair->context->native_handle(), *pair); !why.empty()) {
    *error = cert_file + ": unusable for TLS: " + why;
    return nullptr;
  }
  char subject[512];
  X509_NAME_oneline(X509_get_subject_name(pair->leaf), subject, sizeof subject);
  pair->subject = subject;
  pair->not_after = AsnTime(X509_get0_notAfter(pair->leaf));
  return pair;
}

// What stat says about a file; a change in any field means "read it again". stat follows
// symlinks, so Kubernetes' swap of the `..data` link shows up as a new inode.
struct FileStamp {
  bool exists = false;
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  std::int64_t mtime_ns = 0;
  std::int64_t ctime_ns = 0;
  bool operator==(const FileStamp&) const = default;
};

FileStamp Stamp(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  auto ns = [](const timespec& t) { return static_cast<std::int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec; };
  return {true, st.st_dev, st.st_ino, st.st_size, ns(st.st_mtim), ns(st.st_ctim)};
}

// The serving pair, swapped in place when the files change into another valid pair.
class TlsSource {
 public:
  TlsSource(std::string cert_file, std::string key_file, std::string server)
      : cert_file_(std::move(cert_file)), key_file_(std::move(key_file)), server_(std::move(server)) {}

  // The first load: "" or why the pair is unusable.
  std::string Load() {
    FileStamp cert = Stamp(cert_file_), key = Stamp(key_file_);
    std::string error;
    auto pair = LoadTlsPair(cert_file_, key_file_, &error);
    if (!pair) return error;
    std::lock_guard lock(mu_);
    current_ = pair;
    seen_ = {cert, key};
    log::Info("tls certificate loaded",
              {{"server", server_}, {"subject", pair->subject}, {"not_after", pair->not_after}});
    return "";
  }

  // Loads the files again when stat says they changed. An unusable new pair (half-written,
  // mismatched) is logged once and skipped; the current pair stays.
  void Poll() {
    FileStamp cert = Stamp(cert_file_), key = Stamp(key_file_);
    {
      std::lock_guard lock(mu_);
      if (seen_ == std::pair(cert, key)) return;
      seen_ = {cert, key};
    }
    std::string error;
    auto pair = LoadTlsPair(cert_file_, key_file_, &error);
    if (!pair) {
      log::Warn("tls files changed but are unusable; keeping the current certificate",
                {{"server", server_}, {"error", error}});
      telemetry::Current().TlsReload(server_, false);
      return;
    }
    {
      std::lock_guard lock(mu_);
      current_ = pair;
    }
    std::string count = std::to_string(++reloads_);
    telemetry::Current().TlsReload(server_, true);
    log::Info("tls certificate reloaded",
              {{"server", server_}, {"subject", pair->subject}, {"not_after", pair->not_after}, {"reloads", count}});
  }

  std::shared_ptr<const TlsPair> Current() const {
    std::lock_guard lock(mu_);
    return current_;
  }
  std::uint64_t reloads() const { return reloads_.load(); }

 private:
  const std::string cert_file_, key_file_, server_;
  mutable std::mutex mu_;
  std::shared_ptr<const TlsPair> current_;
  std::pair<FileStamp, FileStamp> seen_;  // the stamps last looked at, loaded or refused
  std::atomic<std::uint64_t> reloads_{0};
};
// ---- Addresses ------------------------------------------------------------------------------

struct ListenAddress {
  std::string host;  // without brackets for IPv6
  int port = 0;
  std::string Text() const {
    return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
  }
};

// "host:port", ":port" (= 0.0.0.0) or "[ipv6]:port" into parts; nullopt and *error otherwise.
std::optional<ListenAddress> ParseListen(const std::string& listen, std::string* error) {
  if (std::string why = ValidateListenAddress(listen); !why.empty()) {
    *error = "listen address \"" + listen + "\": " + why;
    return std::nullopt;
  }
  std::string unused;
  graydebug::net::HostPort hp = *graydebug::net::ParseHostPort(listen, &unused);
  ListenAddress out;
  out.host = hp.host.empty() ? "0.0.0.0" : hp.host;
  out.port = hp.port;
  return out;
}

// The address to bind: the first one getaddrinfo gives for the host (a literal or a name).
std::optional<tcp::endpoint> Resolve(const ListenAddress& address, std::string* error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(address.host.c_str(), nullptr, &hints, &res); rc != 0 || res == nullptr) {
    *error = "cannot resolve \"" + address.host + "\": " + (rc != 0 ? ::gai_strerror(rc) : "no address");
    return std::nullopt;
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(res, ::freeaddrinfo);
  const auto port = static_cast<unsigned short>(address.port);
  if (res->ai_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(res->ai_addr);
    return tcp::endpoint(net::ip::address_v4(ntohl(in->sin_addr.s_addr)), port);
  }
  if (res->ai_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(res->ai_addr);
    net::ip::address_v6::bytes_type bytes;
    std::memcpy(bytes.data(), &in6->sin6_addr, bytes.size());
    return tcp::endpoint(net::ip::address_v6(bytes, in6->sin6_scope_id), port);
  }
  *error = "cannot resolve \"" + address.host + "\": not an IP address";
  return std::nullopt;
}

std::string ErrorBody(const std::string& message) {
  // replace: a hostile path may carry invalid UTF-8 into the message.
  return nlohmann::json{{"error", message}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Response ErrorResponse(int status, const std::string& message) {
  return Response{status, "application/json", ErrorBody(message)};
}

// Client-supplied text echoed in an error: short enough for one log-friendly line.
std::string Clip(const std::string& text) {
  constexpr std::size_t kMax = 200;
  return text.size() <= kMax ? text : text.substr(0, kMax) + "...";
}

std::string Str(beast::string_view s) {
  return std::string(s.data(), s.size());
}

// Two servers of one process on one port would be a wiring mistake; it gets a clearer error
// than the kernel's "address in use". The ports in use are tracked here.
class PortRegistry {
 public:
  static PortRegistry& Get() {
    static PortRegistry r;
    return r;
  }
  bool Claim(int port) {
    std::lock_guard lock(mu_);
    return ports_.insert(port).second;
  }
  void Release(int port) {
    std::lock_guard lock(mu_);
    ports_.erase(port);
  }

 private:
  std::mutex mu_;
  std::set<int> ports_;
};

// Runs a handler; its failures become a 500.
Response RunHandler(const Handler& handler, const Request& request, const std::string& server) noexcept {
  auto failed = [&](const std::string& what) {
    try {
      log::Error("handler failed; answered 500",
                 {{"server", server}, {"method", request.method}, {"path", request.path}, {"error", what}});
    } catch (...) {
    }
    return ErrorResponse(500, "internal error");
  };
  try {
    Response response = handler(request);
    if (response.status < 200 || response.status > 599) {  // 1xx is never a final answer
      return failed("handler returned HTTP status " + std::to_string(response.status));
    }
    return response;
  } catch (const std::exception& e) {
    return failed(e.what());
  } catch (...) {
    return failed("unknown exception");
  }
}

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
    beast::error_code ec;
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec && endpoint.address().is_v6()) acceptor_.set_option(net::ip::v6_only(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      beast::error_code ignored;
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
    beast::error_code ignored;
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
  bool Dispatch(std::function<void()> job) {
    std::lock_guard lock(mu_);
    if (stopping_) return false;
    jobs_.push_back(std::move(job));
    work_cv_.notify_one();
    return true;
  }
  // Handler threads: run queued jobs until Stop and the queue is empty.
  void WorkerLoop() {
    while (true) {
      std::function<void()> job;
      {
        std::unique_lock lock(mu_);
        work_cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
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
    acceptor_.async_accept(io_, [self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
      self->OnAccept(ec, std::move(socket));
    });
  }
  void OnAccept(beast::error_code ec, tcp::socket socket);

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
  tcp::acceptor acceptor_{io_};
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
  bool stopping_ = false;
  std::deque<std::function<void()>> jobs_;
};

// ---- One connection ---------------------------------------------------------------------------

template <class Stream>
Stream MakeStream(tcp::socket socket, ssl::context* context) {
  if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
    return Stream(std::move(socket));
  } else {
    return Stream(std::move(socket), *context);
  }
}

// One client connection, plain (beast::tcp_stream) or TLS (beast::ssl_stream over it): reads a
// request, has a handler thread answer it, writes the answer, and again while keep-alive holds.
// Lives on the I/O thread; owned by its pending operations (and a handler run in progress).
template <class Stream>
class Connection : public ConnectionBase, public std::enable_shared_from_this<Connection<Stream>> {
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

 public:
  Connection(std::shared_ptr<Core> core, tcp::socket socket, std::string remote, std::shared_ptr<ssl::context> context)
      : core_(std::move(core)),
        context_(std::move(context)),
        stream_(MakeStream<Stream>(std::move(socket), context_.get())),
        remote_(std::move(remote)) {}
  ~Connection() override {
    EndRequest();
    ReleaseBody();
  }

  void Start() {
    beast::error_code ignored;
    // Without TCP_NODELAY a TLS handshake's server flight meets Nagle + delayed ACK (~40 ms).
    Lowest().socket().set_option(tcp::no_delay(true), ignored);
    if constexpr (kTls) {
      phase_ = Phase::kHandshake;
      Lowest().expires_after(kHandshakeTimeout);
      stream_.async_handshake(ssl::stream_base::server, [self = this->shared_from_this()](beast::error_code ec) {
        if (self->closed_) return;
        if (ec) {
          log::Debug("tls handshake failed",
                     {{"server", self->core_->options().name}, {"remote", self->remote_}, {"error", ec.message()}});
          self->Close();
          return;
        }
        self->WaitForRequest();
      });
    } else {
      WaitForRequest();
    }
  }

  void Drain() override {
    if (phase_ == Phase::kHandshake || (phase_ == Phase::kIdle && buffer_.size() == 0)) Close();
  }

  void Close() override {
    if (closed_) return;
    closed_ = true;
    EndRequest();
    ReleaseBody();
    Lowest().close();  // cancels the pending operation and the timer
    core_->Unregister(this);
  }

 private:
  enum class Phase { kHandshake, kIdle, kRequest, kHandler, kAnswer, kLinger };

  beast::tcp_stream& Lowest() { return beast::get_lowest_layer(stream_); }
  const ServerOptions& options() const { return core_->options(); }

  // Keep-alive: waits (up to idle_timeout) for the first bytes of the next request; the header
  // then has request_timeout to arrive in full.
  void WaitForRequest() {
    if (core_->draining() && buffer_.size() == 0) {
      Close();
      return;
    }
    phase_ = Phase::kIdle;
    keep_alive_ = false;
    head_ = false;
    version_ = 11;
    if (buffer_.size() > 0) {  // the next request is already here (pipelined)
      ReadHeader();
      return;
    }
    Lowest().expires_after(options().idle_timeout);
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
                              if (self->closed_) return;
                              self->buffer_.commit(n);
                              if (ec) {
                                self->Close();  // gone, or idle too long
                                return;
                              }
                              self->ReadHeader();
                            });
  }

  void ReadHeader() {
    phase_ = Phase::kRequest;
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    parser_->body_limit(static_cast<std::uint64_t>(options().max_body_bytes));
    Lowest().expires_after(options().request_timeout);
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                               if (self->closed_) return;
                               if (ec) return self->ReadFailed(ec);
                               self->OnHeader();
                             });
  }

  void OnHeader() {
    BeginRequest();
    const auto& header = parser_->get();
    version_ = header.version() == 10 ? 10 : 11;
    head_ = header.method() == bhttp::verb::head;
    // Room for the body among all the bodies held at once: the declared length, or the limit when
    // it is chunked (the length is unknown until the end).
    auto declared = parser_->content_length();
    reserved_ = declared ? *declared : (parser_->chunked() ? options().max_body_bytes : 0);
    if (reserved_ > 0 && !core_->Reserve(reserved_)) {
      reserved_ = 0;
      Reply(ErrorResponse(503, "too many request bodies in progress; retry"), true, "",
            2 * static_cast<std::uint64_t>(options().max_body_bytes));
      return;
    }
    if (version_ == 11 && beast::iequals(header[bhttp::field::expect], "100-continue")) {
      Continue();
    } else {
      ReadBody();
    }
  }

  // "Expect: 100-continue" and the body is within the limit (else the header read failed).
  void Continue() {
    continue_.emplace(bhttp::status::continue_, 11);
    Lowest().expires_after(options().request_timeout);
    bhttp::async_write(stream_, *continue_, [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
      if (self->closed_) return;
      if (ec) return self->Close();
      self->ReadBody();
    });
  }

  void ReadBody() {
    Lowest().expires_after(options().request_timeout);
    bhttp::async_read(stream_, buffer_, *parser_, [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
      if (self->closed_) return;
      if (ec) return self->ReadFailed(ec);
      self->Route();
    });
  }

  void ReadFailed(beast::error_code ec) {
    if (ec == bhttp::error::body_limit) {
      Reply(ErrorResponse(413, "request body larger than " + std::to_string(options().max_body_bytes) + " bytes"), true,
            "", 2 * static_cast<std::uint64_t>(options().max_body_bytes));
      return;
    }
    if (ec == bhttp::error::header_limit) {
      Reply(ErrorResponse(431, "request header larger than " + std::to_string(kHeaderLimit) + " bytes"), true);
      return;
    }
    const bool parse_error = ec.category() == bhttp::make_error_code(bhttp::error::bad_target).category() &&
                             ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message;
    if (parse_error) {
      Reply(ErrorResponse(400, "malformed request: " + ec.message()), true);
      return;
    }
    // Gone mid-request, too slow (request_timeout), or the connection was closed.
    log::Debug("request not read", {{"server", options().name}, {"remote", remote_}, {"error", ec.message()}});
    Close();
  }

  void Route() {
    phase_ = Phase::kHandler;
    bhttp::request<bhttp::string_body> message = parser_->release();
    parser_.reset();
    keep_alive_ = message.keep_alive();
    auto request = std::make_shared<Request>();
    request->method = Str(message.method_string());
    const std::string target = Str(message.target());
    const auto question = target.find('?');
    request->path = target.substr(0, question);
    if (question != std::string::npos) request->query = target.substr(question + 1);
    request->content_type = Str(message[bhttp::field::content_type]);
    request->remote_address = remote_;
    request->body = std::move(message.body());
    method_ = Clip(request->method);
    path_ = Clip(request->path);

    auto path = core_->routes().find(request->path);  // frozen since Start
    if (path == core_->routes().end()) {
      Reply(ErrorResponse(404, "no handler for path " + path_), false);
      return;
    }
    auto method = path->second.find(request->method);
    if (method == path->second.end()) {
      std::string allow;
      for (const auto& [m, h] : path->second) allow += (allow.empty() ? "" : ", ") + m;
      Reply(ErrorResponse(405, "method " + method_ + " not allowed on " + path_), false, allow);
      return;
    }
    const Handler* handler = &method->second;
    const bool queued = core_->Dispatch([self = this->shared_from_this(), request, handler] {
      Response response = RunHandler(*handler, *request, self->options().name);
      self->core_->PostToIo([self, response = std::move(response)]() mutable {
        if (!self->closed_) self->Reply(std::move(response), false);
      });
    });
    if (!queued) Reply(ErrorResponse(503, "server is shutting down"), true);
  }

  // Writes the answer. The connection then ends when `close`, when the client asked for it, or
  // when the server is draining; after a refused body up to `linger` more bytes are read and
  // dropped first, so that the client gets to read the answer.
  void Reply(Response response, bool close, const std::string& allow = "", std::uint64_t linger = 64u << 10) {
    phase_ = Phase::kAnswer;
    ReleaseBody();
    response_.emplace();
    auto& r = *response_;
    r.version(version_);
    r.result(static_cast<unsigned>(response.status));
    if (!response.content_type.empty()) r.set(bhttp::field::content_type, response.content_type);
    if (!allow.empty()) r.set(bhttp::field::allow, allow);
    keep_alive_ = keep_alive_ && !close && !core_->draining();
    r.keep_alive(keep_alive_);
    // 204 and 304 have no body by definition (Beast refuses to frame one).
    if (response.status != 204 && response.status != 304) r.body() = std::move(response.body);
    r.prepare_payload();
    if (head_) r.body().clear();  // the length of what GET would send, and no body
    log::Debug("http request", {{"server", options().name},
                                {"method", method_},
                                {"path", path_},
                                {"status", std::to_string(response.status)},
                                {"remote", remote_}});
    Lowest().expires_after(options().request_timeout);
    bhttp::async_write(stream_, r, [self = this->shared_from_this(), linger](beast::error_code ec, std::size_t) {
      self->EndRequest();
      if (self->closed_) return;
      if (ec) return self->Close();
      self->method_.clear();
      self->path_.clear();
      if (self->keep_alive_) return self->WaitForRequest();
      self->Linger(linger);
    });
  }

  // Ends the connection without resetting it under an answer the client has not read yet: no
  // more sending, then what still arrives is dropped until the client closes, `budget` bytes
  // or kLingerTimeout, then closed. Reads the TCP stream below any TLS: nothing is decrypted.
  void Linger(std::uint64_t budget) {
    phase_ = Phase::kLinger;
    beast::error_code ignored;
    Lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
    linger_left_ = budget;
    Lowest().expires_after(kLingerTimeout);
    LingerRead();
  }
  void LingerRead() {
    Lowest().async_read_some(net::buffer(scratch_),
                             [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
                               if (self->closed_) return;
                               if (ec || n >= self->linger_left_) return self->Close();
                               self->linger_left_ -= n;
                               self->LingerRead();
                             });
  }

  void ReleaseBody() {
    if (reserved_ == 0) return;
    core_->Release(reserved_);
    reserved_ = 0;
  }

  // A request counts as in flight (for Stop's drain) from its header to its answer.
  void BeginRequest() {
    if (counted_) return;
    counted_ = true;
    core_->Begin();
  }
  void EndRequest() {
    if (!counted_) return;
    counted_ = false;
    core_->End();
  }

  std::shared_ptr<Core> core_;
  std::shared_ptr<ssl::context> context_;  // before stream_, which refers to it
  Stream stream_;
  const std::string remote_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::optional<bhttp::response<bhttp::empty_body>> continue_;
  std::optional<bhttp::response<bhttp::string_body>> response_;
  std::array<char, 16384> scratch_{};
  std::uint64_t linger_left_ = 0;
  std::string method_, path_;   // of the request being answered, for the log
  std::uint64_t reserved_ = 0;  // room held in Core's body budget
  unsigned version_ = 11;       // the request's: 10 or 11
  bool head_ = false;           // a HEAD request: the answer has no body
  Phase phase_ = Phase::kIdle;
  bool keep_alive_ = false;
  bool counted_ = false;
  bool closed_ = false;
};

void Core::OnAccept(beast::error_code ec, tcp::socket socket) {
  if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
  if (ec) {
    // Out of descriptors, say: try again shortly instead of spinning.
    if (ShouldLog(&last_accept_log_)) {
      log::Warn("accepting a connection failed; retrying", {{"server", options_.name}, {"error", ec.message()}});
    }
    retry_.expires_after(std::chrono::milliseconds(100));
    retry_.async_wait([self = shared_from_this()](beast::error_code wait) {
      if (!wait) self->Accept();
    });
    return;
  }
  Accept();
  const auto limit = static_cast<std::size_t>(options_.max_connections);
  if (connections_.size() >= limit && Live().size() >= limit) {
    if (ShouldLog(&last_full_log_)) {
      log::Warn("connection limit reached; closing new connections",
                {{"server", options_.name}, {"max_connections", std::to_string(options_.max_connections)}});
    }
    return;  // `socket` closes as it goes out of scope
  }
  beast::error_code ignored;
  auto remote = socket.remote_endpoint(ignored).address().to_string(ignored);
  if (tls_ != nullptr) {
    auto pair = tls_->Current();
    if (!pair) return;
    auto c = std::make_shared<Connection<beast::ssl_stream<beast::tcp_stream>>>(shared_from_this(), std::move(socket),
                                                                                std::move(remote), pair->context);
    Register(c.get(), c);
    c->Start();
  } else {
    auto c = std::make_shared<Connection<beast::tcp_stream>>(shared_from_this(), std::move(socket), std::move(remote),
                                                             nullptr);
    Register(c.get(), c);
    c->Start();
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
    impl_->workers.emplace_back([core = impl_->core] { core->WorkerLoop(); });
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
