#pragma once

#include <string>
#include <vector>

#include "graydebug/kube/config.h"
#include "support/process.h"

namespace graydebug::testing {

// A real etcd + kube-apiserver started with hack/cluster in a temporary directory, shared by all
// cases of one test binary and stopped when the binary exits (a watchdog stops it if the binary
// dies). Construction failure is reported by ok()/error() rather than by throwing.
class LocalCluster {
 public:
  // The cluster of this test binary, started on first use.
  static LocalCluster& Shared();
  // A cluster of its own, with extra kube-apiserver flags (e.g. "--watch-cache=false").
  explicit LocalCluster(std::vector<std::string> apiserver_args);
  ~LocalCluster();
  LocalCluster(const LocalCluster&) = delete;
  LocalCluster& operator=(const LocalCluster&) = delete;

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  const std::string& kubeconfig() const { return kubeconfig_; }
  const std::string& dir() const { return dir_; }

  // The admin (client certificate) configuration, loaded from the kubeconfig by graydebug's loader.
  kube::RestConfig Rest() const;
  // The static bearer token of test user `index` (0: token-user-a, 1: token-user-b).
  std::string Token(int index) const;
  // Stops / starts kube-apiserver alone (same port, same etcd): an API server outage.
  bool StopApiServer() const;
  bool StartApiServer() const;
  // Stops / starts etcd alone (same ports, same data): a storage outage under a running API server.
  // StartEtcd returns once the API server answers again.
  bool StopEtcd() const;
  bool StartEtcd() const;
  // Starts a second kube-apiserver on the same etcd and returns its admin configuration
  // (server empty on failure): changes made through it happen while the first one is down.
  kube::RestConfig AddApiServer() const;
  // Compacts etcd's history up to `revision` (a resourceVersion): older versions become Gone.
  bool CompactEtcd(const std::string& revision) const;

  // Runs the pinned kubectl against this cluster.
  ProcessResult Kubectl(std::vector<std::string> args, const std::string& input = "") const;

 private:
  LocalCluster() : LocalCluster(std::vector<std::string>{}) {}
  std::string dir_, kubeconfig_, kubectl_, error_;
};

// The repository root (for manifests/ and hack/).
std::string SourceDir();

}  // namespace graydebug::testing
