#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace graydebug {

// Parses a Go/Kubernetes-style duration ("15m", "1h30m", "500ms", "2.5s", "0").
// Returns nullopt for anything else: empty strings, missing units, negative values, overflow
// past 10 years. Units: ns, us, ms, s, m, h (the precision kept is one millisecond).
std::optional<std::chrono::milliseconds> ParseDuration(std::string_view text);

// Formats a duration the way ParseDuration reads it back ("1h30m", "15m", "500ms", "0s").
std::string FormatDuration(std::chrono::milliseconds d);

}  // namespace graydebug
