#pragma once

#include <initializer_list>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace graydebug::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };
enum class Format { kJson, kLogfmt };

// Parses "debug", "info", "warn", "error"; nullopt for anything else.
std::optional<Level> ParseLevel(std::string_view text);
std::optional<Format> ParseFormat(std::string_view text);

// Sets the process-wide logger: component name (e.g. "webhook"), minimum level, line format and
// destination (stderr unless a test passes another stream). Safe to call again.
void Configure(std::string component, Level level, Format format, std::ostream* out = nullptr);

using Fields = std::initializer_list<std::pair<std::string_view, std::string_view>>;

// Writes one structured line (ts, level, component, msg, then fields) if `level` is enabled.
// Thread-safe; each line is written whole.
void Write(Level level, std::string_view msg, Fields fields = {});

inline void Debug(std::string_view msg, Fields fields = {}) {
  Write(Level::kDebug, msg, fields);
}
inline void Info(std::string_view msg, Fields fields = {}) {
  Write(Level::kInfo, msg, fields);
}
inline void Warn(std::string_view msg, Fields fields = {}) {
  Write(Level::kWarn, msg, fields);
}
inline void Error(std::string_view msg, Fields fields = {}) {
  Write(Level::kError, msg, fields);
}

}  // namespace graydebug::log
