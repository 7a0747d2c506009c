#pragma once
// Captures the process-wide structured log for tests that run servers in-process: the lines stay
// readable while the servers' threads keep writing.
#include <mutex>
#include <ostream>
#include <streambuf>
#include <string>

#include "graydebug/log.h"

namespace graydebug::testing {

class LockedBuf : public std::streambuf {
 public:
  std::string Text() {
    std::lock_guard lock(mu_);
    return text_;
  }

 protected:
  int overflow(int c) override {
    if (c == EOF) return 0;
    std::lock_guard lock(mu_);
    text_.push_back(static_cast<char>(c));
    return c;
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    std::lock_guard lock(mu_);
    text_.append(s, static_cast<std::size_t>(n));
    return n;
  }

 private:
  std::mutex mu_;
  std::string text_;
};

// The first call points the logger (JSON, info level, `component`) at a buffer kept for the rest of
// the process; every call returns that buffer.
inline LockedBuf& CapturedLogs(const char* component) {
  static LockedBuf* buf = [component] {
    auto* b = new LockedBuf;
    static std::ostream out(b);
    log::Configure(component, log::Level::kInfo, log::Format::kJson, &out);
    return b;
  }();
  return *buf;
}

}  // namespace graydebug::testing
