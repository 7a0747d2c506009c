#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "graydebug/kube/api_error.h"
#include "graydebug/kube/config.h"

namespace graydebug::kube {

struct HttpRequest {
  std::string method = "GET";
  std::string path;  // path and query, e.g. "/api/v1/namespaces/default/pods?limit=500"
  std::string body;
  std::string content_type;  // for bodies: application/json, application/merge-patch+json, ...
  std::vector<std::pair<std::string, std::string>> headers;
  std::chrono::milliseconds timeout{30000};
};

struct HttpResponse {
  int status = 0;  // 0 when no answer came back; then `error` says why
  std::string body;
  std::string retry_after;  // the Retry-After header, if any
  ApiError error;           // transport failure (kConnection, kTimeout, kCancelled)
};

// A response body read line by line while it arrives (a watch).
class LineStream {
 public:
  virtual ~LineStream() = default;
  // Blocks for the next line (without the newline). Returns false at the end of the stream or on
  // an error (then *error is set; an idle stream ends with kTimeout, which means "reconnect").
  virtual bool ReadLine(std::string* line, ApiError* error) = 0;
  // Aborts the stream from another thread; ReadLine returns false soon after.
  virtual void Cancel() = 0;
  // Appends the bytes that arrived next (at most one read's worth) to *out, instead of lines.
  // Returns false at the end of the body (*error untouched) or on an error (set). Streams that
  // are only read by lines do not have it.
  virtual bool ReadSome(std::string* out, ApiError* error) {
    (void)out;
    *error = ApiError{ErrorKind::kOther, 0, "", "this stream is read by lines only"};
    return false;
  }
};

struct StreamResponse {
  HttpResponse head;                   // status, and the body when the status is not 2xx
  std::unique_ptr<LineStream> stream;  // set when the status is 2xx
};

// The wire: one implementation over Boost.Beast (the only place Beast and Asio appear in the client).
class HttpTransport {
 public:
  virtual ~HttpTransport() = default;
  // Sends one request and reads the whole answer. Never throws.
  virtual HttpResponse Do(const HttpRequest& request) = 0;
  // Sends one request and returns as soon as the headers arrive. Never throws.
  virtual StreamResponse Stream(const HttpRequest& request) = 0;
  // Like Do, but a 2xx body is read from `stream` (ReadSome) as it arrives, each wait bounded by
  // the request's timeout. The default reads it whole with Do and hands it over as one piece.
  virtual StreamResponse Fetch(const HttpRequest& request);
};

// An HTTPS (or HTTP) transport to `config.server` with its CA and client certificate; TLS 1.2+,
// the server's certificate checked against config.tls_server_name when set, else the server's host.
// Kept connections are reused. A request's timeout bounds each wait (connect, handshake, write,
// each read); `idle_timeout` ends a stream that receives nothing for that long. Returns nullptr
// and sets *error (one line) when the server URL or the TLS material is unusable.
std::unique_ptr<HttpTransport> NewHttpTransport(const RestConfig& config, std::chrono::seconds idle_timeout,
                                                std::string* error);

}  // namespace graydebug::kube
