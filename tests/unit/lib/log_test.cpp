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

TEST_CASE("log: a JSON line is byte for byte what an ordered nlohmann object dumps") {
  // The line is written as text; nlohmann's ordered_json (what it was built with before) is the
  // reference: member order, a repeated key (first place, last value), escapes, invalid UTF-8.
  const std::vector<std::pair<std::string, std::string>> pool = {
      {"pod", "shop/a\"b\\c"},  {"error", "line\nnext\ttab\x01\x1f"},
      {"bytes", "\xff\xfe ok"}, {"utf8", "ümlaut 漢字 😀"},
      {"msg", "overrides msg"}, {"empty", ""},
      {"ts", "not a time"},     {"cut", "\xe2\x82"},
      {"del", "\x7f"},          {"", "empty key"},
      {"pod", "second pod"},    {"level", "fake"}};
  uint32_t seed = 7;
  auto next = [&] { return seed = seed * 1103515245u + 12345u; };
  for (int round = 0; round < 300; ++round) {
    std::vector<std::pair<std::string, std::string>> fields;
    for (uint32_t i = 0, n = next() % 8; i < n; ++i) fields.push_back(pool[(next() >> 8) % pool.size()]);
    std::vector<std::pair<std::string_view, std::string_view>> views(fields.begin(), fields.end());
    std::ostringstream out;
    gl::Configure("web\"hook", gl::Level::kDebug, gl::Format::kJson, &out);
    // Fields is an initializer_list: pass the views through a call with a fixed number of them.
    switch (views.size()) {
      case 0: gl::Info("m\xc3"); break;
      case 1: gl::Info("m\xc3", {views[0]}); break;
      case 2: gl::Info("m\xc3", {views[0], views[1]}); break;
      case 3: gl::Info("m\xc3", {views[0], views[1], views[2]}); break;
      case 4: gl::Info("m\xc3", {views[0], views[1], views[2], views[3]}); break;
      case 5: gl::Info("m\xc3", {views[0], views[1], views[2], views[3], views[4]}); break;
      case 6: gl::Info("m\xc3", {views[0], views[1], views[2], views[3], views[4], views[5]}); break;
      default: gl::Info("m\xc3", {views[0], views[1], views[2], views[3], views[4], views[5], views[6]}); break;
    }
    gl::Configure("graydebug", gl::Level::kInfo, gl::Format::kJson, nullptr);
    std::string line = out.str();
    REQUIRE(line.size() > 2);
    REQUIRE(line.back() == '\n');
    line.pop_back();
    // The timestamp is the one value the reference cannot know: take it from the line.
    auto parsed = nlohmann::ordered_json::parse(line);
    nlohmann::ordered_json want;
    want["ts"] = parsed["ts"];
    want["level"] = "info";
    want["component"] = "web\"hook";
    want["msg"] = "m\xc3";
    for (std::size_t i = 0; i < views.size() && i < 7; ++i) want[fields[i].first] = fields[i].second;
    CHECK(line == want.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
}
