#pragma once
// A TCP proxy on loopback for network-fault tests: it forwards bytes both ways between its clients
// and one upstream port, and on command stops forwarding without closing anything (a stalled or
// black-holed path, as after a lost conntrack entry or a frozen middlebox), resumes, or drops every
// connection with a reset. It runs on one thread of the test process; TLS passes through untouched.
#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

namespace graydebug::testing {

class StallProxy {
 public:
  // Listens on 127.0.0.1:<free port> and forwards to 127.0.0.1:`upstream_port`. port() is 0 when
  // the listening socket could not be set up.
  explicit StallProxy(int upstream_port);
  ~StallProxy();
  StallProxy(const StallProxy&) = delete;
  StallProxy& operator=(const StallProxy&) = delete;

  int port() const { return port_; }
  // Stops forwarding on every connection, old and new (new ones are accepted and held); nothing is
  // closed, so both ends see a silent peer.
  void Stall();
  // Forwards again; bytes held by the kernel buffers during the stall flow on.
  void Resume();
  // The connections open now stay open but never forward another byte (a black hole); connections
  // made afterwards are forwarded normally. Also resumes a stall.
  void BlackHoleExisting();
  // Resets every connection (RST both ways); new connections are forwarded.
  void DropAll();
  // Connections accepted so far (for tests to see that clients reconnected).
  int accepted() const { return accepted_.load(); }

 private:
  struct Pair {
    int client = -1, upstream = -1;
    bool black_hole = false;
  };
  void Loop();
  void Wake();

  int upstream_port_ = 0;
  int port_ = 0;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  std::mutex mu_;
  std::vector<Pair> pairs_;
  bool stalled_ = false, drop_ = false, black_hole_ = false, stop_ = false;
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

}  // namespace graydebug::testing
