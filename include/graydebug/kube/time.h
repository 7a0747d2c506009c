#pragma once

#include <optional>
#include <string>

#include "graydebug/clock.h"

namespace graydebug::kube {

// metav1.Time: RFC 3339 in UTC with second precision ("2026-11-26T14:00:00Z").
std::string FormatTime(Clock::Wall t);
// Parses RFC 3339 ("Z" or a numeric offset, optional fraction); nullopt when malformed.
std::optional<Clock::Wall> ParseTime(const std::string& text);

}  // namespace graydebug::kube
