#include "support/stall_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace graydebug::testing {
namespace {

void NonBlocking(int fd) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

void Reset(int fd) {
  if (fd < 0) return;
  linger l{1, 0};  // close with RST, not FIN
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close(fd);
}

int ConnectUpstream(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  NonBlocking(fd);
  return fd;
}

// Bytes read from one side and not yet written to the other.
struct Pending {
  std::string data;
  std::size_t off = 0;
  bool empty() const { return off >= data.size(); }
};

}  // namespace

StallProxy::StallProxy(int upstream_port) : upstream_port_(upstream_port) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(listen_fd_, 128) != 0 ||
      pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) {
    return;
  }
  socklen_t len = sizeof a;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  NonBlocking(listen_fd_);
  port_ = ntohs(a.sin_port);
  thread_ = std::thread([this] { Loop(); });
}

StallProxy::~StallProxy() {
  {
    std::lock_guard l(mu_);
    stop_ = true;
  }
  Wake();
  if (thread_.joinable()) thread_.join();
  for (auto& p : pairs_) {
    Reset(p.client);
    Reset(p.upstream);
  }
  if (listen_fd_ >= 0) close(listen_fd_);
  for (int fd : wake_) {
    if (fd >= 0) close(fd);
  }
}

void StallProxy::Wake() {
  if (wake_[1] >= 0) (void)!write(wake_[1], "x", 1);
}

void StallProxy::Stall() {
  {
    std::lock_guard l(mu_);
    stalled_ = true;
  }
  Wake();
}

void StallProxy::Resume() {
  {
    std::lock_guard l(mu_);
    stalled_ = false;
  }
  Wake();
}

void StallProxy::BlackHoleExisting() {
  {
    std::lock_guard l(mu_);
    black_hole_ = true;
    stalled_ = false;
  }
  Wake();
}

void StallProxy::DropAll() {
  {
    std::lock_guard l(mu_);
    drop_ = true;
    stalled_ = false;
  }
  Wake();
}

void StallProxy::Loop() {
  // Per pair: [0] client -> upstream, [1] upstream -> client.
  std::vector<std::pair<Pending, Pending>> pending;
  while (true) {
    bool stalled;
    {
      std::lock_guard l(mu_);
      if (stop_) return;
      if (drop_) {
        for (auto& p : pairs_) {
          Reset(p.client);
          Reset(p.upstream);
        }
        pairs_.clear();
        pending.clear();
        drop_ = false;
      }
      if (black_hole_) {
        for (auto& p : pairs_) p.black_hole = true;
        black_hole_ = false;
      }
      stalled = stalled_;
    }
    std::vector<pollfd> fds;
    fds.push_back({wake_[0], POLLIN, 0});
    fds.push_back({listen_fd_, POLLIN, 0});
    std::vector<std::pair<std::size_t, int>> who;  // (pair index, 0 client / 1 upstream) per fd after the first two
    for (std::size_t i = 0; i < pairs_.size(); ++i) {
      const Pair& p = pairs_[i];
      if (p.black_hole || stalled) continue;
      short client_events = 0, upstream_events = 0;
      if (pending[i].first.empty())
        client_events |= POLLIN;
      else
        upstream_events |= POLLOUT;
      if (pending[i].second.empty())
        upstream_events |= POLLIN;
      else
        client_events |= POLLOUT;
      fds.push_back({p.client, client_events, 0});
      who.emplace_back(i, 0);
      fds.push_back({p.upstream, upstream_events, 0});
      who.emplace_back(i, 1);
    }
    if (poll(fds.data(), fds.size(), 1000) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[0].revents != 0) {
      char buf[64];
      while (read(wake_[0], buf, sizeof buf) > 0) {
      }
    }
    if (fds[1].revents & POLLIN) {
      while (true) {
        int c = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (c < 0) break;
        int u = ConnectUpstream(upstream_port_);
        if (u < 0) {
          Reset(c);
          continue;
        }
        accepted_++;
        pairs_.push_back({c, u, false});
        pending.emplace_back();
      }
    }
    std::vector<bool> dead(pairs_.size(), false);
    for (std::size_t k = 2; k < fds.size(); ++k) {
      auto [i, side] = who[k - 2];
      short re = fds[k].revents;
      if (re == 0 || dead[i]) continue;
      Pair& p = pairs_[i];
      int from = side == 0 ? p.client : p.upstream;
      int to = side == 0 ? p.upstream : p.client;
      Pending& out = side == 0 ? pending[i].first : pending[i].second;  // bytes read from `from`
      Pending& in = side == 0 ? pending[i].second : pending[i].first;   // bytes to write to `from`
      if (re & POLLOUT) {
        ssize_t w = write(from, in.data.data() + in.off, in.data.size() - in.off);
        if (w > 0) in.off += static_cast<std::size_t>(w);
        if (w < 0 && errno != EAGAIN) dead[i] = true;
        if (in.empty()) {
          in.data.clear();
          in.off = 0;
        }
      }
      if (re & (POLLIN | POLLHUP | POLLERR)) {
        char buf[65536];
        ssize_t r = read(from, buf, sizeof buf);
        if (r > 0) {
          out.data.assign(buf, static_cast<std::size_t>(r));
          out.off = 0;
          ssize_t w = write(to, out.data.data(), out.data.size());
          if (w > 0) out.off = static_cast<std::size_t>(w);
          if (w < 0 && errno != EAGAIN) dead[i] = true;
          if (out.empty()) {
            out.data.clear();
            out.off = 0;
          }
        } else if (r == 0 || errno != EAGAIN) {
          dead[i] = true;
        }
      }
    }
    // A side that closed closes the other (FIN passes on as a close, which is all HTTP needs).
    for (std::size_t i = pairs_.size(); i-- > 0;) {
      if (!dead[i]) continue;
      close(pairs_[i].client);
      close(pairs_[i].upstream);
      pairs_.erase(pairs_.begin() + static_cast<std::ptrdiff_t>(i));
      pending.erase(pending.begin() + static_cast<std::ptrdiff_t>(i));
    }
  }
}

}  // namespace graydebug::testing
