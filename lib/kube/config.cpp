#include "graydebug/kube/config.h"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <optional>

#include "graydebug/config_file.h"

namespace graydebug::kube {
namespace {

constexpr const char* kNoConfig = "no kubeconfig";
constexpr std::size_t kMaxPemBytes = 256 * 1024;

std::map<std::string, std::string> RealEnv() {
  std::map<std::string, std::string> env;
  for (const char* key : {"KUBECONFIG", "HOME", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"}) {
    if (const char* v = std::getenv(key)) env[key] = v;
  }
  return env;
}

std::string Get(const std::map<std::string, std::string>& env, const std::string& key) {
  auto it = env.find(key);
  return it == env.end() ? "" : it->second;
}

bool Exists(const std::string& path) {
  std::error_code ec;
  return !path.empty() && std::filesystem::exists(path, ec);
}

// A scalar string field, or "" when absent. Sets *error when present but not a scalar.
std::string Scalar(const YAML::Node& node, const char* key, const std::string& where, std::string* error) {
  YAML::Node v = node[key];
  if (!v || v.IsNull()) return "";
  if (!v.IsScalar()) {
    *error = where + "." + key + ": must be a string";
    return "";
  }
  return v.Scalar();
}

// Finds the entry of a named list (clusters, users, contexts) and returns its inner map.
std::optional<YAML::Node> FindNamed(const YAML::Node& root, const char* list, const char* inner,
                                    const std::string& name, std::string* where) {
  YAML::Node items = root[list];
  if (!items || !items.IsSequence()) return std::nullopt;
  for (std::size_t i = 0; i < items.size(); ++i) {
    const YAML::Node& item = items[i];
    if (item.IsMap() && item["name"] && item["name"].IsScalar() && item["name"].Scalar() == name) {
      *where = std::string(list) + "[name=" + name + "]." + inner;
      YAML::Node in = item[inner];
      if (in && in.IsMap()) return in;
      return YAML::Node(YAML::NodeType::Map);
    }
  }
  return std::nullopt;
}

// file-or-data: "<key>-data" (base64) wins over "<key>" (a path, relative to the kubeconfig).
bool FileOrData(const YAML::Node& node, const std::string& key, const std::string& where, const std::string& base_dir,
                std::string* out, std::string* error) {
  std::string data = Scalar(node, (key + "-data").c_str(), where, error);
  if (!error->empty()) return false;
  if (!data.empty()) {
    if (!DecodeBase64(data, out)) {
      *error = where + "." + key + "-data: invalid base64";
      return false;
    }
    return true;
  }
  std::string path = Scalar(node, key.c_str(), where, error);
  if (!error->empty()) return false;
  if (path.empty()) return true;
  if (!path.empty() && path[0] != '/') path = base_dir + "/" + path;
  FileReadResult f = ReadFileLimited(path, kMaxPemBytes);
  if (!f.ok) {
    *error = where + "." + key + ": " + f.error;
    return false;
  }
  *out = std::move(f.contents);
  return true;
}

ConfigResult Fail(std::string message) {
  ConfigResult r;
  r.error = std::move(message);
  return r;
}

}  // namespace

bool DecodeBase64(const std::string& in, std::string* out) {
  out->clear();
  uint32_t acc = 0;
  int bits = 0, pad = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z') {
      v = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      v = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      v = c - '0' + 52;
    } else if (c == '+') {
      v = 62;
    } else if (c == '/') {
      v = 63;
    } else if (c == '=') {
      ++pad;
      continue;
    } else if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
      continue;
    } else {
      return false;
    }
    if (pad > 0) return false;  // data after padding
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  // Leftover bits must be fewer than a byte and zero-valued; padding at most 2.
  return pad <= 2 && bits != 6 && (acc & ((1u << bits) - 1)) == 0;
}

ConfigResult ParseKubeconfig(const std::string& yaml_text, const std::string& path, const std::string& context,
                             bool allow_insecure) {
  const std::string prefix = "kubeconfig " + path + ": ";
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return Fail(prefix + "invalid YAML at line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  if (!root.IsMap()) return Fail(prefix + "not a kubeconfig (expected a YAML mapping)");
  std::string error;
  try {
    std::string ctx_name = context;
    if (ctx_name.empty()) ctx_name = Scalar(root, "current-context", "", &error);
    if (!error.empty()) return Fail(prefix + "current-context: must be a string");
    if (ctx_name.empty()) return Fail(prefix + "current-context is not set (pass --context)");
    std::string where;
    auto found_ctx = FindNamed(root, "contexts", "context", ctx_name, &where);
    if (!found_ctx) return Fail(prefix + "contexts: no context named \"" + ctx_name + "\"");
    const YAML::Node& ctx = *found_ctx;
    std::string cluster_name = Scalar(ctx, "cluster", where, &error);
    std::string user_name = Scalar(ctx, "user", where, &error);
    std::string ns = Scalar(ctx, "namespace", where, &error);
    if (!error.empty()) return Fail(prefix + error);
    if (cluster_name.empty()) return Fail(prefix + where + ".cluster: not set");

    RestConfig cfg;
    cfg.namespace_ = ns.empty() ? "default" : ns;
    cfg.source = "kubeconfig " + path + " (context " + ctx_name + ")";
    const std::string base_dir = std::filesystem::path(path).parent_path().string();

    std::string cwhere;
    auto found_cluster = FindNamed(root, "clusters", "cluster", cluster_name, &cwhere);
    if (!found_cluster) return Fail(prefix + "clusters: no cluster named \"" + cluster_name + "\"");
    const YAML::Node& cluster = *found_cluster;
    cfg.server = Scalar(cluster, "server", cwhere, &error);
    if (!error.empty()) return Fail(prefix + error);
    if (cfg.server.rfind("https://", 0) != 0 && cfg.server.rfind("http://", 0) != 0) {
      return Fail(prefix + cwhere + ".server: must be an https:// URL (got \"" + cfg.server + "\")");
    }
    while (!cfg.server.empty() && cfg.server.back() == '/') cfg.server.pop_back();
    cfg.tls_server_name = Scalar(cluster, "tls-server-name", cwhere, &error);
    std::string insecure = Scalar(cluster, "insecure-skip-tls-verify", cwhere, &error);
    if (!error.empty()) return Fail(prefix + error);
    if (insecure == "true") {
      if (!allow_insecure) {
        return Fail(prefix + cwhere +
                    ".insecure-skip-tls-verify: true is refused (the server's identity would not be checked); "
                    "pass the flag that allows it if you really mean it");
      }
      cfg.insecure_skip_tls_verify = true;
    }
    if (!FileOrData(cluster, "certificate-authority", cwhere, base_dir, &cfg.ca_pem, &error))
      return Fail(prefix + error);

    if (!user_name.empty()) {
      std::string uwhere;
      auto found_user = FindNamed(root, "users", "user", user_name, &uwhere);
      if (!found_user) return Fail(prefix + "users: no user named \"" + user_name + "\"");
      const YAML::Node& user = *found_user;
      if (user["exec"]) return Fail(prefix + uwhere + ".exec: exec credential plugins are not supported");
      if (user["auth-provider"]) return Fail(prefix + uwhere + ".auth-provider: auth providers are not supported");
      if (!FileOrData(user, "client-certificate", uwhere, base_dir, &cfg.client_cert_pem, &error) ||
          !FileOrData(user, "client-key", uwhere, base_dir, &cfg.client_key_pem, &error)) {
        return Fail(prefix + error);
      }
      if (cfg.client_cert_pem.empty() != cfg.client_key_pem.empty()) {
        return Fail(prefix + uwhere + ": client-certificate and client-key must be given together");
      }
      cfg.token = Scalar(user, "token", uwhere, &error);
      cfg.token_file = Scalar(user, "tokenFile", uwhere, &error);
      if (!error.empty()) return Fail(prefix + error);
      if (!cfg.token_file.empty() && cfg.token_file[0] != '/') cfg.token_file = base_dir + "/" + cfg.token_file;
      if (!cfg.token_file.empty() && !Exists(cfg.token_file)) {
        return Fail(prefix + uwhere + ".tokenFile: " + cfg.token_file + " does not exist");
      }
    }
    ConfigResult r;
    r.ok = true;
    r.config = std::move(cfg);
    return r;
  } catch (const YAML::Exception& e) {
    return Fail(prefix + "unexpected structure: " + e.msg);
  }
}

ConfigResult LoadInClusterConfig(const std::map<std::string, std::string>& env, const std::string& dir) {
  std::string host = Get(env, "KUBERNETES_SERVICE_HOST"), port = Get(env, "KUBERNETES_SERVICE_PORT");
  if (host.empty() || port.empty()) return Fail(kNoConfig);
  RestConfig cfg;
  cfg.server = "https://" + (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + port;
  FileReadResult ca = ReadFileLimited(dir + "/ca.crt", kMaxPemBytes);
  if (!ca.ok) return Fail("in-cluster config: " + ca.error);
  cfg.ca_pem = std::move(ca.contents);
  cfg.token_file = dir + "/token";
  if (!Exists(cfg.token_file)) return Fail("in-cluster config: " + cfg.token_file + " does not exist");
  FileReadResult ns = ReadFileLimited(dir + "/namespace", 1024);
  cfg.namespace_ = ns.ok && !ns.contents.empty() ? ns.contents : "default";
  while (!cfg.namespace_.empty() && (cfg.namespace_.back() == '\n' || cfg.namespace_.back() == ' ')) {
    cfg.namespace_.pop_back();
  }
  cfg.source = "in-cluster";
  ConfigResult r;
  r.ok = true;
  r.config = std::move(cfg);
  return r;
}

ConfigResult LoadConfig(const ConfigOptions& options) {
  const std::map<std::string, std::string> env = options.env.empty() ? RealEnv() : options.env;
  auto from_file = [&](const std::string& path) {
    FileReadResult f = ReadFileLimited(path, kMaxConfigFileBytes);
    if (!f.ok) return Fail("kubeconfig " + f.error);
    return ParseKubeconfig(f.contents, path, options.context, options.allow_insecure);
  };
  if (!options.kubeconfig.empty()) return from_file(options.kubeconfig);
  if (options.use_default_locations) {
    std::string list = Get(env, "KUBECONFIG");
    std::size_t start = 0;
    while (!list.empty() && start <= list.size()) {
      std::size_t colon = list.find(':', start);
      std::string path = list.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
      if (Exists(path)) return from_file(path);
      if (colon == std::string::npos) break;
      start = colon + 1;
    }
    std::string home = Get(env, "HOME");
    if (!home.empty() && Exists(home + "/.kube/config")) return from_file(home + "/.kube/config");
  }
  if (options.allow_in_cluster) return LoadInClusterConfig(env, options.in_cluster_dir);
  return Fail(kNoConfig);
}

bool IsNoConfig(const ConfigResult& r) {
  return !r.ok && r.error == kNoConfig;
}

}  // namespace graydebug::kube
