// The one HTTP(S) server of graydebug, over Boost.Beast and Boost.Asio (header-only, Boost 1.74).
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
// This file: one connection's state machine (Connection, plain or TLS) and the accept that makes it.
#include <utility>  // must precede boost/asio with C++20 (Boost 1.74)

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <charconv>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "graydebug/log.h"
#include "http/server_core.h"

namespace graydebug::http::detail {
namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;

constexpr std::uint32_t kHeaderLimit = 64u << 10;
constexpr auto kHandshakeTimeout = std::chrono::seconds(10);
// After a final answer with "Connection: close": how long the rest of what the client sends is
// read and dropped, so that closing does not reset the connection before it read the answer.
constexpr auto kLingerTimeout = std::chrono::seconds(2);

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

// ---- One connection ---------------------------------------------------------------------------

using TcpStream = beast::basic_stream<tcp, Executor, beast::unlimited_rate_policy>;

template <class Stream>
Stream MakeStream(Socket socket, ssl::context* context) {
  if constexpr (std::is_same_v<Stream, TcpStream>) {
    return Stream(std::move(socket));
  } else {
    return Stream(std::move(socket), *context);
  }
}

// One client connection, plain (TcpStream) or TLS (beast::ssl_stream over it): reads a
// request, has a handler thread answer it, writes the answer, and again while keep-alive holds.
// Lives on the I/O thread; owned by its pending operations (and a handler run in progress).
template <class Stream>
class Connection : public ConnectionBase, public std::enable_shared_from_this<Connection<Stream>> {
  static constexpr bool kTls = !std::is_same_v<Stream, TcpStream>;

 public:
  Connection(std::shared_ptr<Core> core, Socket socket, std::string remote, std::shared_ptr<ssl::context> context)
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

  TcpStream& Lowest() { return beast::get_lowest_layer(stream_); }
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
    Lowest().socket().shutdown(net::socket_base::shutdown_send, ignored);
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

}  // namespace

void Core::OnAccept(beast::error_code ec, Socket socket) {
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
    auto c = std::make_shared<Connection<beast::ssl_stream<TcpStream>>>(shared_from_this(), std::move(socket),
                                                                        std::move(remote), pair->context);
    Register(c.get(), c);
    c->Start();
  } else {
    auto c = std::make_shared<Connection<TcpStream>>(shared_from_this(), std::move(socket), std::move(remote), nullptr);
    Register(c.get(), c);
    c->Start();
  }
}

}  // namespace graydebug::http::detail
