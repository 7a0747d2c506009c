#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace graydebug::kube {

// What went wrong with a Kubernetes API call, typed from the API's Status object (or from the
// transport when no answer came back).
enum class ErrorKind {
  kNone,
  kBadRequest,        // 400
  kUnauthorized,      // 401
  kForbidden,         // 403
  kNotFound,          // 404
  kMethodNotAllowed,  // 405
  kAlreadyExists,     // 409 reason AlreadyExists
  kConflict,          // 409 otherwise (resourceVersion mismatch)
  kGone,              // 410 (expired resourceVersion)
  kInvalid,           // 422
  kTooManyRequests,   // 429
  kServerError,       // 5xx
  kTimeout,           // 504, or no answer in time
  kConnection,        // connection refused/reset, TLS failure
  kDecode,            // an answer that is not what the API promises
  kCancelled,         // the caller stopped
  kConfig,            // a bad kubeconfig or request (our side)
  kOther,
};

struct ApiError {
  ErrorKind kind = ErrorKind::kNone;
  int http_status = 0;                  // 0 when no HTTP answer
  std::string reason;                   // Status.reason, e.g. "NotFound"
  std::string message;                  // Status.message or the transport's error, one line
  std::chrono::seconds retry_after{0};  // from Retry-After or Status.details.retryAfterSeconds
  // Status.details.name: the object the error is about; "" when it is about no object.
  std::string name{};
  // The request surely never reached a server: no connection could be made (the name did
  // not resolve, the connect was refused, unreachable or timed out). Even a POST may then be sent again.
  bool not_sent = false;

  explicit operator bool() const { return kind != ErrorKind::kNone; }
  // A 404 about no object: the path's resource type is not served (a CRD not installed), as opposed
  // to an object that does not exist.
  bool NotServed() const { return kind == ErrorKind::kNotFound && name.empty(); }
  // Worth trying again: 429, 5xx, timeouts, connection errors.
  bool Retriable() const;
  // "NotFound (404): debugsessions.graydebug.io \"x\" not found"
  std::string ToString() const;
};

// Builds the error for an HTTP answer with a non-2xx status; `body` is parsed as a Status when it
// is one. `retry_after_header` is the raw Retry-After header ("" when absent).
ApiError ErrorFromResponse(int http_status, std::string_view body, std::string_view retry_after_header = "");

const char* KindName(ErrorKind kind);

}  // namespace graydebug::kube
