#pragma once

#include <optional>
#include <string>
#include <string_view>

// The one parser of "host:port" addresses (flags, the server's listen address, the dlv client, the
// HTTP GET client's URL authority, the agent's dlv address). Pure.
namespace graydebug::net {

struct HostPort {
  std::string host;  // without brackets for IPv6; "" for ":port"
  int port = 0;
  // "host:port", with brackets around an IPv6 host.
  std::string ToString() const;
};

struct ParseOptions {
  int default_port = -1;  // >= 0: the port may be left out ("host" or "[v6]"), and is this
  int min_port = 0;       // 1 for addresses to connect to; 0 allows ":0" (pick a free port) to listen
};

// Parses "host:port", ":port" or "[ipv6]:port". nullopt with *error (one line, no address in it)
// when it is none of these, the host holds a character no DNS name or IP literal has, or the port is
// not a number in [min_port, 65535].
std::optional<HostPort> ParseHostPort(std::string_view text, std::string* error, ParseOptions options = {});

}  // namespace graydebug::net
