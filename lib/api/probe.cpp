#include "graydebug/api/probe.h"

#include <cmath>

#include "graydebug/json_read.h"

namespace graydebug::api {

using json = nlohmann::json;

std::string ProbeReply::ToJson() const {
  json body = {{"ok", ok},
               {"latencySeconds", latency_seconds},
               {"dlvVersion", dlv_version},
               {"error", error},
               {"cached", cached}};
  if (!error_kind.empty()) body["errorKind"] = error_kind;
  if (shared) body["shared"] = true;
  return body.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

std::optional<ProbeReply> ProbeReply::Parse(std::string_view body) {
  json j = json::parse(body, nullptr, false);
  if (!j.is_object() || !j.contains("ok") || !j["ok"].is_boolean()) return std::nullopt;
  ProbeReply r;
  r.ok = j["ok"].get<bool>();
  double latency = jsonr::Number(j, "latencySeconds").value_or(0);
  r.latency_seconds = latency >= 0 ? latency : 0;
  r.dlv_version = jsonr::Str(j, "dlvVersion");
  r.error = jsonr::Str(j, "error");
  r.error_kind = jsonr::Str(j, "errorKind");
  r.cached = jsonr::Bool(j, "cached");
  r.shared = jsonr::Bool(j, "shared");
  return r;
}

}  // namespace graydebug::api
