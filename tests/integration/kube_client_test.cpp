// graydebug's Kubernetes client against the real local control plane.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

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

// A plain-HTTP server on loopback that answers one request with `chunks` as the chunks of a
// chunked body (pausing between them), then ends the body. For the watch line reader, whose
// lines arrive cut anywhere.
class ChunkServer {
 public:
  explicit ChunkServer(std::vector<std::string> chunks) : chunks_(std::move(chunks)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd_, 1) == 0);
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~ChunkServer() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  void Serve() {
    int c = ::accept(fd_, nullptr, nullptr);
    if (c < 0) return;
    timeval bound{10, 0};  // never hang the test on a client that keeps the connection
    ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &bound, sizeof bound);
    ::setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &bound, sizeof bound);
    std::string head;
    char buf[4096];
    while (head.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = ::read(c, buf, sizeof buf);
      if (n <= 0) break;
      head.append(buf, static_cast<std::size_t>(n));
    }
    auto send = [c](const std::string& s) {
      for (std::size_t off = 0; off < s.size();) {
        ssize_t n = ::send(c, s.data() + off, s.size() - off, MSG_NOSIGNAL);
        if (n <= 0) return;
        off += static_cast<std::size_t>(n);
      }
    };
    send("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (const std::string& chunk : chunks_) {
      std::ostringstream size;
      size << std::hex << chunk.size();
      send(size.str() + "\r\n" + chunk + "\r\n");
      // Not a wait for anything: a pause so the chunks arrive as separate reads, not coalesced.
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    send("0\r\n\r\n");
    // The body is complete; close once the client has (a close with its bytes unread would reset
    // the connection under the reader).
    ::shutdown(c, SHUT_WR);
    while (::read(c, buf, sizeof buf) > 0) {
    }
    ::close(c);
  }

  std::vector<std::string> chunks_;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

std::unique_ptr<graydebug::kube::LineStream> OpenLines(const ChunkServer& server) {
  graydebug::kube::RestConfig cfg;
  cfg.server = server.url();
  std::string error;
  auto transport = graydebug::kube::NewCpprestTransport(cfg, std::chrono::seconds(10), &error);
  REQUIRE_MESSAGE(transport, error);
  graydebug::kube::HttpRequest req;
  req.path = "/api/v1/pods?watch=true";
  auto r = transport->Stream(req);
  REQUIRE(r.head.status == 200);
  REQUIRE(r.stream);
  return std::move(r.stream);
}

}  // namespace

TEST_CASE("client: watch lines cut anywhere by the chunks arrive whole; CRLF and empty lines are dropped") {
  ChunkServer server({R"({"a":1})"
                      "\n"
                      R"({"b")",
                      ":2}\r\n\n", R"({"c":3})", "\n", "{\"d\"", ":4", "}"});
  auto lines = OpenLines(server);
  std::vector<std::string> got;
  std::string line;
  graydebug::kube::ApiError error;
  while (lines->ReadLine(&line, &error)) got.push_back(line);
  CHECK(got == std::vector<std::string>{R"({"a":1})", R"({"b":2})", R"({"c":3})", R"({"d":4})"});
  CHECK(error.kind == ErrorKind::kNone);  // the end of the body, not an error
}

TEST_CASE("client: a watch line past 64 MiB is refused with one line") {
  std::vector<std::string> chunks(65, std::string(1 << 20, 'x'));  // 65 MiB, no newline
  ChunkServer server(std::move(chunks));
  auto lines = OpenLines(server);
  std::string line;
  graydebug::kube::ApiError error;
  CHECK_FALSE(lines->ReadLine(&line, &error));
  CHECK(error.kind == ErrorKind::kDecode);
  CHECK(error.message == "watch event larger than 67108864 bytes");
}
