#include "graydebug/duration.h"

#include <doctest/doctest.h>

using namespace std::chrono_literals;
using graydebug::FormatDuration;
using graydebug::ParseDuration;

TEST_CASE("ParseDuration reads Go-style durations") {
  CHECK(ParseDuration("15m") == 15min);
  CHECK(ParseDuration("1h30m") == 90min);
  CHECK(ParseDuration("500ms") == 500ms);
  CHECK(ParseDuration("2.5s") == 2500ms);
  CHECK(ParseDuration("0") == 0ms);
  CHECK(ParseDuration("1m30s") == 90s);
  CHECK(ParseDuration("1500us") == 2ms);  // rounded to the millisecond
}

TEST_CASE("ParseDuration refuses everything else") {
  for (const char* bad : {"", "15", "m", "-5s", "1.2.3s", "5d", "1h 30m", "s5", ".s", "1e3s", "99999999h",
                          "1111111111111111111111111111111111111111111111111111111111111111111h"}) {
    CAPTURE(bad);
    CHECK_FALSE(ParseDuration(bad).has_value());
  }
}

TEST_CASE("FormatDuration round-trips") {
  for (std::chrono::milliseconds d : {0ms, 500ms, 15000ms * 60, 5400000ms, 14400000ms, 1001ms}) {
    CAPTURE(d.count());
    CHECK(ParseDuration(FormatDuration(d)) == d);
  }
  CHECK(FormatDuration(90min) == "1h30m");
  CHECK(FormatDuration(0ms) == "0s");
}
