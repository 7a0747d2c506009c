#pragma once

#include <string>
#include <vector>

#include "support/process.h"

namespace graydebug::testing {

// A real etcd + kube-apiserver started with hack/cluster in a temporary directory, shared by all
// cases of one test binary and stopped when the binary exits (a watchdog stops it if the binary
// dies). Construction failure is reported by ok()/error() rather than by throwing.
class LocalCluster {
 public:
  // The cluster of this test binary, started on first use.
  static LocalCluster& Shared();
  ~LocalCluster();

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  const std::string& kubeconfig() const { return kubeconfig_; }
  const std::string& dir() const { return dir_; }

  // Runs the pinned kubectl against this cluster.
  ProcessResult Kubectl(std::vector<std::string> args, const std::string& input = "") const;

 private:
  LocalCluster();
  std::string dir_, kubeconfig_, kubectl_, error_;
};

// The repository root (for manifests/ and hack/).
std::string SourceDir();

}  // namespace graydebug::testing
