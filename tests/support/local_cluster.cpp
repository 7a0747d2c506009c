#include "support/local_cluster.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace graydebug::testing {
namespace {

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

std::string SourceDir() {
  return GRAYDEBUG_SOURCE_DIR;
}

LocalCluster& LocalCluster::Shared() {
  static LocalCluster cluster;
  return cluster;
}

LocalCluster::LocalCluster(std::vector<std::string> apiserver_args) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "graydebug-cluster-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) {
    error_ = "mkdtemp failed";
    return;
  }
  dir_ = tmpl;
  auto bin = Run({SourceDir() + "/hack/tools/bin-dir", "kubernetes"});
  kubectl_ = Trim(bin.out) + "/kubectl";
  if (access(kubectl_.c_str(), X_OK) != 0) {
    error_ = "kubectl is not built at " + kubectl_ + " (run: make deps)";
    return;
  }
  std::vector<std::string> argv = {SourceDir() + "/hack/cluster", "up", "--dir", dir_, "--owner-pid",
                                   std::to_string(getpid())};
  for (const auto& a : apiserver_args) argv.push_back("--apiserver-arg=" + a);
  auto up = Run(argv, "", std::chrono::seconds(300));
  if (up.exit_code != 0) {
    error_ = "hack/cluster up failed: " + up.err;
    return;
  }
  kubeconfig_ = Trim(up.out);
}

LocalCluster::~LocalCluster() {
  if (dir_.empty()) return;
  Run({SourceDir() + "/hack/cluster", "down", "--dir", dir_}, "", std::chrono::seconds(60));
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

kube::RestConfig LocalCluster::Rest() const {
  kube::ConfigOptions options;
  options.kubeconfig = kubeconfig_;
  kube::ConfigResult r = kube::LoadConfig(options);
  return r.config;
}

std::string LocalCluster::Token(int index) const {
  std::ifstream in(dir_ + "/pki/tokens.csv");
  std::string line;
  for (int i = 0; std::getline(in, line); ++i) {
    if (i == index) return line.substr(0, line.find(','));
  }
  return "";
}

bool LocalCluster::StopApiServer() const {
  return Run({SourceDir() + "/hack/cluster", "stop-apiserver", "--dir", dir_}).exit_code == 0;
}

bool LocalCluster::StartApiServer() const {
  return Run({SourceDir() + "/hack/cluster", "start-apiserver", "--dir", dir_}, "", std::chrono::seconds(180))
             .exit_code == 0;
}

bool LocalCluster::StopEtcd() const {
  return Run({SourceDir() + "/hack/cluster", "stop-etcd", "--dir", dir_}).exit_code == 0;
}

bool LocalCluster::StartEtcd() const {
  return Run({SourceDir() + "/hack/cluster", "start-etcd", "--dir", dir_}, "", std::chrono::seconds(180)).exit_code ==
         0;
}

kube::RestConfig LocalCluster::AddApiServer() const {
  auto r = Run({SourceDir() + "/hack/cluster", "add-apiserver", "--dir", dir_}, "", std::chrono::seconds(180));
  if (r.exit_code != 0) return {};
  kube::ConfigOptions options;
  options.kubeconfig = Trim(r.out);
  return kube::LoadConfig(options).config;
}

bool LocalCluster::CompactEtcd(const std::string& revision) const {
  std::ifstream port_file(dir_ + "/etcd-port");
  std::string port;
  port_file >> port;
  auto r = Run({"curl", "-sf", "-X", "POST", "http://127.0.0.1:" + port + "/v3/kv/compaction", "-d",
                "{\"revision\":\"" + revision + "\",\"physical\":true}"});
  return r.exit_code == 0;
}

ProcessResult LocalCluster::Kubectl(std::vector<std::string> args, const std::string& input) const {
  args.insert(args.begin(), {kubectl_, "--kubeconfig=" + kubeconfig_});
  return Run(args, input, std::chrono::seconds(60));
}

}  // namespace graydebug::testing
