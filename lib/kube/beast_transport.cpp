// The Kubernetes client's wire: HTTP/1.1 over Boost.Beast, plain or TLS 1.2+ (the only file of the
// client that includes Beast or Asio).
//
// No thread of its own. Every connection has its own io_context, and the thread that uses the
// connection runs it for as long as one operation takes, so a request costs no hand-off between
// threads (cpprest's client, before this, ran every chunk of a body through its pool: a timer reset
// and a task per chunk, which bounded the informers; docs/decisions.md). Connections that end a
// request cleanly wait in a small pool for the next one; a watch keeps its connection to itself.
//
// Timeouts are idle timeouts, as the client's callers expect: each read waits at most the
// request's timeout (a stream's: the transport's idle timeout) for its bytes.
#include <utility>  // must precede boost/asio with C++20 (Boost 1.74)

#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <poll.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <cstring>
#include <mutex>
#include <optional>
#include <vector>

#include "graydebug/kube/transport.h"

namespace graydebug::kube {
namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;
using SteadyClock = std::chrono::steady_clock;

constexpr std::size_t kMaxBodyBytes = 512u << 20;     // a list of 10k big objects fits
constexpr std::size_t kMaxLineBytes = 64u << 20;      // one watch event
constexpr std::uint32_t kMaxHeaderBytes = 1u << 20;   // an answer's status line and header
constexpr std::size_t kMaxErrorBodyBytes = 1u << 20;  // the body of a refused watch
constexpr std::size_t kReadBlock = 64u << 10;         // a watch's read, at most
constexpr std::size_t kMaxIdleConnections = 16;
constexpr std::size_t kKeptBufferBytes = 16u << 10;     // a kept connection's read buffer, at most
constexpr auto kMaxIdleAge = std::chrono::seconds(90);  // as Go's net/http keeps them

// Threads of a process may still be inside OpenSSL when it exits (an informer's watch): OpenSSL's
// own atexit handler would tear its state down under them (seen as a SEGV in SSL_CTX_free). Asking
// it, before anything else uses it, not to register that handler leaves its state valid until the
// process ends; the kernel frees it.
const bool kOpenSslWithoutAtexit = OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, nullptr) == 1;

// Where `server` points: scheme, host, port and an optional path prefix (a proxy's).
struct Endpoint {
  bool tls = true;
  std::string host;         // without brackets
  std::string port;         // digits
  std::string host_header;  // "host:port" as written in the URL
  std::string prefix;       // "" or "/k8s/clusters/x", without a trailing slash
};

bool ParseServer(const std::string& url, Endpoint* out) {
  std::string lower;
  for (char c : url.substr(0, 8)) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::size_t at = 0;
  if (lower.rfind("https://", 0) == 0) {
    out->tls = true;
    at = 8;
  } else if (lower.rfind("http://", 0) == 0) {
    out->tls = false;
    at = 7;
  } else {
    return false;
  }
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f || c == '?' || c == '#' || c == '@') return false;
  }
  std::size_t slash = url.find('/', at);
  std::string authority = url.substr(at, slash == std::string::npos ? std::string::npos : slash - at);
  out->prefix = slash == std::string::npos ? "" : url.substr(slash);
  while (!out->prefix.empty() && out->prefix.back() == '/') out->prefix.pop_back();
  std::string port;
  if (!authority.empty() && authority[0] == '[') {
    std::size_t close = authority.find(']');
    if (close == std::string::npos) return false;
    out->host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return false;
      port = authority.substr(close + 2);
    }
    beast::error_code ec;
    net::ip::make_address_v6(out->host, ec);
    if (ec) return false;
  } else {
    std::size_t colon = authority.find(':');
    out->host = authority.substr(0, colon);
    if (colon != std::string::npos) {
      port = authority.substr(colon + 1);
      if (port.find(':') != std::string::npos) return false;
    }
  }
  if (out->host.empty()) return false;
  if (port.empty()) {
    port = out->tls ? "443" : "80";
  } else {
    if (port.size() > 5) return false;
    for (char c : port) {
      if (c < '0' || c > '9') return false;
    }
    if (int n = std::stoi(port); n < 1 || n > 65535) return false;
  }
  out->port = port;
  out->host_header = authority;
  return true;
}

bool IsIpAddress(const std::string& host) {
  beast::error_code ec;
  net::ip::make_address(host, ec);
  return !ec;
}

void ConfigureTls(ssl::context& ctx, const RestConfig& cfg) {
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                  ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  if (!cfg.ca_pem.empty()) {
    ctx.add_certificate_authority(net::buffer(cfg.ca_pem));
  } else {
    ctx.set_default_verify_paths();
  }
  if (!cfg.client_cert_pem.empty()) {
    ctx.use_certificate_chain(net::buffer(cfg.client_cert_pem));
    ctx.use_private_key(net::buffer(cfg.client_key_pem), ssl::context::pem);
  }
  ctx.set_verify_mode(cfg.insecure_skip_tls_verify ? ssl::verify_none : ssl::verify_peer);
  // A kept connection waiting in the pool holds no TLS record buffers (~34 KB each otherwise).
  SSL_CTX_set_mode(ctx.native_handle(), SSL_MODE_RELEASE_BUFFERS);
}

// One line: OpenSSL's and the system's messages are, but keep it so whatever comes.
std::string OneLine(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return s;
}

ApiError Failure(ErrorKind kind, std::string message, bool not_sent = false) {
  ApiError e;
  e.kind = kind;
  e.message = OneLine(std::move(message));
  e.not_sent = not_sent;
  return e;
}

bool Idempotent(const std::string& method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS";
}

bool HasLineBreak(std::string_view s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

// One keep-alive connection, plain or TLS, and the io_context its operations run on.
class Conn {
 public:
  Conn(bool tls, ssl::context& ctx) {
    if (tls) {
      tls_.emplace(ioc_, ctx);
    } else {
      plain_.emplace(ioc_);
    }
  }
  ~Conn() {
    beast::error_code ignored;
    Lowest().socket().close(ignored);
  }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  beast::tcp_stream& Lowest() { return tls_ ? beast::get_lowest_layer(*tls_) : *plain_; }
  template <class F>
  void With(F&& f) {
    if (tls_) {
      f(*tls_);
    } else {
      f(*plain_);
    }
  }
  // Runs the started operation to its end (its handler runs here, on the calling thread).
  void Run() {
    ioc_.restart();
    ioc_.run();
  }
  // From any thread: aborts the operation running (or the next one to start).
  void CancelSoon() {
    net::post(ioc_, [this] { Lowest().cancel(); });
  }

  ApiError Connect(const Endpoint& to, const std::string& verify_name, bool verify, std::chrono::milliseconds timeout) {
    const std::string where = to.host_header;
    tcp::resolver resolver(ioc_);
    beast::error_code ec;
    auto addresses = resolver.resolve(to.host, to.port, ec);
    if (ec) return Failure(ErrorKind::kConnection, "cannot resolve " + to.host + ": " + ec.message(), true);
    Lowest().expires_after(timeout);
    Lowest().async_connect(addresses, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
    Run();
    if (ec == beast::error::timeout) {
      return Failure(ErrorKind::kTimeout, "connect to " + where + ": timed out", true);
    }
    if (ec) return Failure(ErrorKind::kConnection, "connect to " + where + ": " + ec.message(), true);
    beast::error_code ignored;
    Lowest().socket().set_option(tcp::no_delay(true), ignored);
    if (!tls_) return {};
    // SNI names a host, never an address (RFC 6066).
    if (!IsIpAddress(verify_name)) SSL_set_tlsext_host_name(tls_->native_handle(), verify_name.c_str());
    if (verify) tls_->set_verify_callback(ssl::host_name_verification(verify_name));
    Lowest().expires_after(timeout);
    tls_->async_handshake(ssl::stream_base::client, [&](beast::error_code e) { ec = e; });
    Run();
    if (ec) {
      // It connected: not "not sent", and a handshake refused is not worth a quick retry either.
      return Failure(ec == beast::error::timeout ? ErrorKind::kTimeout : ErrorKind::kConnection,
                     "TLS handshake with " + where + ": " + ec.message());
    }
    return {};
  }

  // True when the server has closed the connection (or sent something unasked) since its last
  // answer: such a connection is not used again.
  bool Stale() {
    if (buffer_.size() > 0) return true;
    pollfd p{Lowest().socket().native_handle(), POLLIN, 0};
    return ::poll(&p, 1, 0) != 0;
  }

  beast::flat_buffer buffer_;
  SteadyClock::time_point idle_since_;

 private:
  net::io_context ioc_{1};
  std::optional<beast::tcp_stream> plain_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls_;
};

// Why one exchange on a connection failed, and whether it may be tried again on another.
struct Broken {
  ApiError error;
  bool nothing_read = false;  // not one byte of an answer arrived
  bool write_failed = false;  // the request could not be written
};

ApiError StreamError(const beast::error_code& ec, const std::string& what, bool cancelled) {
  if (cancelled) return Failure(ErrorKind::kCancelled, "cancelled");
  if (ec == beast::error::timeout) return Failure(ErrorKind::kTimeout, what + ": timed out");
  return Failure(ErrorKind::kConnection, what + ": " + ec.message());
}

// The lines of a watch's body, read in blocks.
class BeastLineStream final : public LineStream {
 public:
  BeastLineStream(std::unique_ptr<Conn> conn, bhttp::response_parser<bhttp::empty_body>&& head,
                  std::chrono::milliseconds idle, const char* what)
      : conn_(std::move(conn)), parser_(std::move(head)), idle_(idle), what_(what) {
    parser_.body_limit(boost::none);  // a watch has no end of its own
    done_ = parser_.is_done();        // no body at all (a read now would wait for bytes never sent)
  }

  bool ReadLine(std::string* line, ApiError* error) override {
    while (true) {
      const std::size_t nl = std::string_view(buf_.data(), end_).find('\n', scanned_);
      if (nl != std::string_view::npos) {
        std::size_t stop = nl;
        if (stop > start_ && buf_[stop - 1] == '\r') --stop;
        const std::size_t from = start_;
        start_ = scanned_ = nl + 1;
        if (stop == from) continue;  // an empty line between events
        line->assign(buf_.data() + from, stop - from);
        return true;
      }
      scanned_ = end_;
      if (end_ - start_ > kMaxLineBytes) {
        *error = Failure(ErrorKind::kDecode, "watch event larger than " + std::to_string(kMaxLineBytes) + " bytes");
        return false;
      }
      if (done_) {
        if (start_ == end_) return false;
        line->assign(buf_.data() + start_, end_ - start_);
        start_ = scanned_ = end_;
        return true;
      }
      if (!Fill(error)) return false;
    }
  }

  void Cancel() override {
    cancelled_ = true;
    conn_->CancelSoon();
  }

  bool ReadSome(std::string* out, ApiError* error) override {
    while (start_ == end_) {
      if (done_) return false;
      if (!Fill(error)) return false;
    }
    out->append(buf_.data() + start_, end_ - start_);
    start_ = scanned_ = end_;
    return true;
  }

 private:
  // Reads what arrives next (at most one block) after the unread bytes.
  bool Fill(ApiError* error) {
    if (cancelled_) {
      *error = Failure(ErrorKind::kCancelled, "cancelled");
      return false;
    }
    if (start_ > 0) {  // keep only the unread bytes, at the front
      std::memmove(buf_.data(), buf_.data() + start_, end_ - start_);
      end_ -= start_;
      scanned_ -= start_;
      start_ = 0;
    }
    if (buf_.size() - end_ < kReadBlock / 4) buf_.resize(std::max(buf_.size() * 2, end_ + kReadBlock));
    auto& body = parser_.get().body();
    const std::size_t room = std::min(buf_.size() - end_, kReadBlock);
    body.data = buf_.data() + end_;
    body.size = room;
    beast::error_code ec;
    conn_->Lowest().expires_after(idle_);
    conn_->With([&](auto& stream) {
      bhttp::async_read_some(stream, conn_->buffer_, parser_, [&](beast::error_code e, std::size_t) { ec = e; });
    });
    conn_->Run();
    end_ += room - body.size;
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec || cancelled_) {
      *error = StreamError(ec, what_, cancelled_);
      return false;
    }
    if (parser_.is_done()) done_ = true;
    return true;
  }

  std::unique_ptr<Conn> conn_;
  bhttp::response_parser<bhttp::buffer_body> parser_;
  std::chrono::milliseconds idle_;
  const char* what_;  // for errors: "watch stream", "response body"
  std::atomic<bool> cancelled_{false};
  bool done_ = false;
  std::string buf_ = std::string(kReadBlock, '\0');  // bytes read: the unread ones are [start_, end_)
  std::size_t start_ = 0;
  std::size_t end_ = 0;
  std::size_t scanned_ = 0;  // no newline in [start_, scanned_)
};

class BeastTransport final : public HttpTransport {
 public:
  BeastTransport(RestConfig cfg, Endpoint to, std::chrono::seconds idle)
      : cfg_(std::move(cfg)), to_(std::move(to)), idle_(idle), ctx_(ssl::context::tls_client) {
    ConfigureTls(ctx_, cfg_);
    verify_name_ = cfg_.tls_server_name.empty() ? to_.host : cfg_.tls_server_name;
  }
  ~BeastTransport() override = default;

  HttpResponse Do(const HttpRequest& request) override {
    HttpResponse out;
    bhttp::request<bhttp::string_body> req;
    if (ApiError bad = Build(request, &req)) {
      out.error = std::move(bad);
      return out;
    }
    const bool head = request.method == "HEAD";
    for (int attempt = 0;; ++attempt) {
      bool reused = false;
      ApiError err;
      std::unique_ptr<Conn> conn = Acquire(request.timeout, &reused, &err);
      if (!conn) {
        out.error = std::move(err);
        return out;
      }
      bhttp::response_parser<bhttp::string_body> parser;
      parser.header_limit(kMaxHeaderBytes);
      parser.body_limit(kMaxBodyBytes);
      if (head) parser.skip(true);
      Broken broken;
      if (Exchange(*conn, req, parser, request.timeout, &broken)) {
        auto& res = parser.get();
        out.status = static_cast<int>(res.result_int());
        if (auto it = res.find("Retry-After"); it != res.end()) out.retry_after = std::string(it->value());
        out.body = std::move(res.body());
        if (res.keep_alive()) Release(std::move(conn));
        return out;
      }
      // A kept connection the server had closed: the request did not reach it, or (for a GET) may
      // simply be sent again. Once, on a new connection.
      if (reused && attempt == 0 && broken.nothing_read && (broken.write_failed || Idempotent(request.method))) {
        continue;
      }
      out.error = std::move(broken.error);
      return out;
    }
  }

  StreamResponse Stream(const HttpRequest& request) override {
    return Open(request, std::chrono::duration_cast<std::chrono::milliseconds>(idle_), "watch stream");
  }

  StreamResponse Fetch(const HttpRequest& request) override { return Open(request, request.timeout, "response body"); }

 private:
  // Sends the request and returns when the headers are in; a 2xx body is left to the stream, every
  // wait bounded by `idle`.
  StreamResponse Open(const HttpRequest& request, std::chrono::milliseconds idle, const char* what) {
    StreamResponse out;
    bhttp::request<bhttp::string_body> req;
    if (ApiError bad = Build(request, &req)) {
      out.head.error = std::move(bad);
      return out;
    }
    for (int attempt = 0;; ++attempt) {
      bool reused = false;
      ApiError err;
      std::unique_ptr<Conn> conn = Acquire(idle, &reused, &err);
      if (!conn) {
        out.head.error = std::move(err);
        return out;
      }
      bhttp::response_parser<bhttp::empty_body> head;
      head.header_limit(kMaxHeaderBytes);
      Broken broken;
      if (!Exchange(*conn, req, head, idle, &broken, /*header_only=*/true)) {
        if (reused && attempt == 0 && broken.nothing_read) continue;  // a watch is a GET
        out.head.error = std::move(broken.error);
        return out;
      }
      out.head.status = static_cast<int>(head.get().result_int());
      if (auto it = head.get().find("Retry-After"); it != head.get().end()) {
        out.head.retry_after = std::string(it->value());
      }
      if (out.head.status >= 200 && out.head.status <= 299) {
        out.stream = std::make_unique<BeastLineStream>(std::move(conn), std::move(head), idle, what);
        return out;
      }
      // Refused: its Status, for the error.
      bhttp::response_parser<bhttp::string_body> rest(std::move(head));
      rest.body_limit(kMaxErrorBodyBytes);
      if (ReadBody(*conn, rest, idle, &broken)) out.head.body = std::move(rest.get().body());
      return out;
    }
  }

  ApiError Build(const HttpRequest& r, bhttp::request<bhttp::string_body>* req) const {
    if (HasLineBreak(r.method) || HasLineBreak(r.path) || r.path.find(' ') != std::string::npos) {
      // Our own request is wrong: kConfig, never retried.
      return Failure(ErrorKind::kConfig, "request line has a space or line break");
    }
    if (bhttp::verb v = bhttp::string_to_verb(r.method); v != bhttp::verb::unknown) {
      req->method(v);
    } else {
      req->method_string(r.method);
    }
    req->target(to_.prefix + r.path);
    req->version(11);
    req->set(bhttp::field::host, to_.host_header);
    for (const auto& [k, v] : r.headers) {
      if (HasLineBreak(k) || HasLineBreak(v)) {
        return Failure(ErrorKind::kConfig, "header " + k + " has a line break");
      }
      req->insert(k, v);
    }
    if (!r.body.empty() || r.method == "POST" || r.method == "PUT" || r.method == "PATCH") {
      req->set(bhttp::field::content_type, r.content_type.empty() ? "application/json" : r.content_type);
      req->body() = r.body;
    }
    req->prepare_payload();
    return {};
  }

  // A kept connection when one is fresh, else a new one.
  std::unique_ptr<Conn> Acquire(std::chrono::milliseconds timeout, bool* reused, ApiError* error) {
    {
      std::lock_guard lock(mu_);
      const auto now = SteadyClock::now();
      while (!idle_conns_.empty()) {
        std::unique_ptr<Conn> c = std::move(idle_conns_.back());
        idle_conns_.pop_back();
        if (now - c->idle_since_ < kMaxIdleAge && !c->Stale()) {
          *reused = true;
          return c;
        }
      }
    }
    auto c = std::make_unique<Conn>(to_.tls, ctx_);
    *error = c->Connect(to_, verify_name_, !cfg_.insecure_skip_tls_verify, timeout);
    if (*error) return nullptr;
    return c;
  }

  void Release(std::unique_ptr<Conn> c) {
    if (c->buffer_.size() > 0) return;  // bytes past the answer: not a connection to trust again
    if (c->buffer_.capacity() > kKeptBufferBytes) c->buffer_.shrink_to_fit();  // a list's 64 KiB reads
    c->idle_since_ = SteadyClock::now();
    std::lock_guard lock(mu_);
    // The oldest wait at the front, and Acquire takes from the back: those past their age are
    // closed here, or a pool that is never drained would keep them open.
    auto fresh = std::find_if(idle_conns_.begin(), idle_conns_.end(),
                              [&](const auto& k) { return c->idle_since_ - k->idle_since_ < kMaxIdleAge; });
    idle_conns_.erase(idle_conns_.begin(), fresh);
    if (idle_conns_.size() < kMaxIdleConnections) idle_conns_.push_back(std::move(c));
  }

  // Writes the request and reads the answer (its header only, when `header_only`).
  template <class Parser>
  bool Exchange(Conn& conn, const bhttp::request<bhttp::string_body>& req, Parser& parser,
                std::chrono::milliseconds timeout, Broken* broken, bool header_only = false) {
    beast::error_code ec;
    conn.Lowest().expires_after(timeout);
    conn.With(
        [&](auto& stream) { bhttp::async_write(stream, req, [&](beast::error_code e, std::size_t) { ec = e; }); });
    conn.Run();
    if (ec) {
      broken->error = StreamError(ec, "sending the request to " + to_.host_header, false);
      broken->nothing_read = broken->write_failed = true;
      return false;
    }
    conn.Lowest().expires_after(timeout);
    conn.With([&](auto& stream) {
      bhttp::async_read_header(stream, conn.buffer_, parser, [&](beast::error_code e, std::size_t) { ec = e; });
    });
    conn.Run();
    if (ec) {
      broken->nothing_read = !parser.got_some() && conn.buffer_.size() == 0;
      broken->error = ReadError(ec, "reading the answer from " + to_.host_header);
      return false;
    }
    if (header_only) return true;
    return ReadBody(conn, parser, timeout, broken);
  }

  // Reads the rest of the body, each read waiting at most `timeout` for its bytes.
  template <class Parser>
  bool ReadBody(Conn& conn, Parser& parser, std::chrono::milliseconds timeout, Broken* broken) {
    beast::error_code ec;
    while (!parser.is_done()) {
      conn.Lowest().expires_after(timeout);
      conn.With([&](auto& stream) {
        bhttp::async_read_some(stream, conn.buffer_, parser, [&](beast::error_code e, std::size_t) { ec = e; });
      });
      conn.Run();
      if (ec) {
        broken->error = ReadError(ec, "reading the answer from " + to_.host_header);
        return false;
      }
    }
    return true;
  }

  static ApiError ReadError(const beast::error_code& ec, const std::string& what) {
    if (ec == bhttp::error::body_limit) {
      return Failure(ErrorKind::kDecode, "response larger than " + std::to_string(kMaxBodyBytes) + " bytes");
    }
    if (ec == bhttp::error::header_limit) {
      return Failure(ErrorKind::kDecode, "response header larger than " + std::to_string(kMaxHeaderBytes) + " bytes");
    }
    return StreamError(ec, what, false);
  }

  RestConfig cfg_;
  Endpoint to_;
  std::chrono::seconds idle_;
  ssl::context ctx_;
  std::string verify_name_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Conn>> idle_conns_;  // most recently used last
};

}  // namespace

std::unique_ptr<HttpTransport> NewHttpTransport(const RestConfig& config, std::chrono::seconds idle_timeout,
                                                std::string* error) {
  (void)kOpenSslWithoutAtexit;
  Endpoint to;
  if (!ParseServer(config.server, &to)) {
    *error = config.source + ": server \"" + config.server + "\" is not a valid URL";
    return nullptr;
  }
  // The TLS material is loaded now, so a bad certificate is one clear error at start-up instead
  // of a failure on every request.
  try {
    return std::make_unique<BeastTransport>(config, std::move(to), idle_timeout);
  } catch (const std::exception& e) {
    *error = config.source +
             ": unusable TLS material (certificate-authority, client-certificate or client-key): " + e.what();
    return nullptr;
  }
}

}  // namespace graydebug::kube
