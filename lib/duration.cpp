#include "graydebug/duration.h"

#include <charconv>
#include <cmath>
#include <cstdint>

namespace graydebug {
namespace {

// Nanoseconds per unit; the longest unit names come first so "ms" wins over "m".
struct Unit {
  std::string_view name;
  double nanos;
};
constexpr Unit kUnits[] = {{"ns", 1.0}, {"us", 1e3}, {"µs", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}};
constexpr double kMaxNanos = 10.0 * 365 * 24 * 3600e9;

}  // namespace

std::optional<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  if (text == "0") return std::chrono::milliseconds{0};
  if (text.empty() || text.size() > 64) return std::nullopt;
  double total = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t start = i;
    bool dot = false;
    while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || (text[i] == '.' && !dot))) {
      dot = dot || text[i] == '.';
      ++i;
    }
    std::string_view number = text.substr(start, i - start);
    if (number.empty() || number == ".") return std::nullopt;
    const Unit* unit = nullptr;
    for (const Unit& u : kUnits) {
      if (text.substr(i, u.name.size()) == u.name) {
        // "m" must not match the start of "ms".
        if (u.name == "m" && text.substr(i, 2) == "ms") continue;
        unit = &u;
        break;
      }
    }
    if (unit == nullptr) return std::nullopt;
    i += unit->name.size();
    double value = 0;
    auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
    if (ec != std::errc() || end != number.data() + number.size()) return std::nullopt;
    total += value * unit->nanos;
    if (!std::isfinite(total) || total > kMaxNanos) return std::nullopt;
  }
  return std::chrono::milliseconds{static_cast<int64_t>(std::llround(total / 1e6))};
}

std::string FormatDuration(std::chrono::milliseconds d) {
  int64_t ms = d.count();
  if (ms == 0) return "0s";
  std::string out;
  if (ms < 0) {
    out = "-";
    ms = -ms;
  }
  const int64_t h = ms / 3'600'000, m = (ms / 60'000) % 60, s = (ms / 1000) % 60, rest = ms % 1000;
  if (h > 0) out += std::to_string(h) + "h";
  if (m > 0) out += std::to_string(m) + "m";
  if (s > 0) out += std::to_string(s) + "s";
  if (rest > 0) out += std::to_string(rest) + "ms";
  return out;
}

}  // namespace graydebug
