// graydebug's Kubernetes client against the real local control plane.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <vector>

#include "graydebug/kube/client.h"
#include "graydebug/kube/transport.h"
#include "support/local_cluster.h"
#include "support/ports.h"

using graydebug::kube::Client;
using graydebug::kube::ErrorKind;
using graydebug::kube::ListOptions;
using graydebug::kube::PatchType;
using graydebug::kube::Resource;
using graydebug::kube::WatchEvent;
using graydebug::testing::LocalCluster;
using graydebug::testing::SourceDir;
using nlohmann::json;

namespace {

std::shared_ptr<Client> NewClient(graydebug::kube::RestConfig cfg = {}) {
  LocalCluster& c = LocalCluster::Shared();
  REQUIRE_MESSAGE(c.ok(), c.error());
  if (cfg.server.empty()) cfg = c.Rest();
  auto client = Client::Create(cfg);
  REQUIRE_MESSAGE(client.ok(), client.error().ToString());
  return client.value();
}

json ConfigMap(const std::string& name, const std::string& value, const std::string& label = "crud") {
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"name", name}, {"labels", {{"test", label}}}}},
          {"data", {{"v", value}}}};
}

void EnsureCrd() {
  LocalCluster& c = LocalCluster::Shared();
  static bool done = false;
  if (done) return;
  REQUIRE(c.Kubectl({"apply", "-f", SourceDir() + "/manifests/crds/"}).exit_code == 0);
  REQUIRE(
      c.Kubectl({"wait", "--for=condition=Established", "--timeout=60s", "crd/debugsessions.graydebug.io"}).exit_code ==
      0);
  done = true;
}

}  // namespace

TEST_CASE("client: create, get, update, patch, delete a ConfigMap with typed errors") {
  auto client = NewClient();
  const Resource cm = Resource::ConfigMaps();
  auto created = client->Create(cm, "default", ConfigMap("crud-1", "a"));
  REQUIRE_MESSAGE(created.ok(), created.error().ToString());
  CHECK(created->at("metadata").at("uid").get<std::string>().size() > 10);

  auto dup = client->Create(cm, "default", ConfigMap("crud-1", "a"));
  CHECK(dup.error().kind == ErrorKind::kAlreadyExists);
  CHECK(dup.error().http_status == 409);
  CHECK(dup.error().message.find("already exists") != std::string::npos);

  auto got = client->Get(cm, "default", "crud-1");
  REQUIRE(got.ok());
  CHECK(got->at("data").at("v") == "a");

  json updated = got.value();
  updated["data"]["v"] = "b";
  auto put = client->Update(cm, "default", updated);
  REQUIRE_MESSAGE(put.ok(), put.error().ToString());
  CHECK(put->at("data").at("v") == "b");
  // The same update again carries a stale resourceVersion: Conflict.
  auto stale = client->Update(cm, "default", updated);
  CHECK(stale.error().kind == ErrorKind::kConflict);

  auto merge = client->Patch(cm, "default", "crud-1", PatchType::kMerge, R"({"data":{"w":"merged"}})");
  REQUIRE_MESSAGE(merge.ok(), merge.error().ToString());
  CHECK(merge->at("data").at("w") == "merged");
  auto jp = client->Patch(
      cm, "default", "crud-1", PatchType::kJson,
      R"([{"op":"replace","path":"/data/v","value":"c"},{"op":"add","path":"/metadata/annotations","value":{}},)"
      R"({"op":"add","path":"/metadata/annotations/graydebug.io~1x","value":"x"}])");
  REQUIRE_MESSAGE(jp.ok(), jp.error().ToString());
  CHECK(jp->at("data").at("v") == "c");
  CHECK(jp->at("metadata").at("annotations").at("graydebug.io/x") == "x");
  auto bad_patch =
      client->Patch(cm, "default", "crud-1", PatchType::kJson, R"([{"op":"test","path":"/data/v","value":"zzz"}])");
  CHECK(!bad_patch.ok());

  auto invalid = client->Create(cm, "default", ConfigMap("Not_Valid", "a"));
  CHECK(invalid.error().kind == ErrorKind::kInvalid);
  CHECK(invalid.error().http_status == 422);

  auto del = client->Delete(cm, "default", "crud-1");
  CHECK_MESSAGE(del.ok(), del.error().ToString());
  auto gone = client->Get(cm, "default", "crud-1");
  CHECK(gone.error().kind == ErrorKind::kNotFound);
  CHECK(gone.error().reason == "NotFound");
  CHECK(client->Delete(cm, "default", "crud-1").error().kind == ErrorKind::kNotFound);
}

TEST_CASE("client: custom resources and the status subresource") {
  EnsureCrd();
  auto client = NewClient();
  const Resource ds = Resource::DebugSessions();
  json s = {{"apiVersion", "graydebug.io/v1alpha1"},
            {"kind", "DebugSession"},
            {"metadata", {{"name", "client-crud"}}},
            {"spec", {{"target", {{"pod", "p1"}}}}}};
  auto created = client->Create(ds, "default", s);
  REQUIRE_MESSAGE(created.ok(), created.error().ToString());
  CHECK(created->at("spec").at("ttl") == "15m");
  json obj = created.value();
  obj["status"] = {{"phase", "Pending"}};
  auto st = client->UpdateStatus(ds, "default", obj);
  REQUIRE_MESSAGE(st.ok(), st.error().ToString());
  CHECK(st->at("status").at("phase") == "Pending");
  auto sp =
      client->Patch(ds, "default", "client-crud", PatchType::kMerge, R"({"status":{"phase":"Active"}})", "status");
  REQUIRE_MESSAGE(sp.ok(), sp.error().ToString());
  CHECK(sp->at("status").at("phase") == "Active");
  // Schema errors come back as Invalid with the server's message.
  auto bad = client->Patch(ds, "default", "client-crud", PatchType::kMerge, R"({"spec":{"ttl":"99h"}})");
  CHECK(bad.error().kind == ErrorKind::kInvalid);
  CHECK(bad.error().message.find("spec.ttl may only be shortened") != std::string::npos);
  CHECK(client->Delete(ds, "default", "client-crud").ok());
}

TEST_CASE("client: list with selectors and pagination") {
  auto client = NewClient();
  const Resource cm = Resource::ConfigMaps();
  for (int i = 0; i < 25; ++i)
    REQUIRE(client->Create(cm, "default", ConfigMap("page-" + std::to_string(i), "x", "paged")).ok());
  REQUIRE(client->Create(cm, "default", ConfigMap("other", "x", "other")).ok());
  ListOptions o;
  o.label_selector = "test=paged";
  o.limit = 10;
  auto first = client->List(cm, "default", o);
  REQUIRE(first.ok());
  CHECK(first->at("items").size() == 10);
  CHECK(!first->at("metadata").at("continue").get<std::string>().empty());
  auto all = client->ListAll(cm, "default", o);
  REQUIRE(all.ok());
  CHECK(all->at("items").size() == 25);
  CHECK(!all->at("metadata").at("resourceVersion").get<std::string>().empty());
  ListOptions fs;
  fs.field_selector = "metadata.name=other";
  auto one = client->ListAll(cm, "default", fs);
  REQUIRE(one.ok());
  REQUIRE(one->at("items").size() == 1);
  CHECK(one->at("items")[0]["metadata"]["name"] == "other");
  auto bad = client->List(cm, "default", ListOptions{"a in (", "", 0, "", "", 0, true});
  CHECK(bad.error().kind == ErrorKind::kBadRequest);
}

TEST_CASE("client: a watch sees every change in order") {
  auto client = NewClient();
  const Resource cm = Resource::ConfigMaps();
  auto list = client->List(cm, "default");
  REQUIRE(list.ok());
  ListOptions o;
  o.resource_version = list->at("metadata").at("resourceVersion").get<std::string>();
  o.label_selector = "test=watched";
  o.timeout_seconds = 30;
  auto watch = client->StartWatch(cm, "default", o);
  REQUIRE_MESSAGE(watch.ok(), watch.error().ToString());
  REQUIRE(client->Create(cm, "default", ConfigMap("w1", "1", "watched")).ok());
  REQUIRE(client->Patch(cm, "default", "w1", PatchType::kMerge, R"({"data":{"v":"2"}})").ok());
  REQUIRE(client->Create(cm, "default", ConfigMap("w2", "1", "watched")).ok());
  REQUIRE(client->Delete(cm, "default", "w1").ok());
  std::vector<std::string> seen;
  WatchEvent ev;
  graydebug::kube::ApiError err;
  while (seen.size() < 4 && watch.value()->Next(&ev, &err)) {
    if (ev.type == WatchEvent::Type::kBookmark) continue;
    const char* t = ev.type == WatchEvent::Type::kAdded      ? "ADDED"
                    : ev.type == WatchEvent::Type::kModified ? "MODIFIED"
                                                             : "DELETED";
    seen.push_back(std::string(t) + " " + ev.object["metadata"]["name"].get<std::string>() + " " +
                   ev.object["data"]["v"].get<std::string>());
  }
  CHECK(seen == std::vector<std::string>{"ADDED w1 1", "MODIFIED w1 2", "ADDED w2 1", "DELETED w1 2"});
}

TEST_CASE("client: a watch from a compacted resourceVersion is Gone") {
  // The watch cache would serve old versions from memory; without it the watch reaches etcd.
  LocalCluster uncached({"--watch-cache=false"});
  REQUIRE_MESSAGE(uncached.ok(), uncached.error());
  auto client = NewClient(uncached.Rest());
  auto first = client->Create(Resource::ConfigMaps(), "default", ConfigMap("compact-1", "1"));
  REQUIRE(first.ok());
  auto second = client->Create(Resource::ConfigMaps(), "default", ConfigMap("compact-2", "1"));
  REQUIRE(second.ok());
  auto third = client->Create(Resource::ConfigMaps(), "default", ConfigMap("compact-3", "1"));
  REQUIRE(third.ok());
  // etcd may still serve a watch from the compaction revision itself, so compact past it.
  REQUIRE(uncached.CompactEtcd(third->at("metadata").at("resourceVersion").get<std::string>()));
  ListOptions o;
  o.resource_version = first->at("metadata").at("resourceVersion").get<std::string>();
  auto watch = client->StartWatch(Resource::ConfigMaps(), "default", o);
  graydebug::kube::ApiError err;
  if (watch.ok()) {
    // The API server may answer 200 and then send an ERROR event with a 410 Status.
    WatchEvent ev;
    REQUIRE(watch.value()->Next(&ev, &err));
    CHECK(ev.type == WatchEvent::Type::kError);
    CHECK(ev.object["code"] == 410);
  } else {
    CHECK(watch.error().kind == ErrorKind::kGone);
  }
}

TEST_CASE("client: bearer tokens, and a rotated token file is picked up without restart") {
  LocalCluster& c = LocalCluster::Shared();
  auto whoami = [](Client& client) {
    json review = {{"apiVersion", "authentication.k8s.io/v1"}, {"kind", "SelfSubjectReview"}};
    auto r = client.Create({"authentication.k8s.io", "v1", "selfsubjectreviews", false}, "", review);
    return r.ok() ? r->at("status").at("userInfo").at("username").get<std::string>() : r.error().ToString();
  };
  auto admin = NewClient();
  CHECK(whoami(*admin) == "graydebug-admin");

  std::string token_file = c.dir() + "/rotating-token";
  std::ofstream(token_file) << c.Token(0) << "\n";
  auto cfg = c.Rest();
  cfg.client_cert_pem.clear();
  cfg.client_key_pem.clear();
  cfg.token_file = token_file;
  auto client = NewClient(cfg);
  CHECK(whoami(*client) == "token-user-a");
  std::ofstream(token_file + ".new") << c.Token(1);
  std::filesystem::rename(token_file + ".new", token_file);  // atomically, as the kubelet does
  CHECK(whoami(*client) == "token-user-b");

  cfg.token_file.clear();
  cfg.token = "not-a-token";
  auto nobody = NewClient(cfg);
  CHECK(nobody->Get(Resource::ConfigMaps(), "default", "x").error().kind == ErrorKind::kUnauthorized);
}

TEST_CASE("client: a TLS server it does not trust is a connection error, not a crash") {
  LocalCluster& c = LocalCluster::Shared();
  auto cfg = c.Rest();
  // A different CA: this cluster's serving certificate cannot be verified.
  cfg.ca_pem = cfg.client_cert_pem;
  graydebug::kube::ClientOptions o;
  o.max_retries = 0;
  auto client = Client::Create(cfg, o);
  REQUIRE(client.ok());
  auto r = client.value()->Get(Resource::ConfigMaps(), "default", "x");
  CHECK(r.error().kind == ErrorKind::kConnection);
  CHECK_FALSE(r.error().not_sent);  // it connected: the handshake failed
  // Garbage TLS material is refused when the client is made, with one line.
  cfg.client_key_pem = "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n";
  auto bad = Client::Create(cfg);
  CHECK(bad.error().kind == ErrorKind::kConfig);
  CHECK(bad.error().message.find("unusable TLS material") != std::string::npos);
}

TEST_CASE("client: a port nothing listens on is a connection error typed as not sent") {
  LocalCluster& c = LocalCluster::Shared();
  auto cfg = c.Rest();
  cfg.server = "https://127.0.0.1:" + std::to_string(graydebug::testing::NothingListens());
  graydebug::kube::ClientOptions o;
  o.max_retries = 0;
  auto client = Client::Create(cfg, o);
  REQUIRE(client.ok());
  auto r = client.value()->Create(Resource::ConfigMaps(), "default", {{"metadata", {{"name", "x"}}}});
  CHECK(r.error().kind == ErrorKind::kConnection);
  CHECK_MESSAGE(r.error().not_sent, r.error().ToString());
}

namespace {

using graydebug::kube::ApiError;
using graydebug::kube::HttpRequest;
using graydebug::kube::HttpTransport;
using graydebug::kube::LineStream;

// A plain-HTTP server on loopback whose every accepted connection is served by `serve(fd, n)` on a
// thread of its own (n counts connections from 0), for the transport's behaviour on the wire:
// chunked bodies cut anywhere, kept connections, hostile answers.
class RawServer {
 public:
  using Serve = std::function<void(int fd, int n)>;
  explicit RawServer(Serve serve) : serve_(std::move(serve)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd_, 16) == 0);
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { Accept(); });
  }
  ~RawServer() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    acceptor_.join();
    for (auto& t : served_) t.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int connections() const { return accepted_; }

  // Reads one request's head (through the blank line) and a Content-Length body; "" at the end.
  static std::string ReadRequest(int c) {
    std::string head;
    char ch;
    while (head.find("\r\n\r\n") == std::string::npos) {
      if (::read(c, &ch, 1) != 1) return "";
      head += ch;
    }
    std::size_t cl = head.find("Content-Length: ");
    std::size_t body = cl == std::string::npos ? 0 : std::stoul(head.substr(cl + 16));
    for (; body > 0; --body) {
      if (::read(c, &ch, 1) != 1) return "";
    }
    return head;
  }
  static void Send(int c, const std::string& s) {
    for (std::size_t off = 0; off < s.size();) {
      ssize_t n = ::send(c, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<std::size_t>(n);
    }
  }
  // Reads and drops what the client sends until it closes, then closes: a server that never
  // answers (within the 10 s bound).
  static void WaitForClient(int c) {
    char buf[4096];
    while (::read(c, buf, sizeof buf) > 0) {
    }
    ::close(c);
  }
  // Ends its side, then closes once the client has (a close with the client's bytes unread would
  // reset the connection under the reader).
  static void CloseAfterClient(int c) {
    ::shutdown(c, SHUT_WR);
    WaitForClient(c);
  }

 private:
  void Accept() {
    for (int n = 0;; ++n) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      accepted_ = n + 1;
      timeval bound{10, 0};  // never hang the test on a client that keeps the connection
      ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &bound, sizeof bound);
      ::setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &bound, sizeof bound);
      served_.emplace_back([this, c, n] { serve_(c, n); });
    }
  }

  Serve serve_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<int> accepted_{0};
  std::thread acceptor_;
  std::vector<std::thread> served_;
};

// Answers one request with `chunks` as the chunks of a chunked body (pausing between them).
RawServer::Serve Chunks(std::vector<std::string> chunks) {
  return [chunks = std::move(chunks)](int c, int) {
    RawServer::ReadRequest(c);
    RawServer::Send(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (const std::string& chunk : chunks) {
      std::ostringstream size;
      size << std::hex << chunk.size();
      RawServer::Send(c, size.str() + "\r\n" + chunk + "\r\n");
      // Not a wait for anything: a pause so the chunks arrive as separate reads, not coalesced.
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    RawServer::Send(c, "0\r\n\r\n");
    RawServer::CloseAfterClient(c);
  };
}

std::unique_ptr<HttpTransport> TransportTo(const std::string& url,
                                           std::chrono::seconds idle = std::chrono::seconds(10)) {
  graydebug::kube::RestConfig cfg;
  cfg.server = url;
  std::string error;
  auto transport = graydebug::kube::NewHttpTransport(cfg, idle, &error);
  REQUIRE_MESSAGE(transport, error);
  return transport;
}

std::unique_ptr<LineStream> OpenLines(const RawServer& server) {
  auto transport = TransportTo(server.url());
  HttpRequest req;
  req.path = "/api/v1/pods?watch=true";
  auto r = transport->Stream(req);
  REQUIRE(r.head.status == 200);
  REQUIRE(r.stream);
  return std::move(r.stream);
}

HttpRequest Get(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  HttpRequest req;
  req.path = "/api/v1/namespaces/default/configmaps/x";
  req.timeout = timeout;
  return req;
}

}  // namespace

TEST_CASE("client: watch lines cut anywhere by the chunks arrive whole; CRLF and empty lines are dropped") {
  RawServer server(Chunks({R"({"a":1})"
                           "\n"
                           R"({"b")",
                           ":2}\r\n\n", R"({"c":3})", "\n", "{\"d\"", ":4", "}"}));
  auto lines = OpenLines(server);
  std::vector<std::string> got;
  std::string line;
  ApiError error;
  while (lines->ReadLine(&line, &error)) got.push_back(line);
  CHECK(got == std::vector<std::string>{R"({"a":1})", R"({"b":2})", R"({"c":3})", R"({"d":4})"});
  CHECK(error.kind == ErrorKind::kNone);  // the end of the body, not an error
}

TEST_CASE("client: a watch line past 64 MiB is refused with one line") {
  std::vector<std::string> chunks(65, std::string(1 << 20, 'x'));  // 65 MiB, no newline
  RawServer server(Chunks(std::move(chunks)));
  auto lines = OpenLines(server);
  std::string line;
  ApiError error;
  CHECK_FALSE(lines->ReadLine(&line, &error));
  CHECK(error.kind == ErrorKind::kDecode);
  CHECK(error.message == "watch event larger than 67108864 bytes");
}

TEST_CASE("transport: requests share one kept connection; one the server closed is replaced, even for a POST") {
  // Connection 0 answers three requests and ends its side; connection 1 answers until the client
  // leaves.
  std::atomic<bool> ended{false};
  RawServer server([&ended](int c, int n) {
    for (int i = 0; n > 0 || i < 3; ++i) {
      std::string head = RawServer::ReadRequest(c);
      if (head.empty()) break;
      std::string body = "{\"conn\":" + std::to_string(n) + "}";
      RawServer::Send(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                             std::to_string(body.size()) + "\r\n\r\n" + body);
    }
    ::shutdown(c, SHUT_WR);  // on loopback the FIN has reached the client's socket when this returns
    ended = true;
    RawServer::WaitForClient(c);
  });
  auto transport = TransportTo(server.url());
  for (int i = 0; i < 3; ++i) {
    auto r = transport->Do(Get());
    CHECK(r.status == 200);
    CHECK(r.body == R"({"conn":0})");
  }
  for (int i = 0; !ended && i < 10000; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  REQUIRE(ended);
  // A POST is not sent on a kept connection the server has closed: it goes out on a new one.
  HttpRequest post = Get();
  post.method = "POST";
  post.body = "{}";
  auto r = transport->Do(post);
  CHECK_MESSAGE(r.status == 200, r.error.ToString());
  CHECK(r.body == R"({"conn":1})");
  CHECK(transport->Do(Get()).body == R"({"conn":1})");
  CHECK(server.connections() == 2);
}

TEST_CASE("transport: a kept connection that breaks under a GET is tried once more on a new one") {
  // Connection 0 answers once, then reads the next request and closes without an answer (as a
  // server does whose idle timeout fired while the request was on its way).
  RawServer server([](int c, int n) {
    RawServer::ReadRequest(c);
    if (n == 0) {
      RawServer::Send(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
      RawServer::ReadRequest(c);
      ::close(c);
      return;
    }
    RawServer::Send(c, "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n{\"second\":1}\n");
    RawServer::CloseAfterClient(c);
  });
  auto transport = TransportTo(server.url());
  CHECK(transport->Do(Get()).status == 200);
  auto r = transport->Do(Get());
  CHECK_MESSAGE(r.status == 200, r.error.ToString());
  CHECK(r.body == "{\"second\":1}\n");
  CHECK(server.connections() == 2);
}

TEST_CASE("transport: hostile or silent answers are one-line errors") {
  SUBCASE("not HTTP") {
    RawServer server([](int c, int) {
      RawServer::ReadRequest(c);
      RawServer::Send(c, "SSH-2.0-OpenSSH_9.2\r\n\r\n");
      RawServer::CloseAfterClient(c);
    });
    auto r = TransportTo(server.url())->Do(Get());
    CHECK(r.status == 0);
    CHECK(r.error.kind == ErrorKind::kConnection);
    CHECK(r.error.message.find('\n') == std::string::npos);
    CHECK(r.error.message.find("reading the answer from 127.0.0.1:") == 0);
  }
  SUBCASE("a header past 1 MiB") {
    RawServer server([](int c, int) {
      RawServer::ReadRequest(c);
      RawServer::Send(c, "HTTP/1.1 200 OK\r\nX-Big: " + std::string(2 << 20, 'a') + "\r\nContent-Length: 0\r\n\r\n");
      RawServer::CloseAfterClient(c);
    });
    auto r = TransportTo(server.url())->Do(Get());
    CHECK(r.status == 0);
    CHECK(r.error.kind == ErrorKind::kDecode);
    CHECK(r.error.message == "response header larger than 1048576 bytes");
  }
  SUBCASE("a body cut short") {
    RawServer server([](int c, int) {
      RawServer::ReadRequest(c);
      RawServer::Send(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"items\":[");
      ::shutdown(c, SHUT_WR);
      RawServer::CloseAfterClient(c);
    });
    auto r = TransportTo(server.url())->Do(Get());
    CHECK(r.status == 0);
    CHECK(r.error.kind == ErrorKind::kConnection);
  }
  SUBCASE("no answer within the request's timeout") {
    RawServer server([](int c, int) {
      RawServer::ReadRequest(c);
      RawServer::WaitForClient(c);  // the client gives up first
    });
    auto r = TransportTo(server.url())->Do(Get(std::chrono::milliseconds(200)));
    CHECK(r.status == 0);
    CHECK(r.error.kind == ErrorKind::kTimeout);
    CHECK_FALSE(r.error.not_sent);
  }
  SUBCASE("a watch that goes quiet ends as a timeout: reconnect") {
    RawServer server([](int c, int) {
      RawServer::ReadRequest(c);
      RawServer::Send(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n{\"a\":1}\n\r\n");
      RawServer::WaitForClient(c);
    });
    auto transport = TransportTo(server.url(), std::chrono::seconds(1));
    HttpRequest req = Get();
    auto r = transport->Stream(req);
    REQUIRE(r.stream);
    std::string line;
    ApiError error;
    CHECK(r.stream->ReadLine(&line, &error));
    CHECK(line == R"({"a":1})");
    CHECK_FALSE(r.stream->ReadLine(&line, &error));
    CHECK(error.kind == ErrorKind::kTimeout);
  }
  SUBCASE("a watch answered with an empty body ends at once, cleanly") {
    RawServer server([](int c, int) {
      RawServer::ReadRequest(c);
      RawServer::Send(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
      RawServer::WaitForClient(c);  // keeps the connection: only the framing says the body is over
    });
    auto r = TransportTo(server.url(), std::chrono::seconds(60))->Stream(Get());
    REQUIRE(r.stream);
    std::string line;
    ApiError error;
    CHECK_FALSE(r.stream->ReadLine(&line, &error));
    CHECK(error.kind == ErrorKind::kNone);
  }
  SUBCASE("a refused watch brings its Status") {
    RawServer server([](int c, int) {
      RawServer::ReadRequest(c);
      const std::string status = R"({"kind":"Status","code":410,"reason":"Expired","message":"too old"})";
      RawServer::Send(c, "HTTP/1.1 410 Gone\r\nContent-Length: " + std::to_string(status.size()) + "\r\n\r\n" + status);
      RawServer::CloseAfterClient(c);
    });
    auto r = TransportTo(server.url())->Stream(Get());
    CHECK(r.head.status == 410);
    CHECK_FALSE(r.stream);
    CHECK(graydebug::kube::ErrorFromResponse(r.head.status, r.head.body).reason == "Expired");
  }
}

TEST_CASE("transport: a request with a line break in a header or the path is refused before anything is sent") {
  RawServer server([](int c, int) { RawServer::WaitForClient(c); });
  auto transport = TransportTo(server.url());
  HttpRequest smuggled = Get();
  smuggled.headers.emplace_back("Authorization", "Bearer x\r\nX-Injected: 1");
  auto r = transport->Do(smuggled);
  CHECK(r.status == 0);
  CHECK(r.error.kind == ErrorKind::kConfig);  // ours to fix: not retried
  CHECK_FALSE(r.error.Retriable());
  CHECK(r.error.message == "header Authorization has a line break");
  HttpRequest path = Get();
  path.path = "/api/v1/pods HTTP/1.1\r\nHost: elsewhere";
  CHECK(transport->Do(path).error.kind == ErrorKind::kConfig);
  CHECK(transport->Stream(path).head.error.kind == ErrorKind::kConfig);
  CHECK(server.connections() == 0);
}

TEST_CASE("transport: a watch blocked on a silent server is cancelled from another thread") {
  RawServer server([](int c, int) {
    RawServer::ReadRequest(c);
    RawServer::Send(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    RawServer::WaitForClient(c);
  });
  auto r = TransportTo(server.url(), std::chrono::seconds(60))->Stream(Get());
  REQUIRE(r.stream);
  std::atomic<bool> returned{false};
  ApiError error;
  std::thread reader([&] {
    std::string line;
    CHECK_FALSE(r.stream->ReadLine(&line, &error));
    returned = true;
  });
  // Cancel until the reader returns: a cancel before it blocks counts too, so no timing matters.
  while (!returned) {
    r.stream->Cancel();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  reader.join();
  CHECK(error.kind == ErrorKind::kCancelled);
}

TEST_CASE("transport: a server URL it cannot use is refused when the transport is made") {
  for (const char* url :
       {"ftp://127.0.0.1", "https://", "https://:6443", "https://h:99999", "https://h:6a", "https://user@h",
        "https://h:1:2", "https://[::1", "https://[nothost]:1", "https://h /x", "127.0.0.1:6443"}) {
    graydebug::kube::RestConfig cfg;
    cfg.server = url;
    cfg.source = "kubeconfig k";
    std::string error;
    CHECK_MESSAGE(graydebug::kube::NewHttpTransport(cfg, std::chrono::seconds(1), &error) == nullptr, url);
    CHECK(error == std::string("kubeconfig k: server \"") + url + "\" is not a valid URL");
  }
}

TEST_CASE("client: tls-server-name is the name the server's certificate is checked against") {
  LocalCluster& c = LocalCluster::Shared();
  graydebug::kube::ClientOptions o;
  o.max_retries = 0;
  auto cfg = c.Rest();
  cfg.tls_server_name = "kubernetes.default.svc";  // in the serving certificate, beside 127.0.0.1
  auto named = Client::Create(cfg, o);
  REQUIRE(named.ok());
  auto ok = named.value()->Get(Resource::Namespaces(), "", "default");
  CHECK_MESSAGE(ok.ok(), ok.error().ToString());
  cfg.tls_server_name = "not-this-server.example";
  auto wrong = Client::Create(cfg, o).value()->Get(Resource::Namespaces(), "", "default");
  CHECK(wrong.error().kind == ErrorKind::kConnection);
  CHECK(wrong.error().message.find("TLS handshake") != std::string::npos);
  // A host name in the URL is resolved, and checked as the name.
  cfg.tls_server_name.clear();
  cfg.server.replace(cfg.server.find("127.0.0.1"), 9, "localhost");
  auto by_name = Client::Create(cfg, o).value()->Get(Resource::Namespaces(), "", "default");
  CHECK_MESSAGE(by_name.ok(), by_name.error().ToString());
}

TEST_CASE("transport: requests to the real API server keep one TLS connection") {
  LocalCluster& c = LocalCluster::Shared();
  auto cfg = c.Rest();
  const int api_port = std::stoi(cfg.server.substr(cfg.server.rfind(':') + 1));
  // A TCP relay in front of the API server that counts the connections made through it.
  RawServer relay([api_port](int client, int) {
    int up = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(api_port));
    if (::connect(up, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
      pollfd fds[2] = {{client, POLLIN, 0}, {up, POLLIN, 0}};
      char buf[16384];
      for (bool open = true; open && ::poll(fds, 2, 10000) > 0;) {
        for (int i = 0; i < 2 && open; ++i) {
          if (fds[i].revents == 0) continue;
          ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
          open = n > 0 && ::send(fds[1 - i].fd, buf, static_cast<std::size_t>(n), MSG_NOSIGNAL) == n;
        }
      }
    }
    ::close(up);
    ::close(client);
  });
  cfg.server = "https" + relay.url().substr(4);  // the serving certificate names 127.0.0.1
  {
    auto client = NewClient(cfg);
    for (int i = 0; i < 20; ++i) {
      auto r = client->Get(Resource::Namespaces(), "", "default");
      REQUIRE_MESSAGE(r.ok(), r.error().ToString());
    }
    CHECK(relay.connections() == 1);
  }
}
