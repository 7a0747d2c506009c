#include "http/listen_address.h"

#include <netdb.h>

#include <cstring>
#include <memory>

#include "graydebug/flags.h"
#include "graydebug/net/address.h"

namespace graydebug::http::detail {

namespace net = boost::asio;
using tcp = net::ip::tcp;

std::optional<ListenAddress> ParseListen(const std::string& listen, std::string* error) {
  if (std::string why = ValidateListenAddress(listen); !why.empty()) {
    *error = "listen address \"" + listen + "\": " + why;
    return std::nullopt;
  }
  std::string unused;
  graydebug::net::HostPort hp = *graydebug::net::ParseHostPort(listen, &unused);
  ListenAddress out;
  out.host = hp.host.empty() ? "0.0.0.0" : hp.host;
  out.port = hp.port;
  return out;
}

std::optional<tcp::endpoint> Resolve(const ListenAddress& address, std::string* error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(address.host.c_str(), nullptr, &hints, &res); rc != 0 || res == nullptr) {
    *error = "cannot resolve \"" + address.host + "\": " + (rc != 0 ? ::gai_strerror(rc) : "no address");
    return std::nullopt;
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(res, ::freeaddrinfo);
  const auto port = static_cast<unsigned short>(address.port);
  if (res->ai_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(res->ai_addr);
    return tcp::endpoint(net::ip::address_v4(ntohl(in->sin_addr.s_addr)), port);
  }
  if (res->ai_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(res->ai_addr);
    net::ip::address_v6::bytes_type bytes;
    std::memcpy(bytes.data(), &in6->sin6_addr, bytes.size());
    return tcp::endpoint(net::ip::address_v6(bytes, in6->sin6_scope_id), port);
  }
  *error = "cannot resolve \"" + address.host + "\": not an IP address";
  return std::nullopt;
}

PortRegistry& PortRegistry::Get() {
  static PortRegistry r;
  return r;
}

bool PortRegistry::Claim(int port) {
  std::lock_guard lock(mu_);
  return ports_.insert(port).second;
}

void PortRegistry::Release(int port) {
  std::lock_guard lock(mu_);
  ports_.erase(port);
}

}  // namespace graydebug::http::detail
