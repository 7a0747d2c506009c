#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

// The agent's /probe/dlv reply (SPEC §5): the agent writes it, the controller's attach prober reads
// it. The reply crosses from the user's pod, so decoding trusts no member's type.
namespace graydebug::api {

inline constexpr char kProbePath[] = "/probe/dlv";

// errorKind values beside dlv::ErrorKindName's ("refused", "timeout", ...).
inline constexpr char kProbeBusy[] = "busy";                    // HTTP 503: the agent's own limit
inline constexpr char kProbeSameUserOnly[] = "same-user-only";  // dlv refuses other users

struct ProbeReply {
  bool ok = false;
  double latency_seconds = 0;  // the dlv call's own duration
  std::string dlv_version;     // DelveVersion when ok
  std::string error;           // one line when !ok
  std::string error_kind;      // "" when ok
  bool cached = false;         // answered from a dlv call that finished moments ago
  bool shared = false;         // waited for another caller's dlv call

  std::string ToJson() const;  // one line with a trailing newline; invalid UTF-8 replaced
  // nullopt when `body` is not a JSON object with a boolean "ok".
  static std::optional<ProbeReply> Parse(std::string_view body);
};

}  // namespace graydebug::api
