#pragma once

// Ports for tests without the bind-close-reuse race: servers listen on port 0 and the test reads
// the bound port back (from the server object, or from what a child process prints); a port that
// must refuse connections is held bound and never listened on, so no one else can take it.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <regex>
#include <string>

#include "support/eventually.h"
#include "support/process.h"

namespace graydebug::testing {

// A loopback port reserved while this lives: bound, never listening, so a connect to it is refused.
class ClosedPort {
 public:
  ClosedPort() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (fd_ >= 0 && bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
        getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
      port_ = ntohs(a.sin_port);
    }
  }
  ~ClosedPort() {
    if (fd_ >= 0) close(fd_);
  }
  ClosedPort(const ClosedPort&) = delete;
  ClosedPort& operator=(const ClosedPort&) = delete;
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// A free loopback port to tell a program that must be given a fixed one (dlv, whose --listen the
// agent matches against dlv's argv, and which launch-dlv restarts on the same port; the plugin's
// --local-port, the user's choice of 1-65535, as kubectl port-forward's). Racy by nature
// (bound, closed, handed on): everything that can listen on port 0 does so instead.
inline int FreePort() {
  ClosedPort p;
  return p.port();
}

// A port on which nothing listens for the whole test run (one ClosedPort per process).
inline int NothingListens() {
  static ClosedPort reserved;
  return reserved.port();
}

// The port `child` printed: the first match of `pattern`'s first group in its output, waited for up
// to `limit`; 0 if it never appeared.
inline int PortPrinted(const Child& child, const std::regex& pattern,
                       std::chrono::milliseconds limit = std::chrono::seconds(30)) {
  int port = 0;
  Eventually(
      [&] {
        std::smatch m;
        const std::string out = child.Output();
        if (!std::regex_search(out, m, pattern)) return false;
        port = std::stoi(m[1]);
        return true;
      },
      limit, std::chrono::milliseconds(20));
  return port;
}

// What the leaky app, dlv and the agent print once they listen.
inline const std::regex& LeakyAppServing() {
  static const std::regex r(R"(leaky-app: serving on 127\.0\.0\.1:([0-9]+))");
  return r;
}
inline const std::regex& DlvListening() {
  static const std::regex r(R"(API server listening at: 127\.0\.0\.1:([0-9]+))");
  return r;
}
inline const std::regex& AgentServing() {
  static const std::regex r(R"re("msg":"agent serving".*"port":"([0-9]+)")re");
  return r;
}

}  // namespace graydebug::testing
