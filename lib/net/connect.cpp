#include "graydebug/net/connect.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace graydebug::net {

UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.release();
  }
  return *this;
}

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) ::close(fd_);
}

int RemainingMs(std::chrono::steady_clock::time_point deadline) {
  auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(left);
}

Connection ConnectWithDeadline(const HostPort& to, std::chrono::steady_clock::time_point deadline) {
  Connection c;
  auto fail = [&](std::string why, int e = 0) {
    c.error = std::move(why);
    c.refused = e == ECONNREFUSED;
    c.fd = UniqueFd();
    return std::move(c);
  };
  const std::string host = to.host.empty() ? "127.0.0.1" : to.host;
  const std::string port = std::to_string(to.port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0 || res == nullptr) {
    return fail("cannot resolve " + host + ": " + (rc != 0 ? ::gai_strerror(rc) : "no address"));
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(res, ::freeaddrinfo);
  c.fd = UniqueFd(::socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (c.fd.get() < 0) return fail(std::string("socket: ") + std::strerror(errno), errno);
  if (::connect(c.fd.get(), res->ai_addr, res->ai_addrlen) == 0) return c;
  if (errno != EINPROGRESS) {
    int e = errno;
    return fail(std::strerror(e), e);
  }
  for (;;) {
    pollfd p{c.fd.get(), POLLOUT, 0};
    int n = ::poll(&p, 1, RemainingMs(deadline));
    if (n > 0) break;
    if (n == 0) {
      c.timed_out = true;
      return fail("timed out");
    }
    if (errno != EINTR) return fail(std::string("poll: ") + std::strerror(errno), errno);
  }
  int err = 0;
  socklen_t len = sizeof(err);
  ::getsockopt(c.fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) return fail(std::strerror(err), err);
  return c;
}

}  // namespace graydebug::net
