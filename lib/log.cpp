#include "graydebug/log.h"

#include <chrono>
#include <ctime>
#include <iostream>
#include <mutex>
#include <vector>

#include "graydebug/json_patch.h"
#include "graydebug/kube/time.h"

namespace graydebug::log {
namespace {

struct State {
  std::mutex mu;
  std::string component = "graydebug";
  Level level = Level::kInfo;
  Format format = Format::kJson;
  std::ostream* out = &std::cerr;
};

State& state() {
  static State s;
  return s;
}

const char* LevelName(Level level) {
  switch (level) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
  }
  return "info";
}

std::string Timestamp() {
  return kube::FormatTime(std::chrono::system_clock::now(), 3);
}

// logfmt: bare when the value has no space, quote, '=' or control character; else a JSON string.
void AppendLogfmt(std::string& line, std::string_view key, std::string_view value) {
  line += ' ';
  line += key;
  line += '=';
  bool bare = !value.empty();
  for (unsigned char c : value) {
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c >= 0x7f) {
      bare = false;
      break;
    }
  }
  if (bare) {
    line += value;
  } else {
    AppendJsonString(&line, value);  // nlohmann's escapes, invalid UTF-8 replaced
  }
}

}  // namespace

std::optional<Level> ParseLevel(std::string_view text) {
  if (text == "debug") return Level::kDebug;
  if (text == "info") return Level::kInfo;
  if (text == "warn" || text == "warning") return Level::kWarn;
  if (text == "error") return Level::kError;
  return std::nullopt;
}

std::optional<Format> ParseFormat(std::string_view text) {
  if (text == "json") return Format::kJson;
  if (text == "logfmt" || text == "text") return Format::kLogfmt;
  return std::nullopt;
}

void Configure(std::string component, Level level, Format format, std::ostream* out) {
  State& s = state();
  std::lock_guard lock(s.mu);
  s.component = std::move(component);
  s.level = level;
  s.format = format;
  s.out = out != nullptr ? out : &std::cerr;
}

void Write(Level level, std::string_view msg, Fields fields) {
  State& s = state();
  std::lock_guard lock(s.mu);
  if (level < s.level) return;
  std::string line;
  if (s.format == Format::kJson) {
    // Written as text, byte for byte what an ordered nlohmann object would dump: members in order,
    // a repeated key keeps its first place and takes the last value, invalid UTF-8 replaced.
    const std::string ts = Timestamp();
    std::vector<std::pair<std::string_view, std::string_view>> members;
    members.reserve(4 + fields.size());
    auto put = [&](std::string_view k, std::string_view v) {
      for (auto& m : members) {
        if (m.first == k) {
          m.second = v;
          return;
        }
      }
      members.emplace_back(k, v);
    };
    put("ts", ts);
    put("level", LevelName(level));
    put("component", s.component);
    put("msg", msg);
    for (const auto& [k, v] : fields) put(k, v);
    line.reserve(128);
    line += '{';
    for (const auto& [k, v] : members) {
      if (line.size() > 1) line += ',';
      AppendJsonString(&line, k);
      line += ':';
      AppendJsonString(&line, v);
    }
    line += '}';
  } else {
    line = "ts=" + Timestamp();
    AppendLogfmt(line, "level", LevelName(level));
    AppendLogfmt(line, "component", s.component);
    AppendLogfmt(line, "msg", msg);
    for (const auto& [k, v] : fields) AppendLogfmt(line, k, v);
  }
  line += '\n';
  s.out->write(line.data(), static_cast<std::streamsize>(line.size()));
  s.out->flush();
}

}  // namespace graydebug::log
