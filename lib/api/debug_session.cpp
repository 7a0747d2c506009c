#include "graydebug/api/debug_session.h"

#include <algorithm>

#include "graydebug/json_read.h"
#include "graydebug/kube/time.h"

namespace graydebug::api {
namespace {

using json = nlohmann::json;

std::optional<Clock::Wall> Time(const json& status, std::string_view key) {
  std::string text = jsonr::Str(status, key);
  return text.empty() ? std::nullopt : kube::ParseTime(text);
}

}  // namespace

bool IsFinalPhase(std::string_view p) {
  return p == phase::kExpired || p == phase::kFailed || p == phase::kRejected || p == phase::kTerminated;
}

void SetCondition(json& status, std::string_view type, bool value, const std::string& reason,
                  const std::string& message, int64_t generation, Clock::Wall now) {
  if (!status.is_object()) status = json::object();
  if (!status.contains("conditions") || !status["conditions"].is_array()) status["conditions"] = json::array();
  const std::string v = value ? "True" : "False";
  for (json& c : status["conditions"]) {
    if (jsonr::Str(c, "type") != type) continue;
    if (jsonr::Str(c, "status") != v) c["lastTransitionTime"] = kube::FormatTime(now);
    c["status"] = v;
    c["reason"] = reason;
    c["message"] = message;
    c["observedGeneration"] = generation;
    return;
  }
  status["conditions"].push_back({{"type", type},
                                  {"status", v},
                                  {"reason", reason},
                                  {"message", message},
                                  {"observedGeneration", generation},
                                  {"lastTransitionTime", kube::FormatTime(now)}});
}

const json& ConditionOf(const json& status, std::string_view type) {
  static const json kEmpty = json::object();
  for (const json& c : jsonr::Arr(status, "conditions")) {
    if (c.is_object() && jsonr::Str(c, "type") == type) return c;
  }
  return kEmpty;
}

SessionStatus SessionStatus::Of(const json& session) {
  const json& st = jsonr::Obj(session, "status");
  SessionStatus s;
  s.phase = jsonr::Str(st, "phase");
  s.pod = jsonr::Str(st, "pod");
  s.release = jsonr::Str(st, "release");
  s.connect = jsonr::Str(st, "connect");
  s.started_at = Time(st, "startedAt");
  s.expires_at = Time(st, "expiresAt");
  s.finished_at = Time(st, "finishedAt");
  const json& attach = jsonr::Obj(st, "attach");
  s.attach_attempts = static_cast<int64_t>(std::clamp(jsonr::Number(attach, "attempts").value_or(0), 0.0, 1e9));
  s.attach_latency_seconds = jsonr::Number(attach, "latencySeconds");
  return s;
}

json NewSession(const std::string& namespace_name, const std::string& name, json spec) {
  return {{"apiVersion", kApiVersion},
          {"kind", kSessionKind},
          {"metadata", {{"name", name}, {"namespace", namespace_name}}},
          {"spec", std::move(spec)}};
}

}  // namespace graydebug::api
