#include "graydebug/dlv_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

namespace graydebug::dlv {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

Reply Fail(ErrorKind kind, std::string message) {
  Reply r;
  r.error_kind = kind;
  for (char& c : message) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  r.error = std::move(message);
  return r;
}

int RemainingMs(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(left);
}

bool SplitHostPort(const std::string& address, std::string* host, std::string* port) {
  if (!address.empty() && address[0] == '[') {
    auto close = address.find(']');
    if (close == std::string::npos || close + 1 >= address.size() || address[close + 1] != ':') return false;
    *host = address.substr(1, close - 1);
    *port = address.substr(close + 2);
  } else {
    auto colon = address.rfind(':');
    if (colon == std::string::npos) return false;
    *host = address.substr(0, colon);
    *port = address.substr(colon + 1);
  }
  if (host->empty()) *host = "127.0.0.1";
  return !port->empty() && port->find_first_not_of("0123456789") == std::string::npos;
}

std::atomic<uint64_t> g_next_id{1};

}  // namespace

const char* ErrorKindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kNone: return "none";
    case ErrorKind::kRefused: return "refused";
    case ErrorKind::kTimeout: return "timeout";
    case ErrorKind::kBadReply: return "bad-reply";
    case ErrorKind::kDlvError: return "dlv-error";
    case ErrorKind::kConnection: return "connection";
  }
  return "connection";
}

Reply DecodeReply(const std::string& method, const std::string& line, uint64_t id) {
  json reply = json::parse(line, nullptr, false);
  if (reply.is_discarded() || !reply.is_object()) {
    return Fail(ErrorKind::kBadReply, method + ": dlv's reply is not a JSON object: " + line.substr(0, 80));
  }
  auto rid = reply.find("id");
  if (rid == reply.end() || !rid->is_number_unsigned() || rid->get<uint64_t>() != id) {
    return Fail(ErrorKind::kBadReply, method + ": dlv's reply has the wrong id");
  }
  if (auto err = reply.find("error"); err != reply.end() && !err->is_null()) {
    return Fail(ErrorKind::kDlvError, method + ": dlv: " + (err->is_string() ? err->get<std::string>() : err->dump()));
  }
  Reply r;
  if (auto result = reply.find("result"); result != reply.end()) r.result = std::move(*result);
  return r;
}

Client::Client(std::string address, Options options) : address_(std::move(address)), options_(options) {}

Reply Client::GetVersion() const {
  return Call("RPCServer.GetVersion", json::object());
}

Reply Client::State() const {
  return Call("RPCServer.State", {{"NonBlocking", true}});
}

Reply Client::Call(const std::string& method, const json& params) const {
  for (const char* forbidden : {"RPCServer.Detach", "RPCServer.Restart", "RPCServer.Command"}) {
    if (method == forbidden)
      return Fail(ErrorKind::kConnection, method + " is not allowed: it would disturb the target");
  }
  auto start = Clock::now();
  std::string host, port;
  if (!SplitHostPort(address_, &host, &port)) {
    return Fail(ErrorKind::kConnection, "bad dlv address \"" + address_ + "\" (want host:port)");
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0 || res == nullptr) {
    return Fail(ErrorKind::kConnection, "cannot resolve " + host + ": " + gai_strerror(rc));
  }
  Fd sock;
  sock.fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (sock.fd < 0) {
    freeaddrinfo(res);
    return Fail(ErrorKind::kConnection, std::string("socket: ") + std::strerror(errno));
  }
  int rc = ::connect(sock.fd, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  if (rc != 0 && errno != EINPROGRESS) {
    int e = errno;
    return Fail(e == ECONNREFUSED ? ErrorKind::kRefused : ErrorKind::kConnection,
                "connect to dlv at " + address_ + ": " + std::strerror(e));
  }
  if (rc != 0) {
    pollfd p{sock.fd, POLLOUT, 0};
    int n = ::poll(&p, 1, static_cast<int>(options_.connect_timeout.count()));
    if (n == 0) {
      return Fail(ErrorKind::kTimeout, "connect to dlv at " + address_ + ": no answer within " +
                                           std::to_string(options_.connect_timeout.count()) + " ms");
    }
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(sock.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (n < 0 || err != 0) {
      int e = n < 0 ? errno : err;
      return Fail(e == ECONNREFUSED ? ErrorKind::kRefused : ErrorKind::kConnection,
                  "connect to dlv at " + address_ + ": " + std::strerror(e));
    }
  }
  int one = 1;
  setsockopt(sock.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

  uint64_t id = g_next_id.fetch_add(1);
  std::string request = json{{"method", method}, {"params", json::array({params})}, {"id", id}}.dump() + "\n";
  auto deadline = Clock::now() + options_.reply_timeout;
  auto timeout = [&] {
    return Fail(ErrorKind::kTimeout, method + " to dlv at " + address_ + ": no reply within " +
                                         std::to_string(options_.reply_timeout.count()) + " ms");
  };
  for (std::size_t sent = 0; sent < request.size();) {
    ssize_t n = ::send(sock.fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{sock.fd, POLLOUT, 0};
      if (::poll(&p, 1, RemainingMs(deadline)) <= 0) return timeout();
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return Fail(ErrorKind::kConnection, "send to dlv at " + address_ + ": " + std::strerror(errno));
  }
  std::string buf;
  char chunk[16384];
  for (;;) {
    auto nl = buf.find('\n');
    if (nl != std::string::npos) {
      buf.resize(nl);
      break;
    }
    if (buf.size() > options_.max_reply_bytes) {
      return Fail(ErrorKind::kBadReply,
                  method + ": dlv's reply is larger than " + std::to_string(options_.max_reply_bytes) + " bytes");
    }
    pollfd p{sock.fd, POLLIN, 0};
    int ready = ::poll(&p, 1, RemainingMs(deadline));
    if (ready == 0) return timeout();
    if (ready < 0) {
      if (errno == EINTR) continue;
      return Fail(ErrorKind::kConnection, std::string("poll: ") + std::strerror(errno));
    }
    ssize_t n = ::recv(sock.fd, chunk, sizeof(chunk), 0);
    if (n == 0) {
      // dlv's encoder may end the stream without a newline after a complete object.
      if (!buf.empty() && !json::parse(buf, nullptr, false).is_discarded()) break;
      return Fail(ErrorKind::kBadReply, method + ": dlv closed the connection " +
                                            (buf.empty() ? std::string("without a reply") : "mid-reply"));
    }
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return Fail(ErrorKind::kConnection, "recv from dlv at " + address_ + ": " + std::strerror(errno));
    }
    buf.append(chunk, static_cast<std::size_t>(n));
  }
  Reply r = DecodeReply(method, buf, id);
  if (!r.ok()) return r;
  r.latency = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
  return r;
}

}  // namespace graydebug::dlv
