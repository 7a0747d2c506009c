#pragma once
// Where http::Server listens: the address parsed and resolved, and the ports this process's
// servers hold (internal to lib/).

#include <utility>  // must precede boost/asio with C++20 (Boost 1.74)

#include <boost/asio/ip/tcp.hpp>
#include <mutex>
#include <optional>
#include <set>
#include <string>

namespace graydebug::http::detail {

struct ListenAddress {
  std::string host;  // without brackets for IPv6
  int port = 0;
  std::string Text() const {
    return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
  }
};

// "host:port", ":port" (= 0.0.0.0) or "[ipv6]:port" into parts; nullopt and *error otherwise.
std::optional<ListenAddress> ParseListen(const std::string& listen, std::string* error);

// The address to bind: the first one getaddrinfo gives for the host (a literal or a name).
std::optional<boost::asio::ip::tcp::endpoint> Resolve(const ListenAddress& address, std::string* error);

// Two servers of one process on one port would be a wiring mistake; it gets a clearer error
// than the kernel's "address in use". The ports in use are tracked here.
class PortRegistry {
 public:
  static PortRegistry& Get();
  bool Claim(int port);  // false when a server of this process holds it
  void Release(int port);

 private:
  std::mutex mu_;
  std::set<int> ports_;
};

}  // namespace graydebug::http::detail
