#pragma once
// The I/O side of kubectl-graydebug: each command talks to the API server through graydebug's
// one Kubernetes client, prints, and returns the process exit code (0 ok, 1 API or runtime error,
// 2 usage). The decisions are in cli/plugin.h; docs/kubectl-plugin.md describes the behaviour.
#include <chrono>
#include <optional>
#include <string>

namespace graydebug::cli {

struct Globals {
  std::string program;  // "kubectl graydebug attach", the prefix of error lines
  std::string kubeconfig, context, namespace_;
};

struct AttachOptions {
  std::string target;    // "<pod>" or "deploy/NAME"; empty when `selector` is given
  std::string selector;  // -l: a label selector (the controller picks the newest ready injected pod)
  bool keep = false;     // leave the session Active when interrupted (it expires by its ttl)
  std::chrono::milliseconds ttl{std::chrono::minutes(15)};
  std::string reason;
  std::chrono::milliseconds timeout{std::chrono::seconds(60)};
  bool port_forward = true;
  std::optional<int> local_port;  // unset: the pod's dlv port
};

// Blocks SIGINT and SIGTERM for the whole process (call before any thread starts): `attach`
// waits for them itself, so an interrupt deletes a session that never became Active and stops
// the port-forward cleanly.
void BlockStopSignals();

int Attach(const Globals& g, const AttachOptions& o);
int List(const Globals& g, bool all_namespaces, const std::string& output);
int End(const Globals& g, const std::string& session);
int Status(const Globals& g, const std::string& circuits_namespace, const std::string& output);

}  // namespace graydebug::cli
