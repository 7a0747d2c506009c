// A minimal Boost.Beast HTTPS server over the same admission code as graydebug-webhook
// (AdmissionHandler + SidecarInjector from graydebug_webhook_core), for bench/webhook.bench.sh
// (issue #10): it measured what the cpprest listener cost; since graydebug's own server moved to
// Beast (issue #11) it shows what that server adds to a bare one. Bench only, never shipped: no
// certificate reload, no metrics, no graceful drain, no limits.
//
//   beast_webhook_bench --listen 127.0.0.1:8443 --tls-cert-file F --tls-key-file F [--threads N]
//
// Serves POST /mutate/pods and GET /healthz|/readyz; HTTP/1.1 keep-alive over TLS 1.2+.
#include <utility>  // Boost 1.74's Asio needs it before <boost/asio.hpp> in C++20

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "graydebug/version.h"
#include "webhook/admission.h"
#include "webhook/cluster_state.h"
#include "webhook/injection_config.h"
#include "webhook/sidecar_injector.h"

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using graydebug::webhook::AdmissionHandler;

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, ssl::context& ctx, const AdmissionHandler& handler)
      : stream_(std::move(socket), ctx), handler_(handler) {}

  void Run() {
    // Without TCP_NODELAY the handshake's server flight meets Nagle + delayed ACK (~40 ms).
    beast::error_code ignored;
    beast::get_lowest_layer(stream_).socket().set_option(tcp::no_delay(true), ignored);
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(30));
    stream_.async_handshake(ssl::stream_base::server, [self = shared_from_this()](beast::error_code ec) {
      if (!ec) self->Read();
    });
  }

 private:
  void Read() {
    parser_.emplace();
    parser_->body_limit(graydebug::webhook::kMaxAdmissionBodyBytes);
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(75));  // idle keep-alive
    http::async_read(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec == http::error::body_limit) return self->Reply(413, "text/plain", "request body is too large\n", false);
      if (ec) return self->Close();
      self->Handle();
    });
  }

  void Handle() {
    http::request<http::string_body> req = parser_->release();
    bool keep_alive = req.keep_alive();
    if (req.method() == http::verb::post && req.target() == "/mutate/pods") {
      beast::string_view ct = req[http::field::content_type];  // boost::string_view in Boost 1.74
      auto reply = handler_.MutatePods(std::string_view(ct.data(), ct.size()), req.body());
      return Reply(reply.status, reply.content_type, std::move(reply.body), keep_alive);
    }
    if (req.method() == http::verb::get && (req.target() == "/healthz" || req.target() == "/readyz")) {
      return Reply(200, "text/plain", "ok\n", keep_alive);
    }
    Reply(404, "text/plain", "not found\n", keep_alive);
  }

  void Reply(int status, const std::string& content_type, std::string body, bool keep_alive) {
    res_ = {};
    res_.result(static_cast<http::status>(status));
    res_.version(11);
    res_.set(http::field::content_type, content_type);
    res_.keep_alive(keep_alive);
    res_.body() = std::move(body);
    res_.prepare_payload();
    http::async_write(stream_, res_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return;
      if (!self->res_.keep_alive()) return self->Close();
      self->Read();
    });
  }

  void Close() {
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(5));
    stream_.async_shutdown([self = shared_from_this()](beast::error_code) {});
  }

  beast::ssl_stream<beast::tcp_stream> stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
  const AdmissionHandler& handler_;
};

void Accept(tcp::acceptor& acceptor, ssl::context& ctx, const AdmissionHandler& handler) {
  acceptor.async_accept(net::make_strand(acceptor.get_executor()), [&](beast::error_code ec, tcp::socket socket) {
    if (!ec) std::make_shared<Session>(std::move(socket), ctx, handler)->Run();
    Accept(acceptor, ctx, handler);
  });
}

}  // namespace

int main(int argc, char** argv) {
  std::string listen = "127.0.0.1:8443", cert, key;
  int threads = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--listen") {
      listen = value;
    } else if (flag == "--tls-cert-file") {
      cert = value;
    } else if (flag == "--tls-key-file") {
      key = value;
    } else if (flag == "--threads") {
      threads = std::max(1, std::atoi(value.c_str()));
    } else {
      std::fprintf(stderr, "beast_webhook_bench: unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  auto colon = listen.rfind(':');
  if (cert.empty() || key.empty() || colon == std::string::npos) {
    std::fprintf(stderr,
                 "usage: beast_webhook_bench --listen host:port --tls-cert-file F --tls-key-file F [--threads N]\n");
    return 2;
  }
  try {
    ssl::context ctx(ssl::context::tls_server);
    ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                    ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
    ctx.use_certificate_chain_file(cert);
    ctx.use_private_key_file(key, ssl::context::pem);

    graydebug::webhook::SidecarInjector injector(graydebug::webhook::InjectionConfig{}, graydebug::Version());
    graydebug::webhook::StandaloneBreakers breakers;
    graydebug::webhook::ClusterView view;
    view.breakers = &breakers;
    AdmissionHandler handler(injector, view);

    net::io_context ioc(threads);
    tcp::endpoint ep(net::ip::make_address(listen.substr(0, colon)),
                     static_cast<unsigned short>(std::stoi(listen.substr(colon + 1))));
    tcp::acceptor acceptor(net::make_strand(ioc), ep, /*reuse_address=*/true);
    Accept(acceptor, ctx, handler);
    net::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait([&](beast::error_code, int) { ioc.stop(); });
    std::vector<std::thread> pool;
    for (int i = 1; i < threads; ++i) pool.emplace_back([&] { ioc.run(); });
    ioc.run();
    for (auto& t : pool) t.join();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "beast_webhook_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
