#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace graydebug {

// "" when `url` is an http:// URL HttpGet can fetch ("http://host[:port][/path]"), else why not.
std::string ValidateHttpUrl(const std::string& url);

struct HttpGetResult {
  int status = 0;          // the HTTP status, 0 when there was no valid answer
  std::string body;        // up to Content-Length, else to the end of the connection
  std::string error;       // one line; "" when an HTTP answer (of any status) was read in full
  bool refused = false;    // nothing listened (ECONNREFUSED)
  bool timed_out = false;  // the exchange did not finish within the timeout
  bool ok() const { return error.empty() && status == 200; }
};

// One HTTP/1.0 GET of `url` (plain http only, for loopback and pod-network peers: the agent's
// expvar source and /probe/dlv) with `timeout` for the whole exchange. An answer larger than
// `max_bytes`, a chunked answer or a malformed status line is an error. Never throws; blocks the
// caller for at most `timeout` (plus name resolution of a non-numeric host).
// `connect_timeout` (0: the whole `timeout`) bounds the TCP connect alone, so an unreachable peer
// fails fast while a slow answer still gets the full time.
HttpGetResult HttpGet(const std::string& url, std::chrono::milliseconds timeout, std::size_t max_bytes = 4u << 20,
                      std::chrono::milliseconds connect_timeout = std::chrono::milliseconds(0));

}  // namespace graydebug
