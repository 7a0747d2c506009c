#include "graydebug/api/circuits.h"

#include "graydebug/json_read.h"

namespace graydebug::api {

using json = nlohmann::json;

std::string CircuitDataKey(const std::string& release_key) {
  std::string k = release_key;
  if (auto slash = k.find('/'); slash != std::string::npos) k[slash] = '.';
  return k;
}

std::string ReleaseKeyOfCircuitDataKey(const std::string& data_key) {
  std::string k = data_key;
  if (auto dot = k.find('.'); dot != std::string::npos) k[dot] = '/';
  return k;
}

BreakerConfig ReaderBreakerConfig() {
  BreakerConfig c;
  c.max_window_attempts = 1 << 20;  // a ConfigMap holds at most 1 MiB: far fewer entries than this
  return c;
}

CircuitEntry DecodeCircuit(const std::string& data_key, const json& value, const BreakerConfig& config) {
  CircuitEntry e;
  e.release_key = ReleaseKeyOfCircuitDataKey(data_key);
  json j = value.is_string() ? json::parse(value.get<std::string>(), nullptr, false) : json();
  if (!j.is_object()) {
    e.problem = "not a JSON object";
    return e;
  }
  const std::string state = jsonr::Str(j, "state");
  e.breaker = CircuitBreaker::FromJson(j, config);
  if (!e.breaker)
    e.problem = state.empty() ? "no state"
                              : "unknown state " + json(state).dump(-1, ' ', false, json::error_handler_t::replace);
  return e;
}

std::vector<CircuitEntry> DecodeCircuits(const json& data, const BreakerConfig& config) {
  std::vector<CircuitEntry> out;
  if (!data.is_object()) return out;
  for (const auto& [key, value] : data.items()) out.push_back(DecodeCircuit(key, value, config));
  return out;
}

}  // namespace graydebug::api
