// A tiny program that runs graydebug's LeaderElector, for the two-process leader election test.
// Prints "LEADING <id>" / "STOPPED <id>" lines; SIGTERM stops it cleanly (releasing the lease).
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <thread>

#include "graydebug/cli_app.h"
#include "graydebug/kube/leader_election.h"
#include "graydebug/stop_signals.h"

using namespace graydebug;
using namespace std::chrono_literals;

int main(int argc, char** argv) {
  std::string kubeconfig, identity, lease_name = "test-lease", lease_namespace = "default";
  std::chrono::milliseconds lease = 15s, renew = 10s, retry = 2s;
  CommonFlags common;
  FlagSet flags("leader_main", "leader_main --kubeconfig F --identity ID", "leader election test helper");
  flags.String("kubeconfig", &kubeconfig, "kubeconfig");
  flags.String("identity", &identity, "identity");
  flags.String("lease-name", &lease_name, "lease name");
  flags.Duration("lease-duration", &lease, 1s, 1h, "lease duration");
  flags.Duration("renew-deadline", &renew, 100ms, 1h, "renew deadline");
  flags.Duration("retry-period", &retry, 10ms, 1h, "retry period");
  common.Register(flags);
  if (auto code = ParseCommandLine(flags, common, "leader", ArgsOf(argc, argv), nullptr)) return *code;

  kube::LeaderElectionConfig lc;
  lc.lease_namespace = lease_namespace;
  lc.lease_name = lease_name;
  lc.identity = identity;
  lc.lease_duration = lease;
  lc.renew_deadline = renew;
  lc.retry_period = retry;
  if (std::string why = kube::ValidateLeaderElectionConfig(lc); !why.empty()) return UsageError(flags, why);
  BlockStopSignals();

  kube::ConfigOptions co;
  co.kubeconfig = kubeconfig;
  auto cfg = kube::LoadConfig(co);
  if (!cfg.ok) {
    std::cerr << cfg.error << "\n";
    return 2;
  }
  // The default client (30 s request timeout, retries), unlike the controller's lease client: the
  // stall test checks that the elector's renew deadline alone ends leadership.
  auto client = kube::Client::Create(cfg.config);
  if (!client.ok()) {
    std::cerr << client.error().ToString() << "\n";
    return 2;
  }
  lc.on_started_leading = [&] { std::cout << "LEADING " << identity << std::endl; };
  lc.on_stopped_leading = [&] { std::cout << "STOPPED " << identity << std::endl; };
  lc.on_new_leader = [&](const std::string& holder) {
    std::cout << "OBSERVED " << identity << " " << holder << std::endl;
  };
  kube::LeaderElector elector(client.value(), lc);
  std::thread signals([&] {
    WaitForStopSignal();
    elector.Stop();
  });
  bool released = elector.Run();
  std::cout << "EXIT " << identity << (released ? " released" : " not-released") << std::endl;
  // Run also ends on its own (a lost lease): wake the signal thread and join it before the elector
  // goes away (a detached one could still be calling Stop on it).
  ::kill(::getpid(), SIGTERM);
  signals.join();
  return 0;
}
