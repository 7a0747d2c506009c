#pragma once

#include <optional>
#include <string>

#include "graydebug/clock.h"

namespace graydebug::kube {

// RFC 3339 in UTC, the one formatter of every timestamp graydebug writes. fraction_digits 0:
// metav1.Time ("2026-11-26T14:00:00Z"); 3: log lines ("...T14:00:00.123Z"); 6: metav1.MicroTime
// ("...T14:00:00.123456Z"); other values count as 0.
std::string FormatTime(Clock::Wall t, int fraction_digits = 0);
// Parses RFC 3339 ("Z" or a numeric offset, optional fraction); nullopt when malformed.
std::optional<Clock::Wall> ParseTime(const std::string& text);

}  // namespace graydebug::kube
