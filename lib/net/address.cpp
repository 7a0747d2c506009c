#include "graydebug/net/address.h"

#include <charconv>

namespace graydebug::net {

std::string HostPort::ToString() const {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::optional<HostPort> ParseHostPort(std::string_view text, std::string* error, ParseOptions options) {
  auto fail = [&](const char* why) -> std::optional<HostPort> {
    *error = why;
    return std::nullopt;
  };
  if (text.size() > 300) return fail("address too long");
  const bool port_optional = options.default_port >= 0;
  const char* shape =
      port_optional ? "must be host, host:port or [ipv6]:port" : "must be host:port, :port or [ipv6]:port";
  std::string_view host, port;
  bool has_port = true;
  if (!text.empty() && text[0] == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) return fail(shape);
    host = text.substr(1, close - 1);
    std::string_view after = text.substr(close + 1);
    if (after.empty() && port_optional) {
      has_port = false;
    } else if (after.size() < 2 || after[0] != ':') {
      return fail(shape);
    } else {
      port = after.substr(1);
    }
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      if (!port_optional) return fail(shape);
      host = text;
      has_port = false;
    } else {
      host = text.substr(0, colon);
      port = text.substr(colon + 1);
      if (host.find(':') != std::string_view::npos) return fail("an IPv6 host must be in brackets, like [::1]:8443");
    }
  }
  for (char c : host) {
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == ':';
    if (!ok) return fail("host has an invalid character");
  }
  HostPort out;
  out.host = std::string(host);
  if (!has_port) {
    out.port = options.default_port;
    return out;
  }
  int p = -1;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || p < options.min_port || p > 65535) {
    return fail(options.min_port > 0 ? "port must be a number from 1 to 65535"
                                     : "port must be a number from 0 to 65535");
  }
  out.port = p;
  return out;
}

}  // namespace graydebug::net
