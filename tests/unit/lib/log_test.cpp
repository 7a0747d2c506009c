#include "graydebug/log.h"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <sstream>

namespace gl = graydebug::log;

TEST_CASE("log: JSON lines carry level, component, msg and fields; levels filter") {
  std::ostringstream out;
  gl::Configure("webhook", gl::Level::kInfo, gl::Format::kJson, &out);
  gl::Debug("hidden");
  gl::Info("admitted", {{"pod", "shop/a\"b"}, {"reason", "not-selected"}});
  gl::Configure("graydebug", gl::Level::kInfo, gl::Format::kJson, nullptr);
  std::string text = out.str();
  REQUIRE(std::count(text.begin(), text.end(), '\n') == 1);
  auto j = nlohmann::json::parse(text);
  CHECK(j["level"] == "info");
  CHECK(j["component"] == "webhook");
  CHECK(j["msg"] == "admitted");
  CHECK(j["pod"] == "shop/a\"b");
  CHECK(j["reason"] == "not-selected");
  CHECK(j["ts"].get<std::string>().size() == 24);
}

TEST_CASE("log: logfmt quotes what needs quoting and keeps invalid UTF-8 on one line") {
  std::ostringstream out;
  gl::Configure("agent", gl::Level::kDebug, gl::Format::kLogfmt, &out);
  gl::Warn("dlv restarted", {{"pid", "42"}, {"error", "connection refused\nnext"}, {"bytes", "\xff\xfe"}});
  gl::Configure("graydebug", gl::Level::kInfo, gl::Format::kJson, nullptr);
  std::string line = out.str();
  CHECK(line.find(" level=warn component=agent msg=\"dlv restarted\" pid=42 ") != std::string::npos);
  CHECK(line.find("error=\"connection refused\\nnext\"") != std::string::npos);
  CHECK(std::count(line.begin(), line.end(), '\n') == 1);
}

TEST_CASE("log: level and format names") {
  CHECK(gl::ParseLevel("warn") == gl::Level::kWarn);
  CHECK_FALSE(gl::ParseLevel("trace").has_value());
  CHECK(gl::ParseFormat("logfmt") == gl::Format::kLogfmt);
  CHECK_FALSE(gl::ParseFormat("xml").has_value());
}
