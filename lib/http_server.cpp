// The one HTTP(S) server of graydebug, over cpprest's asio listener. The only file that includes
// the listener's headers (they cost ~7 s of compile time per file).
//
// What cpprest (2.10.18) does and does not do for us:
// - It reads the body on its own I/O threads into a stream, dispatches the request as soon as the
//   headers are in, and writes no response before the body has been read to its end. So a body
//   we refuse is either read on and discarded (up to twice the limit, so the client sees the
//   413) or cut off by closing that stream with an error: cpprest stops reading at its next
//   write into it, then sends our answer with "Connection: close".
// - It builds a fresh TLS context for every connection and calls our callback on it, which is
//   how a reloaded certificate reaches new connections.
// - Handlers run on our own threads so that a slow handler never stalls cpprest's I/O pool.
// - It has no read, idle or handshake timeouts, no header size limit and no connection limit;
//   its asio design keeps idle and slow clients from blocking others, but each costs a socket.
// - Its close() is not safe while connections are open: see Server::Stop (Linux-specific).
#include "graydebug/http_server.h"

#include <utility>  // must precede boost/asio with C++20 (Boost 1.74)

#include <cpprest/http_listener.h>
#include <dirent.h>
#include <linux/filter.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "cpprest_pool.h"
#include "graydebug/config_file.h"
#include "graydebug/flags.h"
#include "graydebug/log.h"

namespace graydebug::http {
namespace {

namespace rest = web::http;
using web::http::experimental::listener::http_listener;
using web::http::experimental::listener::http_listener_config;

constexpr std::size_t kMaxPemBytes = 1u << 20;
constexpr std::size_t kBodyReadBytes = 64u << 10;

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
  // cpprest makes one context per connection, so a session could never be resumed: issuing
  // tickets or caching sessions would be wasted work.
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
  // Exactly what every connection will do, once, on a scratch context: catches keys or
  // signatures that OpenSSL's security level refuses (RSA < 2048 bits, say).
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> scratch(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
  if (!scratch) {
    *error = "cannot create a TLS context: " + OpenSslError();
    return nullptr;
  }
  if (std::string why = ConfigureContext(scratch.get(), *pair); !why.empty()) {
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
      return;
    }
    {
      std::lock_guard lock(mu_);
      current_ = pair;
    }
    std::string count = std::to_string(++reloads_);
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
  std::string host;
  int port = 0;
};

// "host:port" or ":port" into parts; nullopt and *error for anything else.
std::optional<ListenAddress> ParseListen(const std::string& listen, std::string* error) {
  if (std::string why = ValidateListenAddress(listen); !why.empty()) {
    *error = "listen address \"" + listen + "\": " + why;
    return std::nullopt;
  }
  if (listen[0] == '[') {
    // cpprest's listener splits "host:port" at the first colon, so an IPv6 literal can't work.
    *error = "listen address \"" + listen +
             "\": IPv6 addresses are not supported (cpprest's listener cannot "
             "bind them); use an IPv4 address or a host name";
    return std::nullopt;
  }
  auto colon = listen.rfind(':');
  ListenAddress out;
  out.host = colon == 0 ? "0.0.0.0" : listen.substr(0, colon);
  std::from_chars(listen.data() + colon + 1, listen.data() + listen.size(), out.port);
  return out;
}

// Binds (without listening) a socket with SO_REUSEADDR to host:0 and returns it, holding the
// port the kernel picked in *port, so cpprest (which cannot report the port it bound) can be
// given a concrete one. Linux lets a listener bind beside a reusable non-listening socket.
int ReservePort(const std::string& host, int* port, std::string* error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), "0", &hints, &res); rc != 0 || res == nullptr) {
    *error = "cannot resolve \"" + host + "\": " + ::gai_strerror(rc);
    return -1;
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(res, ::freeaddrinfo);
  int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  if (fd < 0 || ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      ::bind(fd, res->ai_addr, res->ai_addrlen) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len) != 0) {
    *error = "cannot bind " + host + ":0: " + std::strerror(errno);
    if (fd >= 0) ::close(fd);
    return -1;
  }
  *port = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return fd;
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

// Strict: digits only, no sign, no overflow.
bool ParseContentLength(const std::string& text, std::uint64_t* out) {
  if (text.empty() || text.size() > 19) return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

// cpprest keys its listeners by "host:port" process-wide, and a second listener on a key in use
// fails by tearing down the first one. Stop also finds a server's sockets by port. So one port
// serves at most one server per process; the ports in use are tracked here.
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

// The TCP sockets of this process bound to local `port`: the listener and its connections.
struct PortSockets {
  int listener = -1;
  std::vector<int> connections;
};

int LocalPort(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return -1;
  if (addr.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  if (addr.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
  return -1;
}

// Scans /proc/self/fd; empty when /proc is not mounted.
PortSockets FindSockets(int port) {
  PortSockets out;
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return out;
  while (dirent* entry = ::readdir(dir)) {
    int fd = -1;
    auto [end, ec] = std::from_chars(entry->d_name, entry->d_name + std::strlen(entry->d_name), fd);
    if (ec != std::errc() || *end != '\0' || fd == ::dirfd(dir)) continue;
    struct stat st {};
    int type = 0, accepting = 0;
    socklen_t len = sizeof type;
    if (::fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode) || LocalPort(fd) != port ||
        ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) {
      continue;
    }
    len = sizeof accepting;
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) == 0 && accepting != 0) {
      out.listener = fd;
    } else {
      out.connections.push_back(fd);
    }
  }
  ::closedir(dir);
  return out;
}

// Makes the kernel drop every packet for `fd` (a classic BPF program "return 0"): on a listening
// socket, new connections can no longer complete their handshake.
bool DropAllPackets(int fd) {
  sock_filter code[] = {{BPF_RET | BPF_K, 0, 0, 0}};
  sock_fprog program{1, code};
  return ::setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof program) == 0;
}

// ---- The server's shared state ----------------------------------------------------------------

struct Exchange {
  rest::http_request req;
  Request request;
  std::vector<std::uint8_t> chunk;  // the buffer of the body read in progress
};

// Everything cpprest's callbacks and the handler threads touch. Held by shared_ptr from every
// callback, so a late continuation after Stop finds it alive.
class Core : public std::enable_shared_from_this<Core> {
 public:
  explicit Core(ServerOptions options) : options_(std::move(options)) {}

  const ServerOptions& options() const { return options_; }
  std::map<std::string, std::map<std::string, Handler>>& routes() { return routes_; }
  TlsSource* tls() const { return tls_.get(); }
  void set_tls(std::unique_ptr<TlsSource> tls) { tls_ = std::move(tls); }
  void StartDraining() { draining_ = true; }

  // cpprest's per-connection TLS callback; runs on an I/O thread and must not throw.
  void ConfigureTls(boost::asio::ssl::context& ctx) noexcept {
    try {
      auto pair = tls_->Current();
      if (!pair) return;
      if (std::string why = ConfigureContext(ctx.native_handle(), *pair); !why.empty()) {
        log::Error("tls context setup failed; the handshake will fail", {{"server", options_.name}, {"error", why}});
      }
    } catch (...) {
      ERR_clear_error();
    }
  }

  // cpprest's request callback, on an I/O thread right after the headers: never blocks, never throws.
  void OnRequest(rest::http_request req) noexcept {
    Begin();
    std::shared_ptr<Exchange> ex;
    try {
      ex = std::make_shared<Exchange>();
      ex->req = req;
      ex->request.method = req.method();
      ex->request.path = req.request_uri().path();
      ex->request.query = req.request_uri().query();
      ex->request.remote_address = req.remote_address();
      const auto& headers = req.headers();
      if (auto it = headers.find(rest::header_names::content_type); it != headers.end()) {
        ex->request.content_type = it->second;
      }
      if (auto it = headers.find(rest::header_names::content_length); it != headers.end()) {
        std::uint64_t declared = 0;
        if (!ParseContentLength(it->second, &declared)) {
          Refuse(ex, 400, "invalid Content-Length");
          return;
        }
        if (declared > options_.max_body_bytes) {
          RefuseTooLarge(ex, declared, true);
          return;
        }
        ex->request.body.reserve(static_cast<std::size_t>(declared));
      }
      ReadBody(ex);
    } catch (const std::exception& e) {
      Fail(ex, req, e.what());
    } catch (...) {
      Fail(ex, req, "unknown exception");
    }
  }

  // Handler threads: run queued handlers until Stop and the queue is empty.
  void WorkerLoop() {
    while (true) {
      std::function<void()> job;
      {
        std::unique_lock lock(mu_);
        work_cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
        if (jobs_.empty()) break;
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
  void StopWorkers() {
    std::lock_guard lock(mu_);
    stopping_ = true;
    work_cv_.notify_all();
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
  std::string TooLarge() const {
    return "request body larger than " + std::to_string(options_.max_body_bytes) + " bytes";
  }

  void Begin() {
    std::lock_guard lock(mu_);
    ++in_flight_;
  }
  void End() {
    std::lock_guard lock(mu_);
    if (--in_flight_ == 0) idle_cv_.notify_all();
  }

  void ReadBody(const std::shared_ptr<Exchange>& ex) {
    ex->chunk.resize(kBodyReadBytes);
    auto self = shared_from_this();
    ex->req.body().streambuf().getn(ex->chunk.data(), ex->chunk.size()).then([self, ex](pplx::task<size_t> t) {
      self->OnBodyChunk(ex, std::move(t));
    });
  }

  void OnBodyChunk(const std::shared_ptr<Exchange>& ex, pplx::task<size_t> read) noexcept {
    try {
      std::size_t n = 0;
      try {
        n = read.get();
      } catch (const std::exception& e) {
        // The client went away or broke the chunked framing mid-body (cpprest's message is a
        // misread errno: not worth showing).
        log::Debug("request body unreadable", {{"server", options_.name}, {"error", e.what()}});
        Refuse(ex, 400, "incomplete or malformed request body");
        return;
      }
      if (n == 0) {
        Route(ex);
        return;
      }
      if (ex->request.body.size() + n > options_.max_body_bytes) {
        RefuseTooLarge(ex, ex->request.body.size() + n, false);
        return;
      }
      ex->request.body.append(reinterpret_cast<const char*>(ex->chunk.data()), n);
      ReadBody(ex);
    } catch (const std::exception& e) {
      Fail(ex, ex->req, e.what());
    } catch (...) {
      Fail(ex, ex->req, "unknown exception");
    }
  }

  void Route(const std::shared_ptr<Exchange>& ex) {
    ex->chunk = {};
    auto path = routes_.find(ex->request.path);
    if (path == routes_.end()) {
      Send(ex, ErrorResponse(404, "no handler for path " + Clip(ex->request.path)), false, true);
      return;
    }
    auto method = path->second.find(ex->request.method);
    if (method == path->second.end()) {
      std::string allow;
      for (const auto& [m, h] : path->second) allow += (allow.empty() ? "" : ", ") + m;
      Send(ex, ErrorResponse(405, "method " + Clip(ex->request.method) + " not allowed on " + Clip(ex->request.path)),
           false, true, allow);
      return;
    }
    const Handler* handler = &method->second;  // routes_ is frozen once the server started
    auto self = shared_from_this();
    {
      std::lock_guard lock(mu_);
      if (!stopping_) {
        jobs_.push_back([self, ex, handler] { self->RunHandler(ex, *handler); });
        work_cv_.notify_one();
        return;
      }
    }
    Send(ex, ErrorResponse(503, "server is shutting down"), true, false);
  }

  void RunHandler(const std::shared_ptr<Exchange>& ex, const Handler& handler) noexcept {
    Response response;
    try {
      response = handler(ex->request);
      if (response.status < 200 || response.status > 599) {  // 1xx is never a final answer
        throw std::runtime_error("handler returned HTTP status " + std::to_string(response.status));
      }
    } catch (const std::exception& e) {
      LogHandlerFailure(ex->request, e.what());
      response = ErrorResponse(500, "internal error");
    } catch (...) {
      LogHandlerFailure(ex->request, "unknown exception");
      response = ErrorResponse(500, "internal error");
    }
    Send(ex, std::move(response), false, true);
  }

  void LogHandlerFailure(const Request& r, const std::string& what) {
    try {
      log::Error("handler failed; answered 500",
                 {{"server", options_.name}, {"method", r.method}, {"path", r.path}, {"error", what}});
    } catch (...) {
    }
  }

  // Answers and cuts the body off; the connection closes after the answer.
  void Refuse(const std::shared_ptr<Exchange>& ex, int status, const std::string& message) {
    Send(ex, ErrorResponse(status, message), true, false);
    CutBody(ex);
  }

  // Makes cpprest stop reading the body: its next write into the body stream fails, so it stops
  // reading the socket, completes the request and sends our answer (never while one of its reads
  // is still running, which matters for TLS streams).
  void CutBody(const std::shared_ptr<Exchange>& ex) noexcept {
    try {
      ex->req._get_impl()
          ->outstream()
          .close(std::make_exception_ptr(std::runtime_error("body refused")))
          .then([](pplx::task<void> t) {
            try {
              t.get();
            } catch (...) {
            }
          });
    } catch (...) {
    }
  }

  // 413. A client still sending when the server hangs up gets a connection reset, and usually
  // never reads the 413 (curl reports "send failure"). So a body up to twice the limit is read
  // on and thrown away, and the answer goes out after it; a larger one is cut off at once.
  // `size` is the declared Content-Length, or for a chunked body the bytes read so far.
  void RefuseTooLarge(const std::shared_ptr<Exchange>& ex, std::uint64_t size, bool declared) {
    Send(ex, ErrorResponse(413, TooLarge()), true, false);
    ex->request.body = {};
    if (declared && size > DiscardLimit()) {
      CutBody(ex);
    } else {
      Discard(ex, declared ? 0 : size);
    }
  }

  std::uint64_t DiscardLimit() const { return 2 * static_cast<std::uint64_t>(options_.max_body_bytes); }

  // Reads the body on and drops it; cuts it off past DiscardLimit (`received` bytes so far).
  void Discard(const std::shared_ptr<Exchange>& ex, std::uint64_t received) noexcept {
    try {
      if (received > DiscardLimit()) {
        CutBody(ex);
        return;
      }
      ex->chunk.resize(kBodyReadBytes);
      auto self = shared_from_this();
      ex->req.body()
          .streambuf()
          .getn(ex->chunk.data(), ex->chunk.size())
          .then([self, ex, received](pplx::task<size_t> t) {
            try {
              if (std::size_t n = t.get(); n > 0) self->Discard(ex, received + n);
            } catch (...) {
              // The body ended badly: nothing left to discard.
            }
          });
    } catch (...) {
      CutBody(ex);
    }
  }

  // Last resort when our own code threw before an answer was sent.
  void Fail(const std::shared_ptr<Exchange>& ex, const rest::http_request& req, const std::string& what) noexcept {
    try {
      log::Error("request failed; answered 500", {{"server", options_.name}, {"error", what}});
      std::shared_ptr<Exchange> target = ex;
      if (!target) {
        target = std::make_shared<Exchange>();
        target->req = req;
      }
      Refuse(target, 500, "internal error");
    } catch (...) {
      End();
    }
  }

  // Replies; the request stops counting as in flight when the answer is written (or at once
  // when `wait` is false: a refused body may never finish arriving).
  void Send(const std::shared_ptr<Exchange>& ex, Response response, bool close, bool wait,
            const std::string& allow = "") noexcept {
    try {
      const int status = response.status;
      rest::http_response r(static_cast<rest::status_code>(status));
      const bool typed = !response.content_type.empty();
      r.set_body(std::move(response.body), typed ? response.content_type : "application/octet-stream");
      if (!typed) r.headers().remove(rest::header_names::content_type);
      if (!allow.empty()) r.headers().add(U("Allow"), allow);
      if (close || draining_) r.headers().add(rest::header_names::connection, U("close"));
      log::Debug("http request", {{"server", options_.name},
                                  {"method", Clip(ex->request.method)},
                                  {"path", Clip(ex->request.path)},
                                  {"status", std::to_string(status)},
                                  {"remote", ex->request.remote_address}});
      pplx::task<void> sent = ex->req.reply(r);
      if (!wait) {
        End();
        sent.then([](pplx::task<void> t) {
          try {
            t.get();
          } catch (...) {
          }
        });
        return;
      }
      auto self = shared_from_this();
      sent.then([self](pplx::task<void> t) {
        try {
          t.get();
        } catch (...) {
          // The client went away, or Stop closed the connection: nothing to answer to.
        }
        self->End();
      });
    } catch (...) {
      // reply() throws when cpprest already answered (a connection closed by Stop).
      End();
    }
  }

  const ServerOptions options_;
  std::map<std::string, std::map<std::string, Handler>> routes_;
  std::unique_ptr<TlsSource> tls_;
  std::atomic<bool> draining_{false};

  mutable std::mutex mu_;
  std::condition_variable idle_cv_;  // in_flight_ or live_workers_ reached 0
  std::condition_variable work_cv_;  // a job arrived, or stopping_
  int in_flight_ = 0;
  int live_workers_ = 0;
  bool stopping_ = false;
  std::deque<std::function<void()>> jobs_;
};

}  // namespace

struct Server::Impl {
  std::shared_ptr<Core> core;
  ListenAddress address;
  std::unique_ptr<http_listener> listener;
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
  EnsureCpprestThreadPool(options.threads);

  auto impl = std::make_unique<Impl>();
  impl->address = *address;
  const bool tls = !options.tls_cert_file.empty();
  std::unique_ptr<TlsSource> source;
  if (tls) {
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
  const std::string& host = impl_->address.host;
  int port = impl_->address.port;
  int reserved = -1;
  if (port == 0) {
    std::string error;
    reserved = ReservePort(host, &port, &error);
    if (reserved < 0) return error;
  }
  const std::string where = host + ":" + std::to_string(port);
  if (!PortRegistry::Get().Claim(port)) {
    if (reserved >= 0) ::close(reserved);
    return "cannot listen on " + where + ": port already in use by another server of this process";
  }
  impl_->claimed = port;
  for (int i = 0; i < options.threads; ++i) {
    impl_->core->AddWorker();
    impl_->workers.emplace_back([core = impl_->core] { core->WorkerLoop(); });
  }
  impl_->started = true;  // from here on Stop cleans up, even when opening fails
  try {
    http_listener_config config;
    std::shared_ptr<Core> core = impl_->core;
    if (core->tls() != nullptr) {
      config.set_ssl_context_callback([core](boost::asio::ssl::context& ctx) { core->ConfigureTls(ctx); });
    }
    std::string scheme = core->tls() != nullptr ? "https://" : "http://";
    impl_->listener = std::make_unique<http_listener>(web::uri(scheme + where + "/"), config);
    impl_->listener->support([core](rest::http_request req) { core->OnRequest(std::move(req)); });
    impl_->listener->open().wait();
  } catch (const std::exception& e) {
    if (reserved >= 0) ::close(reserved);
    impl_->listener.reset();
    PortRegistry::Get().Release(impl_->claimed);
    impl_->claimed = 0;
    return "cannot listen on " + where + ": " + e.what();
  }
  if (reserved >= 0) ::close(reserved);
  impl_->port = port;
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
            {{"server", options.name}, {"address", where}, {"tls", impl_->core->tls() ? "true" : "false"}});
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
  const ServerOptions& options = impl_->core->options();
  const auto deadline = std::chrono::steady_clock::now() + options.drain_timeout;
  impl_->core->StartDraining();
  // cpprest cannot stop accepting without closing every connection at once, and its close()
  // races with the I/O threads on connections that are still open (it crashes now and then).
  // So: no new connections (the kernel drops their handshakes), let in-flight requests finish,
  // shut the remaining connections down so that cpprest ends them on its own threads, and only
  // then close the listener, which is left with nothing but the acceptor.
  const int port = impl_->listener ? impl_->port.load() : 0;  // 0: Start failed, nothing is open
  if (port != 0) {
    if (int listening = FindSockets(port).listener; listening < 0 || !DropAllPackets(listening)) {
      log::Warn("could not stop accepting before closing", {{"server", options.name}});
    }
  }
  if (!impl_->core->WaitIdle(deadline)) {
    log::Warn("requests still in flight at the drain deadline; closing their connections",
              {{"server", options.name}, {"in_flight", std::to_string(impl_->core->in_flight())}});
  }
  const auto close_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (port != 0) {
    std::vector<int> open = FindSockets(port).connections;
    if (open.empty() || std::chrono::steady_clock::now() > close_deadline) break;
    for (int fd : open) {
      // Checked again right before: the descriptor may have been closed and reused meanwhile.
      if (LocalPort(fd) == port) ::shutdown(fd, SHUT_RDWR);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (impl_->listener) {
    try {
      impl_->listener->close().wait();
    } catch (const std::exception& e) {
      log::Warn("closing the listener failed", {{"server", options.name}, {"error", e.what()}});
    }
    impl_->listener.reset();
  }
  if (impl_->claimed != 0) PortRegistry::Get().Release(impl_->claimed);
  if (impl_->poller.joinable()) {
    {
      std::lock_guard poll_lock(impl_->poll_mu);
      impl_->poll_stop = true;
    }
    impl_->poll_cv.notify_all();
    impl_->poller.join();
  }
  impl_->core->StopWorkers();
  // A handler that never returns must not hang shutdown: its thread is left behind, holding
  // only the shared state.
  const bool gone =
      impl_->core->WaitWorkersGone(std::max(deadline, std::chrono::steady_clock::now()) + std::chrono::seconds(1));
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
