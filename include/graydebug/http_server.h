#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace graydebug::http {

// One request, its body already read in full (and within ServerOptions::max_body_bytes).
struct Request {
  std::string method;          // "GET", "POST", ...
  std::string path;            // as sent, still percent-encoded: "/mutate/pods"
  std::string query;           // without the '?': "timeout=10s"
  std::string content_type;    // the raw Content-Type header, "" when absent
  std::string remote_address;  // the peer's IP address
  std::string body;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

// Runs on one of the server's handler threads, never on its I/O thread, so it may block
// briefly. May throw: the server answers 500 with a one-line JSON error and logs the exception.
using Handler = std::function<Response(const Request&)>;

struct ServerOptions {
  // "host:port", ":port" (= 0.0.0.0:port) or "[ipv6]:port"; port 0 picks a free one.
  std::string listen = ":8443";
  // Both empty: plain HTTP (metrics, health). Both set: TLS, reloaded when the files change.
  std::string tls_cert_file;  // PEM: the certificate, then any intermediates
  std::string tls_key_file;   // PEM: its private key (RSA or ECDSA), unencrypted
  // Larger bodies get 413. Up to twice this much is still read (and dropped) so that the client
  // sees the 413; beyond that the connection is cut and the client may see a reset instead.
  std::size_t max_body_bytes = 6u << 20;
  // This server's handler threads, clamped to at least 2. Sockets, TLS and parsing run on one
  // I/O thread of the server's own.
  int threads = 2;
  std::chrono::milliseconds reload_interval{1000};  // how often the TLS files are checked
  std::chrono::milliseconds drain_timeout{10000};   // how long Stop waits for in-flight requests
  // A keep-alive connection with no request for this long is closed. Longer than the idle timeout
  // of Kubernetes' clients (90 s), so the server is never the one closing under a request.
  std::chrono::milliseconds idle_timeout{120000};
  // Once a request's first bytes arrived: how long its header, then its body, then the answer
  // may each take. A slower client (a slow-loris) is disconnected.
  std::chrono::milliseconds request_timeout{30000};
  // Connections open at once; more are closed as soon as they are accepted (and logged).
  int max_connections = 1024;
  // Request bodies held in memory at once, by declared length (a chunked body counts as
  // max_body_bytes): a request over it gets 503, so many large bodies cannot exhaust memory.
  // At least max_body_bytes.
  std::size_t max_buffered_bytes = 64u << 20;
  std::string name = "https";  // the "server" field of its log lines
};

// An HTTP/1.1 server (TLS 1.2+ when given a certificate) over Boost.Beast, shared by every
// graydebug binary that serves. Routes are exact paths; errors are answered in JSON
// ({"error": "..."}): 404 unknown path, 405 wrong method, 413 body too large, 431 header too
// large (64 KiB), 400 bad framing, 500 handler threw, 503 shutting down. "Expect: 100-continue"
// is answered. No exception ever leaves it.
class Server {
 public:
  // Checks the options and, for TLS, loads the certificate and key. Returns nullptr and one line
  // in *error when the listen address is malformed, only one of the TLS files is given, a
  // file is unreadable or not PEM, or the key does not match the certificate.
  static std::unique_ptr<Server> Create(ServerOptions options, std::string* error);
  ~Server();  // Stop()s
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Routes `method` on `path` to `handler`. Only before Start; later calls are ignored and logged.
  void Handle(std::string method, std::string path, Handler handler);

  // Binds and starts serving. Returns "" when listening, else one line (address in use, port
  // already used by another Server of this process, cannot resolve the host, started twice).
  std::string Start();

  // The bound port (the real one when listen asked for port 0); 0 before Start.
  int port() const;
  // True when a valid certificate/key pair is in use (always false for plain HTTP): for /readyz.
  bool TlsLoaded() const;
  // How many times changed TLS files were loaded (the initial load is not counted).
  std::uint64_t cert_reloads() const;

  // Graceful and idempotent: stops accepting connections, closes idle ones, answers further requests
  // with "Connection: close", waits up to drain_timeout for in-flight requests to finish, then
  // closes every connection and returns.
  void Stop();

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace graydebug::http
