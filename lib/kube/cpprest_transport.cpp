// The only file of the Kubernetes client that includes cpprest (its headers cost ~7 s per file).
#include <utility>  // must precede boost/asio with C++20 (Boost 1.74)

#include <cpprest/http_client.h>
#include <cpprest/rawptrstream.h>

#include <boost/asio/ssl.hpp>
#include <map>
#include <mutex>

#include "../cpprest_pool.h"
#include "graydebug/kube/transport.h"
#include "graydebug/log.h"

namespace graydebug::kube {
namespace {

namespace http = web::http;
namespace client = web::http::client;

constexpr std::size_t kMaxBodyBytes = 512u << 20;  // a list of 10k big objects fits
constexpr std::size_t kMaxLineBytes = 64u << 20;   // one watch event

ApiError FromException(const std::exception& e, bool cancelled) {
  ApiError err;
  if (cancelled) {
    err.kind = ErrorKind::kCancelled;
    err.message = "cancelled";
    return err;
  }
  err.kind = ErrorKind::kConnection;
  err.message = e.what();
  if (const auto* he = dynamic_cast<const http::http_exception*>(&e)) {
    // The client's timeout is an idle timeout: error 110 (ETIMEDOUT) means "nothing arrived".
    if (he->error_code().value() == 110 || he->error_code() == std::errc::timed_out) err.kind = ErrorKind::kTimeout;
    // cpprest maps a refused connect (and a broken pipe while writing the header) to EHOSTUNREACH.
    err.not_sent = he->error_code() == std::errc::host_unreachable || he->error_code() == std::errc::connection_refused;
  }
  for (char& c : err.message) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return err;
}

void ConfigureTls(boost::asio::ssl::context& ctx, const RestConfig& cfg) {
  ctx.set_options(boost::asio::ssl::context::default_workarounds | boost::asio::ssl::context::no_sslv2 |
                  boost::asio::ssl::context::no_sslv3 | boost::asio::ssl::context::no_tlsv1 |
                  boost::asio::ssl::context::no_tlsv1_1);
  if (!cfg.ca_pem.empty()) {
    ctx.add_certificate_authority(boost::asio::buffer(cfg.ca_pem));
  } else {
    ctx.set_default_verify_paths();
  }
  if (!cfg.client_cert_pem.empty()) {
    ctx.use_certificate_chain(boost::asio::buffer(cfg.client_cert_pem));
    ctx.use_private_key(boost::asio::buffer(cfg.client_key_pem), boost::asio::ssl::context::pem);
  }
}

http::http_request ToCpprest(const HttpRequest& r) {
  http::http_request req(r.method);
  req.set_request_uri(r.path);
  for (const auto& [k, v] : r.headers) req.headers().add(k, v);
  if (!r.body.empty() || r.method == "POST" || r.method == "PUT" || r.method == "PATCH") {
    req.set_body(r.body, r.content_type.empty() ? "application/json" : r.content_type);
  }
  return req;
}

class CpprestLineStream final : public LineStream {
 public:
  CpprestLineStream(http::http_response response, pplx::cancellation_token_source cts)
      : response_(std::move(response)), body_(response_.body()), cts_(std::move(cts)) {}
  ~CpprestLineStream() override {
    cts_.cancel();
    try {
      body_.close().wait();
    } catch (...) {
    }
  }

  // Reads what has arrived in blocks and splits it into lines here: cpprest's istream::read_line
  // takes the buffer's lock once per byte and hands every 16 bytes on through a task, which cost
  // ~250 µs per 1.3 KB watch event.
  bool ReadLine(std::string* line, ApiError* error) override {
    using traits = concurrency::streams::streambuf<uint8_t>::traits;
    try {
      auto sb = body_.streambuf();
      while (true) {
        const std::size_t nl = pending_.find('\n', scanned_);
        if (nl != std::string::npos) {
          std::size_t end = nl;
          if (end > start_ && pending_[end - 1] == '\r') --end;
          const std::size_t from = start_;
          start_ = scanned_ = nl + 1;
          if (end == from) continue;  // an empty line between events
          line->assign(pending_, from, end - from);
          return true;
        }
        if (pending_.size() - start_ > kMaxLineBytes) {
          error->kind = ErrorKind::kDecode;
          error->message = "watch event larger than " + std::to_string(kMaxLineBytes) + " bytes";
          return false;
        }
        if (start_ > 0 && start_ * 2 >= pending_.size()) {  // keep the buffer to about one line
          pending_.erase(0, start_);
          start_ = 0;
        }
        scanned_ = pending_.size();
        std::size_t avail = sb.in_avail();
        if (avail == 0) {  // wait for the next byte (or the end)
          const auto c = sb.bumpc().get();
          if (c == traits::eof()) {
            if (start_ == pending_.size()) return false;
            line->assign(pending_, start_, std::string::npos);
            start_ = scanned_ = pending_.size();
            return true;
          }
          pending_ += static_cast<char>(c);
          avail = sb.in_avail();
        }
        if (avail > 0) {
          const std::size_t at = pending_.size(), want = std::min<std::size_t>(avail, 64u << 10);
          pending_.resize(at + want);
          // No more than has arrived, so this completes at once.
          const std::size_t got = sb.getn(reinterpret_cast<uint8_t*>(pending_.data() + at), want).get();
          pending_.resize(at + (got <= want ? got : 0));
        }
      }
    } catch (const std::exception& e) {
      *error = FromException(e, cts_.get_token().is_canceled());
      return false;
    }
  }

  void Cancel() override { cts_.cancel(); }

 private:
  http::http_response response_;
  concurrency::streams::istream body_;
  pplx::cancellation_token_source cts_;
  std::string pending_;      // bytes read and not yet returned, from start_
  std::size_t start_ = 0;    // where the next line begins
  std::size_t scanned_ = 0;  // no newline before this
};

class CpprestTransport final : public HttpTransport {
 public:
  CpprestTransport(RestConfig cfg, std::chrono::seconds idle) : cfg_(std::move(cfg)), idle_(idle) {}

  HttpResponse Do(const HttpRequest& request) override {
    HttpResponse out;
    pplx::cancellation_token_source cts;
    try {
      http::http_response resp = ClientFor(request.timeout).request(ToCpprest(request), cts.get_token()).get();
      out.status = resp.status_code();
      if (resp.headers().has("Retry-After")) out.retry_after = resp.headers()["Retry-After"];
      auto length = resp.headers().content_length();
      if (length > kMaxBodyBytes) {
        out.status = 0;
        out.error = {ErrorKind::kDecode, 0, "", "response larger than " + std::to_string(kMaxBodyBytes) + " bytes"};
        return out;
      }
      out.body = resp.extract_utf8string(true).get();
    } catch (const std::exception& e) {
      out.status = 0;
      out.error = FromException(e, false);
    }
    return out;
  }

  StreamResponse Stream(const HttpRequest& request) override {
    StreamResponse out;
    pplx::cancellation_token_source cts;
    try {
      http::http_response resp = StreamClient().request(ToCpprest(request), cts.get_token()).get();
      out.head.status = resp.status_code();
      if (resp.headers().has("Retry-After")) out.head.retry_after = resp.headers()["Retry-After"];
      if (out.head.status < 200 || out.head.status > 299) {
        out.head.body = resp.extract_utf8string(true).get();
        return out;
      }
      out.stream = std::make_unique<CpprestLineStream>(std::move(resp), std::move(cts));
    } catch (const std::exception& e) {
      out.head.status = 0;
      out.head.error = FromException(e, false);
    }
    return out;
  }

  client::http_client_config Config(std::chrono::milliseconds timeout) const {
    client::http_client_config c;
    c.set_timeout(std::chrono::duration_cast<std::chrono::microseconds>(timeout));
    c.set_validate_certificates(!cfg_.insecure_skip_tls_verify);
    RestConfig tls = cfg_;
    c.set_ssl_context_callback([tls](boost::asio::ssl::context& ctx) { ConfigureTls(ctx, tls); });
    return c;
  }

 private:
  client::http_client& ClientFor(std::chrono::milliseconds timeout) {
    std::lock_guard lock(mu_);
    auto& slot = clients_[timeout.count()];
    if (!slot) slot = std::make_unique<client::http_client>(cfg_.server, Config(timeout));
    return *slot;
  }
  client::http_client& StreamClient() {
    return ClientFor(std::chrono::duration_cast<std::chrono::milliseconds>(idle_));
  }

  RestConfig cfg_;
  std::chrono::seconds idle_;
  std::mutex mu_;
  std::map<int64_t, std::unique_ptr<client::http_client>> clients_;
};

}  // namespace

std::unique_ptr<HttpTransport> NewCpprestTransport(const RestConfig& config, std::chrono::seconds idle_timeout,
                                                   std::string* error) {
  // cpprest's pool must be sized before first use; the first caller in the process wins.
  EnsureCpprestThreadPool(4);
  if (!config.tls_server_name.empty()) {
    log::Warn(
        "tls-server-name is not supported (cpprest cannot override the verified name); the server's "
        "certificate must name the server address",
        {{"tls_server_name", config.tls_server_name}, {"server", config.server}});
  }
  // Load the TLS material once now, so a bad certificate is one clear error at start-up instead
  // of a failure on every request.
  try {
    boost::asio::ssl::context ctx(boost::asio::ssl::context::tls_client);
    ConfigureTls(ctx, config);
  } catch (const std::exception& e) {
    *error = config.source +
             ": unusable TLS material (certificate-authority, client-certificate or client-key): " + e.what();
    return nullptr;
  }
  try {
    web::uri check(config.server);
    (void)check;
  } catch (const std::exception& e) {
    *error = config.source + ": server \"" + config.server + "\" is not a valid URL";
    return nullptr;
  }
  return std::make_unique<CpprestTransport>(config, idle_timeout);
}

}  // namespace graydebug::kube
