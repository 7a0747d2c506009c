#include "graydebug/kube/config.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <vector>

namespace fs = std::filesystem;
using graydebug::kube::ConfigOptions;
using graydebug::kube::DecodeBase64;
using graydebug::kube::LoadConfig;
using graydebug::kube::LoadInClusterConfig;
using graydebug::kube::ParseKubeconfig;

namespace {

struct Dir {
  fs::path path;
  Dir() {
    std::string t = (fs::temp_directory_path() / "graydebug-kc-XXXXXX").string();
    path = mkdtemp(t.data());
  }
  ~Dir() { fs::remove_all(path); }
  std::string Write(const std::string& name, const std::string& text) const {
    fs::create_directories((path / name).parent_path());
    std::ofstream(path / name) << text;
    return (path / name).string();
  }
};

// "hello" and "world" in base64.
constexpr const char* kHello = "aGVsbG8=";
constexpr const char* kWorld = "d29ybGQ=";

std::string Kubeconfig(const std::string& user_fields, const std::string& cluster_extra = "",
                       const std::string& current = "ctx") {
  return "apiVersion: v1\nkind: Config\ncurrent-context: " + current +
         "\nclusters:\n- name: c1\n  cluster:\n    server: https://10.1.2.3:6443/\n" + cluster_extra +
         "contexts:\n- name: ctx\n  context: {cluster: c1, user: u1, namespace: shop}\n"
         "- name: other\n  context: {cluster: c1, user: u1}\n"
         "users:\n- name: u1\n  user:\n" +
         user_fields;
}

}  // namespace

TEST_CASE("kubeconfig: inline data, current context, namespace, trailing slash") {
  auto r = ParseKubeconfig(
      Kubeconfig(std::string("    client-certificate-data: ") + kHello + "\n    client-key-data: " + kWorld + "\n",
                 std::string("    certificate-authority-data: ") + kHello + "\n"),
      "/k", "", false);
  REQUIRE_MESSAGE(r.ok, r.error);
  CHECK(r.config.server == "https://10.1.2.3:6443");
  CHECK(r.config.ca_pem == "hello");
  CHECK(r.config.client_cert_pem == "hello");
  CHECK(r.config.client_key_pem == "world");
  CHECK(r.config.namespace_ == "shop");
  CHECK(r.config.source == "kubeconfig /k (context ctx)");
  auto other = ParseKubeconfig(Kubeconfig("    token: abc\n"), "/k", "other", false);
  REQUIRE(other.ok);
  CHECK(other.config.namespace_ == "default");
  CHECK(other.config.token == "abc");
}

TEST_CASE("kubeconfig: files relative to the kubeconfig, and tokenFile") {
  Dir d;
  d.Write("certs/ca.crt", "CA");
  d.Write("certs/me.crt", "CERT");
  d.Write("certs/me.key", "KEY");
  d.Write("token", "tok\n");
  std::string path = d.Write("kc", Kubeconfig("    client-certificate: certs/me.crt\n    client-key: certs/me.key\n"
                                              "    tokenFile: token\n",
                                              "    certificate-authority: certs/ca.crt\n"));
  ConfigOptions o;
  o.kubeconfig = path;
  auto r = LoadConfig(o);
  REQUIRE_MESSAGE(r.ok, r.error);
  CHECK(r.config.ca_pem == "CA");
  CHECK(r.config.client_cert_pem == "CERT");
  CHECK(r.config.client_key_pem == "KEY");
  CHECK(r.config.token_file == d.path.string() + "/token");
}

TEST_CASE("kubeconfig: every bad field is one line naming it") {
  struct Case {
    std::string text, context, want;
  };
  std::vector<Case> cases = {
      {"a: [1", "", "invalid YAML at line"},
      {"- 1\n", "", "not a kubeconfig"},
      {Kubeconfig("    token: x\n", "", "\"\""), "", "current-context is not set"},
      {Kubeconfig("    token: x\n"), "nope", "contexts: no context named \"nope\""},
      {Kubeconfig("    client-key-data: '!!!'\n    client-certificate-data: aGVsbG8=\n"), "",
       "users[name=u1].user.client-key-data: invalid base64"},
      {Kubeconfig("    client-certificate-data: aGVsbG8=\n"), "",
       "client-certificate and client-key must be given together"},
      {Kubeconfig("    client-certificate: /nonexistent.crt\n    client-key: /x\n"), "",
       "users[name=u1].user.client-certificate: /nonexistent.crt: No such file"},
      {Kubeconfig("    token: x\n", "    certificate-authority-data: '%%%'\n"), "",
       "clusters[name=c1].cluster.certificate-authority-data: invalid base64"},
      {Kubeconfig("    token: x\n", "    insecure-skip-tls-verify: true\n"), "",
       "clusters[name=c1].cluster.insecure-skip-tls-verify: true is refused"},
      {Kubeconfig("    exec: {command: aws}\n"), "",
       "users[name=u1].user.exec: exec credential plugins are not supported"},
      {Kubeconfig("    token: [1, 2]\n"), "", "users[name=u1].user.token: must be a string"},
      {Kubeconfig("    tokenFile: /nonexistent-token\n"), "",
       "users[name=u1].user.tokenFile: /nonexistent-token does not exist"},
      {"current-context: ctx\ncontexts:\n- name: ctx\n  context: {cluster: zz}\nclusters: []\n", "",
       "clusters: no cluster named \"zz\""},
      {"current-context: ctx\ncontexts:\n- name: ctx\n  context: {cluster: c}\nclusters:\n- name: c\n  cluster: "
       "{server: "
       "ftp://x}\n",
       "", "clusters[name=c].cluster.server: must be an https:// URL"},
      {"current-context: ctx\ncontexts:\n- name: ctx\n  context: {cluster: c, user: nobody}\nclusters:\n- name: c\n  "
       "cluster: {server: 'https://x'}\n",
       "", "users: no user named \"nobody\""},
      {"current-context: ctx\ncontexts: {ctx: 1}\n", "", "contexts: no context named \"ctx\""},
  };
  for (const auto& c : cases) {
    CAPTURE(c.want);
    auto r = ParseKubeconfig(c.text, "/home/me/.kube/config", c.context, false);
    CHECK_FALSE(r.ok);
    CHECK(r.error.find(c.want) != std::string::npos);
    CHECK(r.error.rfind("kubeconfig /home/me/.kube/config: ", 0) == 0);
    CHECK(r.error.find('\n') == std::string::npos);
  }
  // insecure-skip-tls-verify is accepted only when the caller allows it.
  auto ok = ParseKubeconfig(Kubeconfig("    token: x\n", "    insecure-skip-tls-verify: true\n"), "/k", "", true);
  REQUIRE(ok.ok);
  CHECK(ok.config.insecure_skip_tls_verify);
}

TEST_CASE("kubeconfig: precedence --kubeconfig, KUBECONFIG, ~/.kube/config, in-cluster") {
  Dir d;
  std::string flag = d.Write("flag", Kubeconfig("    token: from-flag\n"));
  std::string env = d.Write("env", Kubeconfig("    token: from-env\n"));
  d.Write("home/.kube/config", Kubeconfig("    token: from-home\n"));
  d.Write("sa/ca.crt", "SACA");
  d.Write("sa/token", "satoken");
  d.Write("sa/namespace", "graydebug-system\n");
  ConfigOptions o;
  o.in_cluster_dir = (d.path / "sa").string();
  o.env = {{"KUBECONFIG", "/missing:" + env},
           {"HOME", (d.path / "home").string()},
           {"KUBERNETES_SERVICE_HOST", "10.0.0.1"},
           {"KUBERNETES_SERVICE_PORT", "443"}};
  o.kubeconfig = flag;
  CHECK(LoadConfig(o).config.token == "from-flag");
  o.kubeconfig.clear();
  CHECK(LoadConfig(o).config.token == "from-env");
  o.env["KUBECONFIG"] = "";
  CHECK(LoadConfig(o).config.token == "from-home");
  o.env["HOME"] = "/nonexistent";
  auto in = LoadConfig(o);
  REQUIRE_MESSAGE(in.ok, in.error);
  CHECK(in.config.server == "https://10.0.0.1:443");
  CHECK(in.config.ca_pem == "SACA");
  CHECK(in.config.token_file == (d.path / "sa/token").string());
  CHECK(in.config.namespace_ == "graydebug-system");
  CHECK(in.config.source == "in-cluster");
  o.use_default_locations = false;
  o.env["HOME"] = (d.path / "home").string();
  CHECK(LoadConfig(o).config.source == "in-cluster");  // home ignored when defaults are off
  o.allow_in_cluster = false;
  CHECK(graydebug::kube::IsNoConfig(LoadConfig(o)));
  // IPv6 service host is bracketed.
  auto v6 = LoadInClusterConfig({{"KUBERNETES_SERVICE_HOST", "fd00::1"}, {"KUBERNETES_SERVICE_PORT", "443"}},
                                (d.path / "sa").string());
  CHECK(v6.config.server == "https://[fd00::1]:443");
}

TEST_CASE("base64") {
  std::string out;
  CHECK(DecodeBase64("aGVsbG8=", &out));
  CHECK(out == "hello");
  CHECK(DecodeBase64("aGVsbG8", &out));  // padding optional
  CHECK(out == "hello");
  CHECK(DecodeBase64("aGVs\nbG8=\n", &out));
  CHECK(DecodeBase64("", &out));
  CHECK(out.empty());
  for (const char* bad : {"a", "aGVsbG8=x", "!!!!", "aGVsbG8===", "aGVsbG9="}) {
    CAPTURE(bad);
    CHECK_FALSE(DecodeBase64(bad, &out));
  }
}
