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

#include "graydebug/net/connect.h"

namespace graydebug::dlv {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

Reply Fail(ErrorKind kind, std::string message) {
  Reply r;
  r.error_kind = kind;
  for (char& c : message) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  r.error = std::move(message);
  return r;
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
  std::string bad;
  auto to = net::ParseHostPort(address_, &bad, {.default_port = -1, .min_port = 1});
  if (!to) return Fail(ErrorKind::kConnection, "bad dlv address \"" + address_ + "\" (want host:port): " + bad);
  net::Connection conn = net::ConnectWithDeadline(*to, Clock::now() + options_.connect_timeout);
  if (conn.timed_out) {
    return Fail(ErrorKind::kTimeout, "connect to dlv at " + address_ + ": no answer within " +
                                         std::to_string(options_.connect_timeout.count()) + " ms");
  }
  if (!conn.error.empty()) {
    return Fail(conn.refused ? ErrorKind::kRefused : ErrorKind::kConnection,
                "connect to dlv at " + address_ + ": " + conn.error);
  }
  const int fd = conn.fd.get();
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

  uint64_t id = g_next_id.fetch_add(1);
  std::string request = json{{"method", method}, {"params", json::array({params})}, {"id", id}}.dump() + "\n";
  auto deadline = Clock::now() + options_.reply_timeout;
  auto timeout = [&] {
    return Fail(ErrorKind::kTimeout, method + " to dlv at " + address_ + ": no reply within " +
                                         std::to_string(options_.reply_timeout.count()) + " ms");
  };
  for (std::size_t sent = 0; sent < request.size();) {
    ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, net::RemainingMs(deadline)) <= 0) return timeout();
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
    pollfd p{fd, POLLIN, 0};
    int ready = ::poll(&p, 1, net::RemainingMs(deadline));
    if (ready == 0) return timeout();
    if (ready < 0) {
      if (errno == EINTR) continue;
      return Fail(ErrorKind::kConnection, std::string("poll: ") + std::strerror(errno));
    }
    ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
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
