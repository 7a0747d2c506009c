#include "graydebug/kube/api_error.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using graydebug::kube::ErrorFromResponse;
using graydebug::kube::ErrorKind;

TEST_CASE("Status objects map to typed errors with the server's message") {
  struct Case {
    int status;
    std::string reason;
    ErrorKind kind;
  };
  for (const Case& c : std::vector<Case>{{400, "BadRequest", ErrorKind::kBadRequest},
                                         {401, "Unauthorized", ErrorKind::kUnauthorized},
                                         {403, "Forbidden", ErrorKind::kForbidden},
                                         {404, "NotFound", ErrorKind::kNotFound},
                                         {409, "AlreadyExists", ErrorKind::kAlreadyExists},
                                         {409, "Conflict", ErrorKind::kConflict},
                                         {410, "Expired", ErrorKind::kGone},
                                         {422, "Invalid", ErrorKind::kInvalid},
                                         {429, "TooManyRequests", ErrorKind::kTooManyRequests},
                                         {500, "InternalError", ErrorKind::kServerError},
                                         {503, "ServiceUnavailable", ErrorKind::kServerError},
                                         {504, "Timeout", ErrorKind::kTimeout}}) {
    std::string body = R"({"kind":"Status","apiVersion":"v1","status":"Failure","message":"the message","reason":")" +
                       c.reason + R"(","code":)" + std::to_string(c.status) + "}";
    auto e = ErrorFromResponse(c.status, body);
    CAPTURE(c.status);
    CHECK(e.kind == c.kind);
    CHECK(e.reason == c.reason);
    CHECK(e.message == "the message");
    CHECK(e.http_status == c.status);
  }
}

TEST_CASE("retry hints: Retry-After header wins over details.retryAfterSeconds, capped") {
  std::string body = R"({"kind":"Status","reason":"TooManyRequests","details":{"retryAfterSeconds":3}})";
  CHECK(ErrorFromResponse(429, body).retry_after == std::chrono::seconds(3));
  CHECK(ErrorFromResponse(429, body, "7").retry_after == std::chrono::seconds(7));
  CHECK(ErrorFromResponse(429, body, "99999").retry_after == std::chrono::seconds(600));
  CHECK(ErrorFromResponse(429, body, "soon").retry_after == std::chrono::seconds(3));
  CHECK(ErrorFromResponse(429, body).Retriable());
  CHECK(ErrorFromResponse(500, "").Retriable());
  CHECK_FALSE(ErrorFromResponse(404, "").Retriable());
  CHECK_FALSE(ErrorFromResponse(409, "").Retriable());
}

TEST_CASE("a body that is not a Status becomes a one-line message") {
  auto e = ErrorFromResponse(502, "<html>\nbad gateway\n</html>");
  CHECK(e.kind == ErrorKind::kServerError);
  CHECK(e.message.find('\n') == std::string::npos);
  CHECK(e.message.find("bad gateway") != std::string::npos);
  CHECK(ErrorFromResponse(418, "").message == "HTTP 418");
  CHECK(ErrorFromResponse(404, "").ToString() == "NotFound (404): HTTP 404");
}

TEST_CASE("status without details.retryAfterSeconds, or with odd member types, is read safely") {
  // Found by `make test-asan` (a Debug build, so nlohmann's assertions are on): an AlreadyExists
  // Status whose details lack retryAfterSeconds made operator[] on a const object read the map's
  // end() -- undefined behaviour in every Release build.
  auto e = ErrorFromResponse(409, R"({"kind":"Status","reason":"AlreadyExists","details":{"name":"crud-1"}})");
  CHECK(e.kind == graydebug::kube::ErrorKind::kAlreadyExists);
  CHECK(e.retry_after == std::chrono::seconds(0));
  for (const char* odd : {R"({"kind":5})", R"({"kind":"Status","reason":7,"details":[1]})",
                          R"({"kind":"Status","details":{"retryAfterSeconds":"3"}})",
                          R"({"kind":"Status","details":{"retryAfterSeconds":99999999999}})"}) {
    CAPTURE(odd);
    CHECK_NOTHROW((void)ErrorFromResponse(500, odd));
  }
  CHECK(ErrorFromResponse(429, R"({"kind":"Status","details":{"retryAfterSeconds":99999999999}})").retry_after ==
        std::chrono::seconds(600));
}
