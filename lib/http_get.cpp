// One small HTTP/1.0 GET client for plain-HTTP peers on loopback or the pod network (the app's
// expvar, the agent's /probe/dlv). The Kubernetes API has its own client (lib/kube/beast_transport.cpp: TLS, keep-alive, streaming).
#include "graydebug/http_get.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string_view>

#include "graydebug/net/connect.h"

namespace graydebug {
namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr std::size_t kMaxHeaderBytes = 64u << 10;

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// ---- HTTP/1.0 GET ----

struct Url {
  net::HostPort to;
  std::string path;
};

std::optional<Url> ParseUrl(const std::string& url, std::string* error) {
  constexpr std::string_view kScheme = "http://";
  if (url.compare(0, kScheme.size(), kScheme) != 0) {
    *error = "only http:// URLs are supported";
    return std::nullopt;
  }
  std::string rest = url.substr(kScheme.size());
  auto slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  Url u;
  u.path = slash == std::string::npos ? "/" : rest.substr(slash);
  if (authority.empty()) {
    *error = "no host";
    return std::nullopt;
  }
  if (authority.find('@') != std::string::npos) {
    *error = "credentials in the URL are not supported";
    return std::nullopt;
  }
  std::string bad;
  auto hp = net::ParseHostPort(authority, &bad, {.default_port = 80, .min_port = 1});
  if (!hp) {
    *error = bad;
    return std::nullopt;
  }
  if (hp->host.empty()) {
    *error = "no host";
    return std::nullopt;
  }
  u.to = *hp;
  for (char c : u.path) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
      *error = "the path has spaces or control characters";
      return std::nullopt;
    }
  }
  return u;
}

// Waits until `fd` is ready for `events`; "" when ready, else why not.
std::string WaitFor(int fd, short events, SteadyClock::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, net::RemainingMs(deadline));
    if (n > 0) return "";
    if (n == 0) return "timed out";
    if (errno != EINTR) return std::string("poll: ") + std::strerror(errno);
  }
}

HttpGetResult GetError(std::string message, bool refused = false, bool timed_out = false) {
  HttpGetResult r;
  r.error = std::move(message);
  r.refused = refused;
  r.timed_out = timed_out;
  return r;
}

}  // namespace

std::string ValidateHttpUrl(const std::string& url) {
  std::string error;
  return ParseUrl(url, &error) ? "" : error;
}

HttpGetResult HttpGet(const std::string& url, std::chrono::milliseconds timeout, std::size_t max_bytes,
                      std::chrono::milliseconds connect_timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  const auto connect_deadline =
      connect_timeout.count() > 0 ? std::min(deadline, SteadyClock::now() + connect_timeout) : deadline;
  std::string error;
  std::optional<Url> u = ParseUrl(url, &error);
  if (!u) return GetError("bad URL \"" + url + "\": " + error);
  const std::string where = u->to.ToString();
  net::Connection conn = net::ConnectWithDeadline(u->to, connect_deadline);
  if (!conn.error.empty()) return GetError("connect to " + where + ": " + conn.error, conn.refused, conn.timed_out);
  const int fd = conn.fd.get();

  const std::string& host_header = where;
  const std::string request = "GET " + u->path + " HTTP/1.0\r\nHost: " + host_header +
                              "\r\nUser-Agent: graydebug\r\nAccept: */*\r\nConnection: close\r\n\r\n";
  for (std::size_t sent = 0; sent < request.size();) {
    ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (std::string why = WaitFor(fd, POLLOUT, deadline); !why.empty()) {
        return GetError("send to " + where + ": " + why, false, why == "timed out");
      }
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return GetError("send to " + where + ": " + std::strerror(errno));
    }
  }

  // Reads the head, then the body up to Content-Length (servers that keep the connection open
  // despite "Connection: close" are read correctly) or to the end of the stream.
  std::string buf;
  std::size_t head_end = std::string::npos;
  std::optional<std::size_t> content_length;
  HttpGetResult out;
  char chunk[16384];
  for (;;) {
    if (head_end == std::string::npos) {
      head_end = buf.find("\r\n\r\n");
      if (head_end == std::string::npos && buf.size() > kMaxHeaderBytes) {
        return GetError(where + ": response header larger than " + std::to_string(kMaxHeaderBytes) + " bytes");
      }
      if (head_end != std::string::npos) {
        std::string head = buf.substr(0, head_end);
        // "HTTP/1.1 200 OK"
        if (head.compare(0, 5, "HTTP/") != 0 || head.size() < 12 || head[8] != ' ' ||
            !std::isdigit(static_cast<unsigned char>(head[9])) || !std::isdigit(static_cast<unsigned char>(head[10])) ||
            !std::isdigit(static_cast<unsigned char>(head[11]))) {
          return GetError(where +
                          ": malformed status line: " + head.substr(0, std::min<std::size_t>(head.find('\r'), 60)));
        }
        out.status = std::stoi(head.substr(9, 3));
        std::size_t line = head.find("\r\n");
        while (line != std::string::npos) {
          std::size_t next = head.find("\r\n", line + 2);
          std::string header = head.substr(line + 2, next == std::string::npos ? std::string::npos : next - line - 2);
          line = next;
          auto colon = header.find(':');
          if (colon == std::string::npos) continue;
          std::string name = Lower(header.substr(0, colon));
          std::string value = header.substr(colon + 1);
          value.erase(0, value.find_first_not_of(" \t"));
          while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.pop_back();
          if (name == "transfer-encoding" && Lower(value) != "identity") {
            return GetError(where + ": unsupported Transfer-Encoding " + value);
          }
          if (name == "content-length") {
            if (value.empty() || value.size() > 19 || value.find_first_not_of("0123456789") != std::string::npos) {
              return GetError(where + ": bad Content-Length");
            }
            content_length = std::stoull(value);
            if (*content_length > max_bytes) {
              return GetError(where + ": response body larger than " + std::to_string(max_bytes) + " bytes");
            }
          }
        }
        buf.erase(0, head_end + 4);
      }
    }
    if (head_end != std::string::npos) {
      if (buf.size() > max_bytes) {
        return GetError(where + ": response body larger than " + std::to_string(max_bytes) + " bytes");
      }
      if (content_length && buf.size() >= *content_length) {
        buf.resize(*content_length);
        out.body = std::move(buf);
        return out;
      }
    }
    if (std::string why = WaitFor(fd, POLLIN, deadline); !why.empty()) {
      return GetError("read from " + where + ": " + why, false, why == "timed out");
    }
    ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      return GetError("read from " + where + ": " + std::strerror(errno));
    }
    buf.append(chunk, static_cast<std::size_t>(n));
  }
  if (head_end == std::string::npos) return GetError(where + ": connection closed before a complete response header");
  if (content_length && buf.size() < *content_length) return GetError(where + ": connection closed mid-body");
  out.body = std::move(buf);
  return out;
}

}  // namespace graydebug
