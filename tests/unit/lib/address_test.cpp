#include <doctest/doctest.h>

#include "graydebug/net/address.h"
#include "graydebug/net/connect.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

using graydebug::net::HostPort;
using graydebug::net::ParseHostPort;

TEST_CASE("address: host:port, :port and [ipv6]:port parse; everything else says why") {
  std::string e;
  auto a = ParseHostPort("127.0.0.1:2345", &e);
  REQUIRE(a);
  CHECK(a->host == "127.0.0.1");
  CHECK(a->port == 2345);
  CHECK(a->ToString() == "127.0.0.1:2345");
  auto v6 = ParseHostPort("[::1]:8443", &e);
  REQUIRE(v6);
  CHECK(v6->host == "::1");
  CHECK(v6->ToString() == "[::1]:8443");
  auto any = ParseHostPort(":0", &e);
  REQUIRE(any);
  CHECK(any->host.empty());
  CHECK(any->port == 0);
  CHECK_FALSE(ParseHostPort(":0", &e, {.default_port = -1, .min_port = 1}));
  CHECK(e == "port must be a number from 1 to 65535");

  struct Bad {
    const char* text;
    const char* why;
  };
  for (const Bad& b : {Bad{"8443", "must be host:port"}, Bad{"::1:80", "an IPv6 host must be in brackets"},
                       Bad{"a b:80", "host has an invalid character"}, Bad{"h:65536", "port must be a number"},
                       Bad{"h:", "port must be a number"}, Bad{"h:+1", "port must be a number"},
                       Bad{"[::1]", "must be host:port"}, Bad{"[::1]x80", "must be host:port"},
                       Bad{"[::1", "must be host:port"}, Bad{"h:99999999999999999999", "port must be a number"}}) {
    CAPTURE(b.text);
    e.clear();
    CHECK_FALSE(ParseHostPort(b.text, &e));
    CHECK(e.find(b.why) != std::string::npos);
  }
  CHECK_FALSE(ParseHostPort(std::string(301, 'a') + ":1", &e));
  CHECK(e == "address too long");

  // A URL authority: the port may be left out.
  auto h = ParseHostPort("localhost", &e, {.default_port = 80, .min_port = 1});
  REQUIRE(h);
  CHECK(h->port == 80);
  auto h6 = ParseHostPort("[::1]", &e, {.default_port = 80, .min_port = 1});
  REQUIRE(h6);
  CHECK(h6->host == "::1");
}

TEST_CASE("connect: a listening port connects, a closed one is refused") {
  // A real listener on an ephemeral loopback port (port 0, the bound port read back).
  int l = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(l >= 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(l, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0);
  REQUIRE(::listen(l, 4) == 0);
  socklen_t len = sizeof(sa);
  REQUIRE(::getsockname(l, reinterpret_cast<sockaddr*>(&sa), &len) == 0);
  const int port = ntohs(sa.sin_port);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);

  auto ok = graydebug::net::ConnectWithDeadline(HostPort{"127.0.0.1", port}, deadline);
  CHECK(ok.error.empty());
  CHECK(ok.fd.get() >= 0);
  ::close(l);  // now nothing listens there
  auto refused = graydebug::net::ConnectWithDeadline(HostPort{"", port}, deadline);
  CHECK(refused.refused);
  CHECK(refused.fd.get() < 0);
}
