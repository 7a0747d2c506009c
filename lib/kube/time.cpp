#include "graydebug/kube/time.h"

#include <cstdio>
#include <ctime>

namespace graydebug::kube {

std::string FormatTime(Clock::Wall t, int fraction_digits) {
  const auto secs = std::chrono::time_point_cast<std::chrono::seconds>(t);
  std::time_t tt = std::chrono::system_clock::to_time_t(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  int n = std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                        tm.tm_hour, tm.tm_min, tm.tm_sec);
  if (fraction_digits == 3 || fraction_digits == 6) {
    const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(t - secs).count();
    const long frac = fraction_digits == 3 ? static_cast<long>(micros / 1000) : static_cast<long>(micros);
    n += std::snprintf(buf + n, sizeof buf - static_cast<std::size_t>(n), ".%0*ld", fraction_digits, frac);
  }
  std::snprintf(buf + n, sizeof buf - static_cast<std::size_t>(n), "Z");
  return buf;
}

std::optional<Clock::Wall> ParseTime(const std::string& text) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, consumed = 0;
  if (text.size() > 64 ||
      std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &consumed) != 6 ||
      consumed != 19) {
    return std::nullopt;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return std::nullopt;
  std::size_t i = 19;
  double fraction = 0;
  if (i < text.size() && text[i] == '.') {
    std::size_t start = ++i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    if (i == start) return std::nullopt;
    fraction = std::stod("0." + text.substr(start, i - start));
  }
  long offset = 0;
  if (i < text.size() && (text[i] == 'Z' || text[i] == 'z')) {
    ++i;
  } else if (i + 6 == text.size() && (text[i] == '+' || text[i] == '-') && text[i + 3] == ':') {
    int oh = std::atoi(text.substr(i + 1, 2).c_str()), om = std::atoi(text.substr(i + 4, 2).c_str());
    offset = (text[i] == '+' ? 1 : -1) * (oh * 3600L + om * 60L);
    i += 6;
  } else {
    return std::nullopt;
  }
  if (i != text.size()) return std::nullopt;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  std::time_t secs = timegm(&tm) - offset;
  return std::chrono::system_clock::from_time_t(secs) +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::duration<double>(fraction));
}

}  // namespace graydebug::kube
