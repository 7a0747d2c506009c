#pragma once

#include <map>
#include <string>

namespace graydebug::kube {

// Everything needed to reach one API server as one user.
struct RestConfig {
  std::string server;           // "https://127.0.0.1:6443"
  std::string ca_pem;           // empty: the system's trust store
  std::string tls_server_name;  // overrides the name checked in the server's certificate
  std::string client_cert_pem;  // client TLS certificate chain (PEM), with client_key_pem
  std::string client_key_pem;
  std::string token;       // bearer token, when given inline
  std::string token_file;  // bearer token re-read whenever the file changes (rotation)
  bool insecure_skip_tls_verify = false;
  std::string namespace_;  // the context's namespace ("default" when unset)
  std::string source;      // "kubeconfig /path (context x)" or "in-cluster", for logs
};

struct ConfigResult {
  bool ok = false;
  RestConfig config;
  std::string error;  // one line naming the file and the field, when !ok
};

// Where to look and what to allow. Precedence like kubectl: `kubeconfig` (a --kubeconfig flag),
// else $KUBECONFIG (the first of its ':'-separated files that exists), else ~/.kube/config,
// else the in-cluster service account (when `allow_in_cluster`).
struct ConfigOptions {
  std::string kubeconfig;             // --kubeconfig
  std::string context;                // --context; empty: current-context
  bool allow_insecure = false;        // accept insecure-skip-tls-verify: true
  bool use_default_locations = true;  // consult $KUBECONFIG and ~/.kube/config
  bool allow_in_cluster = true;
  std::map<std::string, std::string> env;  // environment override for tests; empty: the real one
  std::string in_cluster_dir = "/var/run/secrets/kubernetes.io/serviceaccount";
};

// Resolves the configuration as described on ConfigOptions. When nothing is found the error says
// "no kubeconfig" (callers that can run standalone check `error` for that prefix via NotFound()).
ConfigResult LoadConfig(const ConfigOptions& options);

// Parses kubeconfig YAML text; `path` is used for messages and to resolve relative file paths.
// Referenced files (certificate-authority, client-certificate, client-key) are read here.
ConfigResult ParseKubeconfig(const std::string& yaml_text, const std::string& path, const std::string& context,
                             bool allow_insecure);

// The in-cluster configuration: KUBERNETES_SERVICE_HOST/PORT, the service account's CA,
// token file (re-read on rotation) and namespace.
ConfigResult LoadInClusterConfig(const std::map<std::string, std::string>& env, const std::string& dir);

// True when LoadConfig failed only because no configuration exists anywhere.
bool IsNoConfig(const ConfigResult& r);

// Strict base64 (standard alphabet, padding optional, whitespace ignored). False on bad input.
bool DecodeBase64(const std::string& in, std::string* out);

}  // namespace graydebug::kube
