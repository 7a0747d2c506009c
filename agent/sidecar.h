#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/leak_detector.h"

namespace prometheus {
class Registry;
}

namespace graydebug::agent {

// The metrics sidecar's settings (graydebug-agent's flags).
struct SidecarOptions {
  std::string listen = ":9102";             // plain HTTP: /metrics, /healthz, /probe/dlv
  std::string dlv_addr = "127.0.0.1:2345";  // the pod's dlv server
  int target_pid = 0;                       // watch this PID instead of searching
  std::string target_process;               // watch the process with this comm / exe name
  std::chrono::milliseconds sample_interval{5000};
  // Connect timeout and reply timeout of one dlv probe (each), so a dlv that accepts and never
  // answers costs at most this much per probe.
  std::chrono::milliseconds probe_timeout{2000};
  // How often the sampler probes dlv itself, so graydebug_target_dlv_up is current without anyone
  // calling /probe/dlv; 0: only /probe/dlv probes.
  std::chrono::milliseconds dlv_probe_interval{15000};
  // The target's expvar endpoint ("http://127.0.0.1:8080/debug/vars"); "" reads RSS only.
  std::string expvar_url;
  std::chrono::milliseconds expvar_timeout{2000};
  LeakDetectorOptions leak;
  std::string proc_root = "/proc";
  // Handler threads of the HTTP server. One always stays free for /healthz and /metrics: at most
  // threads - 2 callers wait for an in-flight probe, more get 503 at once.
  int threads = 6;
  // A probe result younger than this is answered again (marked cached) instead of calling dlv,
  // which bounds dlv calls to 1 / probe_reuse per second (10/s at 100 ms) whatever the traffic.
  std::chrono::milliseconds probe_reuse{100};
  // Where the agent's series go (the manager's, with the libraries' own); nullptr: a registry of its own.
  std::shared_ptr<prometheus::Registry> registry;
};

// The running sidecar: the HTTP server plus the sampler thread.
class Sidecar {
 public:
  // Starts serving and sampling. Returns nullptr and one line in *error when the options are
  // invalid (a bad expvar URL) or the listen address is bad or in use.
  static std::unique_ptr<Sidecar> Start(SidecarOptions options, std::string* error);
  ~Sidecar();  // Stop()s
  Sidecar(const Sidecar&) = delete;
  Sidecar& operator=(const Sidecar&) = delete;

  // The bound HTTP port (the real one when listen asked for port 0).
  int port() const;
  // Finishes in-flight requests, stops the sampler (waiting at most for the probe or expvar read
  // it is doing, both bounded by their timeouts). Idempotent.
  void Stop();

 private:
  struct Impl;
  explicit Sidecar(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// graydebug-agent's sidecar mode: blocks SIGTERM and SIGINT (call it before any thread starts),
// starts the sidecar, waits for one of them and stops. Returns the exit code: 0 after a signal,
// 1 when it cannot start.
int RunSidecar(const SidecarOptions& options);

// ---- Small parts, public for tests ----

struct GoHeap {
  std::optional<uint64_t> heap_inuse;  // memstats.HeapInuse
  std::optional<uint64_t> heap_alloc;  // memstats.HeapAlloc
};

// The dlv process that serves `port`, as /proc shows it (the pod shares one PID namespace).
struct DlvProcess {
  int pid = 0;
  int64_t uid = -1;
  // Started with --only-same-user=false: it accepts clients of any user, as kubectl port-forward's
  // connections are (they come from the container runtime's user).
  bool any_user = false;
};
// The dlv whose --listen ends in ":<port>" among the processes of `proc_root`; nullopt when none is
// visible (then nobody can tell which users it accepts).
std::optional<DlvProcess> FindDlvServing(const std::string& proc_root, int port);
// Reads dlv's argv: whether it serves `port` and accepts any user. Pure.
bool DlvServesPort(const std::vector<std::string>& argv, int port, bool* any_user);

// The heap sizes in a Go expvar document (/debug/vars); nullopt and one line in *error when it is
// not JSON or has neither number.
std::optional<GoHeap> ParseExpvarHeap(std::string_view body, std::string* error);

}  // namespace graydebug::agent
