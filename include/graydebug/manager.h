#pragma once

// The manager every graydebug server runs under (controller-runtime's manager as the model): it
// owns the metrics registry and the libraries' telemetry, serves /metrics and the named health
// checks, starts runnables in order, starts the leader-gated ones when this replica leads, and on
// SIGTERM or SIGINT stops everything in reverse order. Each main.cpp only builds the parts and
// hands them to a Manager (docs/architecture.md, "The manager").

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace prometheus {
class Registry;
}

namespace graydebug::http {
class Server;
}

namespace graydebug::manager {

// Something the manager starts and stops.
struct Runnable {
  std::string name;
  // Starts it. Returns "" when it runs, else one line: the manager then stops what it started and
  // Run returns 1. It may block (a load retried until it works) but must return soon once
  // `stopping` is true; what it returns then is ignored.
  std::function<std::string(const std::atomic<bool>& stopping)> start;
  // Stops it (waits for its threads). Called only when start returned "", once. May be empty.
  std::function<void()> stop;
};

// A Runnable that calls `tick` every `interval` on a thread of its own until it is stopped (the
// webhook's config file check). The first call comes one interval after the start.
Runnable Every(std::string name, std::chrono::milliseconds interval, std::function<void()> tick);

// A health check: "" when healthy, else why not, in one line ("informers not synced").
using Check = std::function<std::string()>;

// Leader election, as the manager needs it: `run` blocks until `stop` is called, calling
// `started` when this replica begins to lead and `stopped` when it no longer does (lost, or
// released by `stop`). kube::ElectionOf builds one from a Lease.
struct Election {
  std::function<void(std::function<void()> started, std::function<void()> stopped)> run;
  std::function<void()> stop;
};

struct Options {
  std::string metrics_addr;  // plain-HTTP /metrics (and /healthz); "" when the component serves them itself
  std::string health_addr;   // plain-HTTP /healthz and /readyz; "" for none, or ServeHealthOn a server of its own
  // After the stop signal: how long /readyz answers 503 "shutting down" while everything keeps
  // running, so the Service stops sending requests here before any listener closes.
  std::chrono::milliseconds shutdown_delay{0};
  // Called (from any thread) when leadership is lost or a leader-gated runnable cannot start: by
  // default it logs and exits the process at once with status 1. Tests record it instead.
  std::function<void(const std::string& why)> fatal;
};

class Manager {
 public:
  // Creates the registry and installs the libraries' telemetry into it: construct the manager
  // before any kube client, queue or server. Starts nothing.
  explicit Manager(Options options);
  ~Manager();
  Manager(const Manager&) = delete;
  Manager& operator=(const Manager&) = delete;

  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }
  prometheus::Registry& Registry() const { return *registry_; }

  // Each runnable is the series graydebug_manager_runnable_up{runnable} of the registry: 1 while it
  // runs (started and not yet stopped), else 0.
  // Started by Run in the order added, after the metrics and health servers; stopped in reverse.
  void Add(Runnable runnable);
  // Started in the order added once this replica leads (at once without an election), after every
  // Add'ed runnable; stopped in reverse before the election releases the lease. When leadership is
  // lost, the process exits at once with status 1 (a fresh replica stands by, as controller-runtime's
  // manager does), so nothing writes after another replica took over.
  void AddLeaderGated(Runnable runnable);
  void SetElection(Election election);

  // /healthz/<name> and /readyz/<name>, and together /healthz and /readyz: 200 "ok" when all pass,
  // else 503 with one "[-]<name> failed: <why>" line per failing check ("?verbose" lists every
  // check). /readyz also fails while shutting down; with an election it says leader or standby.
  void AddHealthzCheck(std::string name, Check check);
  void AddReadyzCheck(std::string name, Check check);
  // Serves the health endpoints on `server` too (the webhook's TLS port): before it starts.
  void ServeHealthOn(http::Server& server);

  bool Leading() const { return leading_.load(); }
  bool Stopping() const { return stopping_.load(); }
  // The bound ports of the manager's own servers once Run started them (0 before, or without one).
  int metrics_port() const { return metrics_port_.load(); }
  int health_port() const { return health_port_.load(); }

  // Starts everything, blocks until `wait_for_stop` returns (by default: SIGTERM or SIGINT, which
  // main must have blocked with BlockStopSignals before any thread started) and stops everything.
  // Returns the exit status: 0 after a clean stop, 1 when a server or runnable could not start.
  int Run(std::function<std::string()> wait_for_stop = {});

  // The answer of /healthz (readyz false) or /readyz: status and body (for tests and the servers).
  struct Answer {
    int status;
    std::string body;
  };
  Answer Health(bool readyz, const std::string& only, bool verbose) const;

 private:
  struct NamedCheck {
    std::string name;
    Check check;
  };
  void InstallHealth(http::Server& server);
  std::string StartAll(std::vector<Runnable>& list, std::size_t* started);
  void StopAll(std::vector<Runnable>& list, std::size_t* started);
  void StartLeading();
  void SetUp(const std::string& name, bool up);

  Options options_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<void> telemetry_;
  std::vector<Runnable> runnables_, gated_;
  struct UpGauges;
  std::shared_ptr<UpGauges> up_;
  std::size_t runnables_started_ = 0, gated_started_ = 0;
  std::vector<NamedCheck> healthz_, readyz_;
  std::vector<http::Server*> health_on_;
  std::unique_ptr<Election> election_;
  std::atomic<bool> leading_{false}, stopping_{false};
  std::atomic<int> metrics_port_{0}, health_port_{0};

  // Leader-gated runnables start on a thread of their own (the elector must keep renewing while a
  // start retries); gate_mu_ orders that start against the stop.
  std::mutex gate_mu_;
  std::thread gate_thread_;
};

}  // namespace graydebug::manager
