#pragma once

#include <chrono>
#include <string>

#include "graydebug/net/address.h"

// The one connect-with-deadline of the plain-TCP clients (the dlv JSON-RPC client, HttpGet).
namespace graydebug::net {

// An owned file descriptor, closed on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();
  int get() const { return fd_; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }

 private:
  int fd_ = -1;
};

struct Connection {
  UniqueFd fd;             // non-blocking, close-on-exec; valid when error is ""
  std::string error;       // the cause, one line ("Connection refused", "timed out", "cannot resolve ...")
  bool refused = false;    // ECONNREFUSED: nothing listens there
  bool timed_out = false;  // the deadline passed first
};

// Resolves `to.host` (a literal or a name; "" is 127.0.0.1) and connects a TCP socket to its first
// address before `deadline`. Never throws.
Connection ConnectWithDeadline(const HostPort& to, std::chrono::steady_clock::time_point deadline);

// Milliseconds left until `deadline` for poll(2), 0 when it passed.
int RemainingMs(std::chrono::steady_clock::time_point deadline);

}  // namespace graydebug::net
