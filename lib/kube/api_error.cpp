#include "graydebug/kube/api_error.h"

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>

namespace graydebug::kube {

const char* KindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kNone: return "None";
    case ErrorKind::kBadRequest: return "BadRequest";
    case ErrorKind::kUnauthorized: return "Unauthorized";
    case ErrorKind::kForbidden: return "Forbidden";
    case ErrorKind::kNotFound: return "NotFound";
    case ErrorKind::kMethodNotAllowed: return "MethodNotAllowed";
    case ErrorKind::kAlreadyExists: return "AlreadyExists";
    case ErrorKind::kConflict: return "Conflict";
    case ErrorKind::kGone: return "Gone";
    case ErrorKind::kInvalid: return "Invalid";
    case ErrorKind::kTooManyRequests: return "TooManyRequests";
    case ErrorKind::kServerError: return "ServerError";
    case ErrorKind::kTimeout: return "Timeout";
    case ErrorKind::kConnection: return "Connection";
    case ErrorKind::kDecode: return "Decode";
    case ErrorKind::kCancelled: return "Cancelled";
    case ErrorKind::kConfig: return "Config";
    case ErrorKind::kOther: return "Other";
  }
  return "Other";
}

bool ApiError::Retriable() const {
  switch (kind) {
    case ErrorKind::kTooManyRequests:
    case ErrorKind::kServerError:
    case ErrorKind::kTimeout:
    case ErrorKind::kConnection: return true;
    default: return false;
  }
}

std::string ApiError::ToString() const {
  std::string s = KindName(kind);
  if (http_status != 0) s += " (" + std::to_string(http_status) + ")";
  if (!message.empty()) s += ": " + message;
  return s;
}

ApiError ErrorFromResponse(int http_status, std::string_view body, std::string_view retry_after_header) {
  ApiError e;
  e.http_status = http_status;
  int retry_seconds = 0;
  auto status = nlohmann::json::parse(body, nullptr, false);
  // Members are found, never indexed: operator[] on a const object with a missing key reads the
  // map's end() (undefined behaviour; an assertion in a Debug build), and value() throws on a
  // member of another type.
  auto member = [](const nlohmann::json& obj, const char* key) -> const nlohmann::json* {
    if (!obj.is_object()) return nullptr;
    auto it = obj.find(key);
    return it == obj.end() ? nullptr : &*it;
  };
  const nlohmann::json* kind = member(status, "kind");
  if (kind != nullptr && kind->is_string() && kind->get_ref<const std::string&>() == "Status") {
    if (auto* r = member(status, "reason"); r != nullptr && r->is_string()) e.reason = r->get<std::string>();
    if (auto* m = member(status, "message"); m != nullptr && m->is_string()) e.message = m->get<std::string>();
    const nlohmann::json* details = member(status, "details");
    const nlohmann::json* retry = details != nullptr ? member(*details, "retryAfterSeconds") : nullptr;
    if (const nlohmann::json* n = details != nullptr ? member(*details, "name") : nullptr;
        n != nullptr && n->is_string()) {
      e.name = n->get<std::string>();
    }
    if (retry != nullptr && retry->is_number_integer()) {
      retry_seconds = static_cast<int>(std::clamp<int64_t>(retry->get<int64_t>(), 0, 600));
    }
  } else {
    // Not a Status: keep the start of the body as the message, on one line.
    std::string text(body.substr(0, 200));
    for (char& c : text) {
      if (c == '\n' || c == '\r') c = ' ';
    }
    e.message = text;
  }
  if (!retry_after_header.empty()) {
    int v = 0;
    auto [end, ec] =
        std::from_chars(retry_after_header.data(), retry_after_header.data() + retry_after_header.size(), v);
    if (ec == std::errc() && v >= 0) retry_seconds = v;
  }
  e.retry_after = std::chrono::seconds(std::min(retry_seconds, 600));
  switch (http_status) {
    case 400: e.kind = ErrorKind::kBadRequest; break;
    case 401: e.kind = ErrorKind::kUnauthorized; break;
    case 403: e.kind = ErrorKind::kForbidden; break;
    case 404: e.kind = ErrorKind::kNotFound; break;
    case 405: e.kind = ErrorKind::kMethodNotAllowed; break;
    case 409: e.kind = e.reason == "AlreadyExists" ? ErrorKind::kAlreadyExists : ErrorKind::kConflict; break;
    case 410: e.kind = ErrorKind::kGone; break;
    case 422: e.kind = ErrorKind::kInvalid; break;
    case 429: e.kind = ErrorKind::kTooManyRequests; break;
    case 504: e.kind = ErrorKind::kTimeout; break;
    default: e.kind = http_status >= 500 ? ErrorKind::kServerError : ErrorKind::kOther; break;
  }
  if (e.message.empty()) e.message = e.reason.empty() ? "HTTP " + std::to_string(http_status) : e.reason;
  return e;
}

}  // namespace graydebug::kube
