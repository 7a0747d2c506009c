#pragma once

#include <nlohmann/json.hpp>

namespace graydebug::testing {

// Equal values of equal types all the way down: nlohmann's == takes 5, 5u and 5.0 as equal, but a
// reader's is_number_unsigned() or get<> may care.
inline bool Same(const nlohmann::json& a, const nlohmann::json& b) {
  if (a.type() != b.type()) return false;
  if (a.is_object()) {
    if (a.size() != b.size()) return false;
    for (auto it = a.begin(); it != a.end(); ++it) {
      auto other = b.find(it.key());
      if (other == b.end() || !Same(*it, *other)) return false;
    }
    return true;
  }
  if (a.is_array()) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (!Same(a[i], b[i])) return false;
    }
    return true;
  }
  return a == b;
}

}  // namespace graydebug::testing
