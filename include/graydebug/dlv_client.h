#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

namespace graydebug::dlv {

enum class ErrorKind {
  kNone,
  kRefused,     // nothing listens at the address (ECONNREFUSED)
  kTimeout,     // connect or reply took longer than its timeout
  kBadReply,    // not a JSON-RPC reply (not JSON, wrong id, too large, closed mid-reply)
  kDlvError,    // dlv answered with an error string
  kConnection,  // any other socket error, or a bad address
};

const char* ErrorKindName(ErrorKind kind);  // "refused", "timeout", "bad-reply", "dlv-error", "connection"

struct Options {
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds reply_timeout{2000};  // from the request's first byte to the reply's last
  std::size_t max_reply_bytes = 4u << 20;
};

// The answer to one call: the "result" member on success, else the error.
struct Reply {
  ErrorKind error_kind = ErrorKind::kNone;
  std::string error;  // one line
  nlohmann::json result;
  std::chrono::microseconds latency{0};  // connect + request + reply
  bool ok() const { return error_kind == ErrorKind::kNone; }
};

// Decodes one JSON-RPC reply of dlv (the bytes before the first newline) to the call numbered
// `id`: the "result" member on success; kBadReply when it is not a JSON object or carries another
// id; kDlvError when its "error" member is set. Never throws. Client::Call uses it; so do the tests.
Reply DecodeReply(const std::string& method, const std::string& line, uint64_t id);

// A client of delve's JSON-RPC 1.0 API over TCP (headless `dlv --api-version=2`). Each call opens
// a connection, sends one request, reads one newline-terminated reply and closes: dlv runs with
// --accept-multiclient, so short connections never disturb the people debugging. Only read-only
// methods are exposed; nothing here detaches, halts, restarts or kills the target. Thread-safe
// (no shared state). Never throws.
class Client {
 public:
  // `address` is "host:port" or "[v6]:port".
  explicit Client(std::string address, Options options = {});

  // RPCServer.GetVersion: {"DelveVersion": "...", "APIVersion": 2, "Target": ...}.
  Reply GetVersion() const;
  // RPCServer.State with NonBlocking: true (a blocking State waits for the target to stop).
  Reply State() const;

  // One raw call of `method` with `params` (a JSON object): for tests and tools. Refuses methods
  // that would stop or detach the target (Detach, Restart, Command) with kConnection.
  Reply Call(const std::string& method, const nlohmann::json& params) const;

  const std::string& address() const { return address_; }

 private:
  std::string address_;
  Options options_;
};

}  // namespace graydebug::dlv
