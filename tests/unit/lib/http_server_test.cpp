// graydebug::http::Server over real loopback sockets: curl and openssl s_client as clients,
// certificates made by the openssl CLI, raw sockets for idle, slow and hostile clients.
#include "graydebug/http_server.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "graydebug/log.h"
#include "support/eventually.h"
#include "support/log_capture.h"
#include "support/process.h"
#include "support/recording_sink.h"

namespace fs = std::filesystem;
using graydebug::testing::Run;
using namespace graydebug::http;
using namespace std::chrono_literals;

namespace {

// ---- Log capture: the server's lines, readable while its threads write. ----

graydebug::testing::LockedBuf& Logs() {
  return graydebug::testing::CapturedLogs("http-test");
}

using graydebug::testing::Eventually;

// ---- Files and certificates ----

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "graydebug-http-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
  REQUIRE(out.good());
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void Openssl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = Run(argv, "", 60s);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
}

// A test CA and leaf certificates it signs (SAN IP:127.0.0.1), made with the openssl CLI.
class Pki {
 public:
  explicit Pki(const TempDir& dir) : dir_(dir) {
    Openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
             dir_ / "ca.key", "-out", dir_ / "ca.pem", "-days", "2", "-subj", "/CN=graydebug-test-ca"});
    WriteFile(dir_ / "leaf.ext",
              "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n");
  }
  std::string ca() const { return dir_ / "ca.pem"; }

  // Writes <name>.pem and <name>.key for a leaf with subject CN=<name>; `rsa` picks RSA-2048.
  void Leaf(const std::string& name, bool rsa = false) const {
    std::vector<std::string> key =
        rsa ? std::vector<std::string>{"-newkey", "rsa:2048"}
            : std::vector<std::string>{"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"};
    std::vector<std::string> req = {"req"};
    req.insert(req.end(), key.begin(), key.end());
    req.insert(req.end(),
               {"-nodes", "-keyout", dir_ / (name + ".key"), "-out", dir_ / (name + ".csr"), "-subj", "/CN=" + name});
    Openssl(req);
    Openssl({"x509", "-req", "-in", dir_ / (name + ".csr"), "-CA", ca(), "-CAkey", dir_ / "ca.key", "-CAcreateserial",
             "-out", dir_ / (name + ".pem"), "-days", "2", "-extfile", dir_ / "leaf.ext"});
  }

 private:
  const TempDir& dir_;
};

// Replaces `target` atomically with `data`, as a careful writer would.
void WriteByRename(const std::string& target, const std::string& data) {
  std::string tmp = target + ".tmp";
  WriteFile(tmp, data);
  fs::rename(tmp, target);
}

// ---- Clients ----

struct CurlResult {
  int exit_code = -1;
  int status = 0;
  std::string body;
  std::string err;  // -v output
};

// curl with a status line appended to stdout; `extra` goes before the URL.
CurlResult Curl(const std::string& url, std::vector<std::string> extra = {}) {
  std::vector<std::string> argv = {"curl", "-sS", "--max-time", "20", "-w", "\n%{http_code}"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back(url);
  auto r = Run(argv, "", 60s);
  CurlResult out;
  out.exit_code = r.exit_code;
  out.err = r.err;
  auto nl = r.out.rfind('\n');
  if (nl != std::string::npos) {
    out.body = r.out.substr(0, nl);
    out.status = std::atoi(r.out.c_str() + nl + 1);
  }
  return out;
}

std::string Url(const Server& s, const std::string& path, bool tls = false) {
  return std::string(tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(s.port()) + path;
}

int Connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  return fd;
}

// Whether a TCP handshake with the port completes within a moment.
bool Accepts(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  if (!ok && errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    int err = 0;
    socklen_t len = sizeof err;
    ok = poll(&p, 1, 300) > 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
  }
  close(fd);
  return ok;
}

void SendAll(int fd, const std::string& data) {
  std::size_t sent = 0;
  while (sent < data.size()) {
    ssize_t n = send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;  // the server may hang up on hostile input: that's fine
    sent += static_cast<std::size_t>(n);
  }
}

// Reads until the peer closes, or `limit` passes, or `done(data)` says enough.
template <class Done>
std::string ReadUntil(int fd, Done done, std::chrono::milliseconds limit = 20s) {
  std::string data;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done(data)) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    data.append(buf, static_cast<std::size_t>(n));
  }
  return data;
}

// One whole response with a Content-Length body (what the server always sends).
std::string ReadResponse(int fd) {
  return ReadUntil(fd, [](const std::string& d) {
    auto end = d.find("\r\n\r\n");
    if (end == std::string::npos) return false;
    auto cl = d.find("Content-Length: ");
    if (cl == std::string::npos || cl > end) return true;
    return d.size() >= end + 4 + std::stoul(d.substr(cl + 16));
  });
}

bool PeerClosed(int fd) {
  std::string rest = ReadUntil(fd, [](const std::string&) { return false; });
  (void)rest;
  char c;
  return recv(fd, &c, 1, MSG_DONTWAIT) == 0;
}

// ---- The server under test ----

ServerOptions Options(const std::string& cert = "", const std::string& key = "") {
  Logs();
  ServerOptions o;
  o.listen = "127.0.0.1:0";
  o.tls_cert_file = cert;
  o.tls_key_file = key;
  o.max_body_bytes = 64 * 1024;
  o.reload_interval = 50ms;
  o.drain_timeout = 5s;
  o.name = "test";
  return o;
}

std::unique_ptr<Server> StartServer(ServerOptions options) {
  std::string error;
  auto server = Server::Create(std::move(options), &error);
  INFO(error);
  REQUIRE(server != nullptr);
  server->Handle("GET", "/hello", [](const Request&) { return Response{200, "text/plain", "hello"}; });
  server->Handle("POST", "/echo", [](const Request& r) {
    return Response{200, "application/json",
                    "{\"size\":" + std::to_string(r.body.size()) + ",\"type\":\"" + r.content_type + "\",\"query\":\"" +
                        r.query + "\",\"remote\":\"" + r.remote_address + "\"}"};
  });
  server->Handle("GET", "/throw", [](const Request&) -> Response { throw std::runtime_error("boom"); });
  server->Handle("GET", "/bad-status", [](const Request&) { return Response{42, "text/plain", ""}; });
  server->Handle("GET", "/policy", [](const Request&) {
    return Response{200, "text/plain", std::to_string(sched_getscheduler(0))};
  });
  std::string started = server->Start();
  INFO(started);
  REQUIRE(started.empty());
  REQUIRE(server->port() > 0);
  return server;
}

}  // namespace

TEST_CASE("plain HTTP: routes, 404, 405, keep-alive") {
  auto server = StartServer(Options());
  CHECK_FALSE(server->TlsLoaded());

  auto ok = Curl(Url(*server, "/hello"));
  CHECK(ok.status == 200);
  CHECK(ok.body == "hello");

  auto echo = Curl(Url(*server, "/echo?x=1"), {"-H", "Content-Type: application/json", "--data-binary", "{\"a\":1}"});
  CHECK(echo.status == 200);
  CHECK(echo.body == "{\"size\":7,\"type\":\"application/json\",\"query\":\"x=1\",\"remote\":\"127.0.0.1\"}");

  auto missing = Curl(Url(*server, "/nope"));
  CHECK(missing.status == 404);
  CHECK(missing.body == "{\"error\":\"no handler for path /nope\"}");

  auto wrong = Curl(Url(*server, "/hello"), {"-X", "POST", "-d", "x", "-i"});
  CHECK(wrong.status == 405);
  CHECK(wrong.body.find("Allow: GET") != std::string::npos);
  CHECK(wrong.body.find("{\"error\":\"method POST not allowed on /hello\"}") != std::string::npos);

  // Two requests in one curl run share the connection.
  auto two = Run({"curl", "-sS", "-v", "--max-time", "20", Url(*server, "/hello"), Url(*server, "/hello")});
  CHECK(two.exit_code == 0);
  CHECK(two.out == "hellohello");
  CHECK(two.err.find("Re-using existing connection") != std::string::npos);

  server->Stop();
  server->Stop();  // idempotent
  CHECK(Curl(Url(*server, "/hello")).exit_code != 0);
}

// Threads of this process whose scheduling policy is SCHED_BATCH (/proc/self/task/*/sched).
int BatchThreads() {
  int n = 0;
  for (const auto& t : fs::directory_iterator("/proc/self/task")) {
    std::string sched = ReadFile((t.path() / "sched").string());
    auto at = sched.find("\npolicy");
    if (at != std::string::npos && std::atoi(sched.c_str() + sched.find(':', at) + 1) == SCHED_BATCH) ++n;
  }
  return n;
}

TEST_CASE("handlers run as SCHED_BATCH, the I/O thread and the caller keep their policy") {
  const int before = BatchThreads(), mine = sched_getscheduler(0);
  ServerOptions o = Options();
  o.threads = 3;
  auto server = StartServer(o);
  auto r = Curl(Url(*server, "/policy"));
  CHECK(r.status == 200);
  CHECK(r.body == std::to_string(SCHED_BATCH));
  CHECK(sched_getscheduler(0) == mine);
  if (mine != SCHED_BATCH) {  // (a test run under chrt -b starts every thread as batch)
    CHECK(Eventually([&] { return BatchThreads() - before == 3; }, 10s));  // the handlers, not the I/O thread
  }
  server->Stop();
  CHECK(Eventually([&] { return BatchThreads() == before; }, 10s));
}

TEST_CASE("a throwing handler gets 500 and the server keeps serving") {
  auto server = StartServer(Options());
  for (int i = 0; i < 3; ++i) {
    auto r = Curl(Url(*server, "/throw"));
    CHECK(r.status == 500);
    CHECK(r.body == "{\"error\":\"internal error\"}");
  }
  CHECK(Curl(Url(*server, "/bad-status")).status == 500);
  CHECK(Curl(Url(*server, "/hello")).status == 200);
  CHECK(Logs().Text().find("boom") != std::string::npos);
}

TEST_CASE("bodies over the limit get 413, by Content-Length and when chunked") {
  TempDir dir;
  Pki pki(dir);
  pki.Leaf("leaf");
  WriteFile(dir / "over", std::string(100 * 1024, 'x'));  // over the 64 KiB limit, under twice it
  WriteFile(dir / "fits", std::string(64 * 1024, 'y'));
  WriteFile(dir / "huge", std::string(4 << 20, 'z'));
  for (bool tls : {false, true}) {
    CAPTURE(tls);
    auto server = tls ? StartServer(Options(dir / "leaf.pem", dir / "leaf.key")) : StartServer(Options());
    const std::string url = Url(*server, "/echo", tls);
    auto curl = [&](const std::string& file, std::vector<std::string> extra) {
      extra.insert(extra.end(), {"--cacert", pki.ca(), "--data-binary", "@" + (dir / file)});
      return Curl(url, extra);
    };
    const std::vector<std::string> chunked = {"-H", "Transfer-Encoding: chunked"};

    auto fits = curl("fits", {});
    CHECK(fits.status == 200);
    CHECK(fits.body.find("\"size\":65536") != std::string::npos);
    auto fits_chunked = curl("fits", chunked);
    CHECK(fits_chunked.status == 200);
    CHECK(fits_chunked.body.find("\"size\":65536") != std::string::npos);

    // With and without curl's "Expect: 100-continue" (the server answers it, or refuses at once).
    for (const auto& expect : {std::vector<std::string>{"-H", "Expect:"}, std::vector<std::string>{}}) {
      auto by_length = curl("over", expect);
      CHECK(by_length.status == 413);
      CHECK(by_length.body == "{\"error\":\"request body larger than 65536 bytes\"}");
      auto extra = expect;
      extra.insert(extra.end(), chunked.begin(), chunked.end());
      CHECK(curl("over", extra).status == 413);
    }

    // Far over the limit the body is cut off at once: curl, still sending, may see the reset
    // before the 413. Either way nothing is accepted and the server serves on.
    auto huge = curl("huge", {"-H", "Expect:"});
    CHECK(huge.status != 200);
    auto huge_chunked = curl("huge", {"-H", "Expect:", "-H", "Transfer-Encoding: chunked"});
    CHECK(huge_chunked.status != 200);
    CHECK(Curl(Url(*server, "/hello", tls), {"--cacert", pki.ca()}).status == 200);
  }

  // A declared terabyte: the answer comes right after the header, not after the body.
  auto server = StartServer(Options());
  int fd = Connect(server->port());
  SendAll(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000\r\n\r\n");
  int pieces = 0;
  for (; pieces < 20; ++pieces) {
    SendAll(fd, std::string(4096, 'z'));
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 2000) > 0) break;  // generous, so we rarely send after the server hung up
  }
  CHECK(pieces < 20);
  std::string resp = ReadResponse(fd);
  CHECK(resp.rfind("HTTP/1.1 413", 0) == 0);
  CHECK(resp.find("Connection: close") != std::string::npos);
  CHECK(PeerClosed(fd));
  close(fd);
  CHECK(Curl(Url(*server, "/hello")).status == 200);
}

TEST_CASE("HTTPS: TLS 1.2+ only, AEAD ciphers, ECDSA and RSA keys") {
  TempDir dir;
  Pki pki(dir);
  pki.Leaf("ecdsa");
  pki.Leaf("rsa", true);

  for (const std::string name : {"ecdsa", "rsa"}) {
    CAPTURE(name);
    auto server = StartServer(Options(dir / (name + ".pem"), dir / (name + ".key")));
    CHECK(server->TlsLoaded());
    const std::string url = Url(*server, "/hello", true);
    auto ok = Curl(url, {"--cacert", pki.ca()});
    CHECK(ok.status == 200);
    CHECK(ok.body == "hello");
    CHECK(Curl(url, {"--cacert", pki.ca(), "--tls-max", "1.2"}).status == 200);
    CHECK(Curl(Url(*server, "/echo", true), {"--cacert", pki.ca(), "--data-binary", "abc"}).status == 200);

    // Refused by the server, not by the client: s_client is allowed old protocols and ciphers.
    const std::string connect = "127.0.0.1:" + std::to_string(server->port());
    auto tls11 =
        Run({"openssl", "s_client", "-connect", connect, "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"}, "", 30s);
    CHECK(tls11.exit_code != 0);
    CHECK(tls11.out.find("Cipher is (NONE)") != std::string::npos);
    auto cbc = Run({"openssl", "s_client", "-connect", connect, "-tls1_2", "-cipher",
                    "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:AES128-SHA"},
                   "", 30s);
    CHECK(cbc.exit_code != 0);
    auto tls12 = Run({"openssl", "s_client", "-connect", connect, "-tls1_2", "-CAfile", pki.ca()}, "", 30s);
    CHECK(tls12.exit_code == 0);
    CHECK(tls12.out.find("Verify return code: 0 (ok)") != std::string::npos);
    CHECK(tls12.out.find("ECDHE") != std::string::npos);
    CHECK(Curl(url, {"--cacert", pki.ca(), "--tls-max", "1.1"}).exit_code != 0);

    server->Stop();
  }
}

TEST_CASE("a rotated certificate reaches new connections; a torn pair is ignored") {
  graydebug::testing::RecordingSink sink;  // the TLS reloads as telemetry (graydebug_tls_reloads_total)
  auto reported = [&](const std::string& result) {
    int n = 0;
    for (const auto& c : sink.calls())
      n += c.rfind("tls-reload ", 0) == 0 && c.size() > result.size() &&
           c.compare(c.size() - result.size(), result.size(), result) == 0;
    return n;
  };
  TempDir dir;
  Pki pki(dir);
  pki.Leaf("gen1");
  pki.Leaf("gen2");
  pki.Leaf("gen3");
  WriteFile(dir / "tls.crt", ReadFile(dir / "gen1.pem"));
  WriteFile(dir / "tls.key", ReadFile(dir / "gen1.key"));
  auto server = StartServer(Options(dir / "tls.crt", dir / "tls.key"));
  const std::string url = Url(*server, "/hello", true);
  auto subject_seen = [&](const std::string& cn) {
    auto r = Curl(url, {"--cacert", pki.ca(), "-v"});
    return r.status == 200 && r.err.find("subject: CN=" + cn) != std::string::npos;
  };
  CHECK(subject_seen("gen1"));
  CHECK(server->cert_reloads() == 0);

  // A keep-alive client hammers the server throughout: no request may fail.
  std::atomic<bool> done{false};
  std::atomic<int> failures{0}, successes{0};
  std::thread client([&] {
    while (!done) {
      auto r = Run({"curl", "-sS", "--max-time", "20", "--cacert", pki.ca(), url, url, url}, "", 60s);
      if (r.exit_code == 0 && r.out == "hellohellohello") {
        ++successes;
      } else {
        ++failures;
      }
    }
  });

  WriteByRename(dir / "tls.crt", ReadFile(dir / "gen2.pem"));
  WriteByRename(dir / "tls.key", ReadFile(dir / "gen2.key"));
  CHECK(Eventually([&] { return subject_seen("gen2"); }));
  CHECK(server->cert_reloads() >= 1);
  const auto reloads = server->cert_reloads();

  // Half a rotation: the new certificate with the old key. The poller refuses it (and says so).
  WriteByRename(dir / "tls.crt", ReadFile(dir / "gen3.pem"));
  CHECK(Eventually([&] { return Logs().Text().find("does not match the certificate") != std::string::npos; }));
  CHECK(subject_seen("gen2"));
  CHECK(server->cert_reloads() == reloads);
  CHECK(reported(" refused") >= 1);
  CHECK(reported(" loaded") == static_cast<int>(reloads));
  CHECK(server->TlsLoaded());

  // A truncated key file is refused too, then the completed one is taken.
  std::string gen3_key = ReadFile(dir / "gen3.key");
  WriteByRename(dir / "tls.key", gen3_key.substr(0, gen3_key.size() / 2));
  CHECK(Eventually([&] { return Logs().Text().find("no unencrypted PEM private key") != std::string::npos; }));
  CHECK(subject_seen("gen2"));
  WriteByRename(dir / "tls.key", gen3_key);
  CHECK(Eventually([&] { return subject_seen("gen3"); }));
  CHECK(server->cert_reloads() == reloads + 1);
  CHECK(reported(" loaded") == static_cast<int>(reloads) + 1);

  done = true;
  client.join();
  CHECK(successes > 0);
  CHECK(failures == 0);
}

TEST_CASE("idle and slow clients do not starve real requests; Stop still returns") {
  TempDir dir;
  Pki pki(dir);
  pki.Leaf("leaf");
  for (bool tls : {false, true}) {
    CAPTURE(tls);
    auto server = tls ? StartServer(Options(dir / "leaf.pem", dir / "leaf.key")) : StartServer(Options());
    std::vector<int> fds;
    for (int i = 0; i < 50; ++i) fds.push_back(Connect(server->port()));  // idle: not even a handshake
    for (int i = 0; i < 5; ++i) {
      int fd = Connect(server->port());
      SendAll(fd, "GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: ");  // half a header
      fds.push_back(fd);
    }
    if (!tls) {
      for (int i = 0; i < 5; ++i) {
        int fd = Connect(server->port());
        SendAll(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nhalf");  // half a body
        fds.push_back(fd);
      }
    }
    std::vector<std::string> extra;
    if (tls) extra = {"--cacert", pki.ca()};
    for (int i = 0; i < 20; ++i) {
      auto r = Curl(Url(*server, "/hello", tls), extra);
      CHECK(r.status == 200);
    }
    server->Stop();
    for (int fd : fds) {
      CHECK(PeerClosed(fd));
      close(fd);
    }
  }
}

TEST_CASE("300 concurrent HTTPS requests all succeed") {
  TempDir dir;
  Pki pki(dir);
  pki.Leaf("leaf");
  auto server = StartServer(Options(dir / "leaf.pem", dir / "leaf.key"));
  std::string config;
  for (int i = 0; i < 300; ++i) {
    config += "url = \"" + Url(*server, "/hello?i=" + std::to_string(i), true) + "\"\noutput = \"/dev/null\"\n";
  }
  WriteFile(dir / "urls", config);
  auto r = Run({"curl", "-sS", "--parallel", "--parallel-immediate", "--parallel-max", "300", "--max-time", "60",
                "--cacert", pki.ca(), "-w", "%{http_code}\n", "-K", dir / "urls"},
               "", 120s);
  INFO(r.err);
  CHECK(r.exit_code == 0);
  int ok = 0;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) ok += line == "200";
  CHECK(ok == 300);
  server->Stop();
}

TEST_CASE("Stop lets an in-flight handler finish") {
  std::string error;
  auto server = Server::Create(Options(), &error);
  REQUIRE(server != nullptr);
  std::promise<void> entered, release;
  std::shared_future<void> released = release.get_future().share();
  server->Handle("GET", "/block", [&](const Request&) {
    entered.set_value();
    released.wait();
    return Response{200, "text/plain", "finished"};
  });
  REQUIRE(server->Start().empty());
  int fd = Connect(server->port());
  SendAll(fd, "GET /block HTTP/1.1\r\nHost: x\r\n\r\n");
  entered.get_future().wait();
  const int port = server->port();
  CHECK(Accepts(port));
  std::thread stopper([&] { server->Stop(); });
  // Draining: new connections no longer get through, the in-flight request is still served.
  CHECK(Eventually([&] { return !Accepts(port); }));
  release.set_value();
  std::string resp = ReadResponse(fd);
  CHECK(resp.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(resp.find("Connection: close") != std::string::npos);
  CHECK(resp.find("finished") != std::string::npos);
  stopper.join();
  close(fd);
}

TEST_CASE("hostile input never crashes or stalls the server") {
  auto server = StartServer(Options());
  const std::vector<std::string> inputs = {
      std::string("\x16\x03\x01garbage\r\n\r\n", 14),
      "GET\r\n\r\n",
      "GET / HTTP/1.1\r\nno colon here\r\n\r\n",
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
      "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
      "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n0\r\n\r\n",
      "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffff\r\nabc\r\n0\r\n\r\n",
      "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nabc\r\n0\r\n\r\n",
      "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
      "GET /%ff%fe%00 HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET /" + std::string(100000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\nabcde",
      "GET /hello HTTP/1.0\r\n\r\n",
      "BREW /hello HTTP/1.1\r\nHost: x\r\n\r\n",
      std::string("GET /hello\0 HTTP/1.1\r\n\r\n", 25),
  };
  for (const auto& input : inputs) {
    CAPTURE(input.substr(0, 80));
    int fd = Connect(server->port());
    SendAll(fd, input);
    shutdown(fd, SHUT_WR);
    std::string resp = ReadUntil(
        fd, [](const std::string&) { return false; }, 10s);
    CHECK(resp.size() < 1000);  // whatever the answer, it does not echo a huge input
    close(fd);
    CHECK(Curl(Url(*server, "/hello")).status == 200);
  }
  // A client that hangs up halfway through a body.
  int fd = Connect(server->port());
  SendAll(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc");
  close(fd);
  fd = Connect(server->port());
  SendAll(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n100\r\nabc");
  close(fd);
  CHECK(Curl(Url(*server, "/hello")).status == 200);
  server->Stop();
}

TEST_CASE("Create and Start fail with one clear line") {
  TempDir dir;
  Pki pki(dir);
  pki.Leaf("a");
  pki.Leaf("b");
  struct Case {
    std::string listen, cert, key, want;
  };
  const std::vector<Case> cases = {
      {"nope", "", "", "listen address \"nope\": must be host:port"},
      {"127.0.0.1:99999", "", "", "port must be a number"},
      {"127.0.0.1:0", dir / "a.pem", "", "TLS needs both a certificate file and a key file"},
      {"127.0.0.1:0", dir / "missing.pem", dir / "a.key", "cannot read the TLS certificate: " + (dir / "missing.pem")},
      {"127.0.0.1:0", dir / "a.pem", dir / "missing.key", "cannot read the TLS key"},
      {"127.0.0.1:0", dir / "a.key", dir / "a.key", "no PEM certificate"},
      {"127.0.0.1:0", dir / "a.pem", dir / "a.pem", "no unencrypted PEM private key"},
      {"127.0.0.1:0", dir / "a.pem", dir / "b.key", "does not match the certificate"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.listen);
    CAPTURE(c.cert);
    CAPTURE(c.key);
    auto o = Options(c.cert, c.key);
    o.listen = c.listen;
    std::string error;
    auto server = Server::Create(o, &error);
    CHECK(server == nullptr);
    CHECK(error.find(c.want) != std::string::npos);
    CHECK(error.find('\n') == std::string::npos);
  }

  auto first = StartServer(Options());
  auto o = Options();
  o.listen = "127.0.0.1:" + std::to_string(first->port());
  std::string error;
  auto second = Server::Create(o, &error);
  REQUIRE(second != nullptr);
  std::string why = second->Start();
  CHECK(why.find("cannot listen on 127.0.0.1:" + std::to_string(first->port())) == 0);
  CHECK(why.find("port already in use by another server of this process") != std::string::npos);
  CHECK(first->Start() == "the server was already started");

  // A port some other socket listens on: the kernel refuses the bind.
  int other = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  REQUIRE(bind(other, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(listen(other, 1) == 0);
  REQUIRE(getsockname(other, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  o.listen = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  auto taken = Server::Create(o, &error);
  REQUIRE(taken != nullptr);
  why = taken->Start();
  CHECK(why.find("in use") != std::string::npos);
  CHECK(why.find('\n') == std::string::npos);
  close(other);

  // IPv6, where the machine has a loopback ::1.
  if (int v6 = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0); v6 >= 0) {
    sockaddr_in6 any{};
    any.sin6_family = AF_INET6;
    any.sin6_addr = in6addr_loopback;
    const bool has_v6 = bind(v6, reinterpret_cast<sockaddr*>(&any), sizeof any) == 0;
    close(v6);
    if (has_v6) {
      o.listen = "[::1]:0";
      auto six = Server::Create(o, &error);
      REQUIRE(six != nullptr);
      six->Handle("GET", "/hello", [](const Request&) { return Response{200, "text/plain", "hello"}; });
      REQUIRE(six->Start().empty());
      auto r = Curl("http://[::1]:" + std::to_string(six->port()) + "/hello");
      CHECK(r.status == 200);
    }
  }

  o.listen = "no-such-host.invalid:0";
  auto third = Server::Create(o, &error);
  REQUIRE(third != nullptr);
  CHECK(third->Start().find("cannot resolve") != std::string::npos);
  CHECK(Curl(Url(*first, "/hello")).status == 200);
}

TEST_CASE("timeouts: idle keep-alive, slow header, slow body; a connection limit") {
  auto o = Options();
  o.idle_timeout = 300ms;
  o.request_timeout = 300ms;
  auto server = StartServer(o);

  // Never sends anything: closed after idle_timeout.
  int idle = Connect(server->port());
  CHECK(PeerClosed(idle));
  close(idle);
  // Served, then quiet: closed after idle_timeout too (keep-alive does not hold it forever).
  int served = Connect(server->port());
  SendAll(served, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(ReadResponse(served).rfind("HTTP/1.1 200", 0) == 0);
  CHECK(PeerClosed(served));
  close(served);
  // Half a header, then nothing (a slow-loris), and half a body: cut off.
  int slow = Connect(server->port());
  SendAll(slow, "GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: ");
  CHECK(PeerClosed(slow));
  close(slow);
  int half = Connect(server->port());
  SendAll(half, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nhalf");
  CHECK(PeerClosed(half));
  close(half);
  CHECK(Curl(Url(*server, "/hello")).status == 200);
  server->Stop();

  // At most max_connections at once: one more is closed at once, and served again once a
  // place is free.
  o = Options();
  o.max_connections = 4;
  server = StartServer(o);
  std::vector<int> held;
  for (int i = 0; i < 4; ++i) {
    held.push_back(Connect(server->port()));
    SendAll(held.back(), "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(ReadResponse(held.back()).rfind("HTTP/1.1 200", 0) == 0);  // accepted and registered
  }
  int extra = Connect(server->port());
  SendAll(extra, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(ReadUntil(extra, [](const std::string&) { return false; }).empty());
  close(extra);
  close(held.back());
  held.pop_back();
  CHECK(Eventually([&] { return Curl(Url(*server, "/hello")).status == 200; }));
  CHECK(Logs().Text().find("connection limit reached") != std::string::npos);
  for (int fd : held) close(fd);
}

TEST_CASE("Expect: 100-continue is answered before the body, or refused without it") {
  auto server = StartServer(Options());
  int fd = Connect(server->port());
  SendAll(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  std::string interim = ReadUntil(fd, [](const std::string& d) { return d.find("\r\n\r\n") != std::string::npos; });
  CHECK(interim == "HTTP/1.1 100 Continue\r\n\r\n");
  SendAll(fd, "hello");
  std::string resp = ReadResponse(fd);
  CHECK(resp.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(resp.find("\"size\":5") != std::string::npos);
  close(fd);

  fd = Connect(server->port());
  SendAll(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n");
  resp = ReadResponse(fd);
  CHECK(resp.rfind("HTTP/1.1 413", 0) == 0);
  CHECK(PeerClosed(fd));
  close(fd);

  // A header over 64 KiB: 431, and the connection ends.
  fd = Connect(server->port());
  SendAll(fd, "GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(70000, 'b') + "\r\n\r\n");
  resp = ReadResponse(fd);
  CHECK(resp.rfind("HTTP/1.1 431", 0) == 0);
  close(fd);
  CHECK(Curl(Url(*server, "/hello")).status == 200);
}

TEST_CASE("HEAD, 204, HTTP/1.0: the framing stays right on a reused connection") {
  std::string error;
  auto server = Server::Create(Options(), &error);
  REQUIRE(server != nullptr);
  server->Handle("GET", "/hello", [](const Request&) { return Response{200, "text/plain", "hello"}; });
  server->Handle("GET", "/empty", [](const Request&) { return Response{204, "text/plain", "dropped"}; });
  REQUIRE(server->Start().empty());
  auto two_responses = [](const std::string& d) {
    auto first = d.find("\r\n\r\n");
    return first != std::string::npos && d.find("hello", first) != std::string::npos;
  };

  // A HEAD (not routed: 405) says how long the body would be and sends none; the GET after it on
  // the same connection is read intact.
  int fd = Connect(server->port());
  SendAll(fd, "HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string both = ReadUntil(fd, two_responses);
  CHECK(both.rfind("HTTP/1.1 405", 0) == 0);
  auto second = both.find("HTTP/1.1 200");
  REQUIRE(second != std::string::npos);
  CHECK(both.substr(0, second).find("{\"error\"") == std::string::npos);  // no body after the HEAD answer
  CHECK(both.substr(0, second).find("Content-Length: ") != std::string::npos);
  close(fd);

  // A 204 never carries a body, whatever the handler returned.
  fd = Connect(server->port());
  SendAll(fd, "GET /empty HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  both = ReadUntil(fd, two_responses);
  CHECK(both.rfind("HTTP/1.1 204", 0) == 0);
  CHECK(both.find("dropped") == std::string::npos);
  CHECK(both.find("HTTP/1.1 200") != std::string::npos);
  close(fd);

  // HTTP/1.0: answered as 1.0, kept alive only when asked, and never sent a 100 Continue.
  fd = Connect(server->port());
  SendAll(fd, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  std::string resp = ReadResponse(fd);
  CHECK(resp.rfind("HTTP/1.0 200", 0) == 0);
  CHECK(resp.find("Connection: keep-alive") != std::string::npos);
  SendAll(fd, "GET /hello HTTP/1.0\r\n\r\n");
  resp = ReadResponse(fd);
  CHECK(resp.rfind("HTTP/1.0 200", 0) == 0);
  CHECK(PeerClosed(fd));
  close(fd);
}

TEST_CASE("bodies held at once are bounded: over max_buffered_bytes a request gets 503") {
  auto o = Options();
  o.max_buffered_bytes = o.max_body_bytes;  // room for one 64 KiB body
  auto server = StartServer(o);
  // The first holds its 40 KiB place while its body is on the way.
  int first = Connect(server->port());
  SendAll(first, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 40000\r\n\r\n" + std::string(1000, 'a'));
  // Wait until the server has read the first header (and reserved its place): the second, also
  // 40 KiB, does not fit, so it is refused until the first is done.
  std::string second;
  CHECK(Eventually([&] {
    int fd = Connect(server->port());
    SendAll(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 40000\r\n\r\n");
    second = ReadResponse(fd);
    close(fd);
    return second.rfind("HTTP/1.1 503", 0) == 0;
  }));
  CHECK(second.find("too many request bodies in progress") != std::string::npos);
  SendAll(first, std::string(39000, 'a'));
  std::string resp = ReadResponse(first);
  CHECK(resp.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(resp.find("\"size\":40000") != std::string::npos);
  close(first);
  // Its place is free again.
  auto again = Curl(Url(*server, "/echo"), {"--data-binary", std::string(40000, 'b')});
  CHECK(again.status == 200);
}
