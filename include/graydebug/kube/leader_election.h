#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "graydebug/kube/client.h"
#include "graydebug/manager.h"

namespace graydebug::kube {

struct LeaderElectionConfig {
  std::string lease_namespace;
  std::string lease_name;
  std::string identity;                             // unique per replica: the pod name (HOSTNAME) plus a random suffix
  std::chrono::milliseconds lease_duration{15000};  // how long a lease is valid without renewal
  std::chrono::milliseconds renew_deadline{10000};  // the leader gives up if it cannot renew this long
  std::chrono::milliseconds retry_period{2000};     // how often to try to acquire or renew
  std::function<void()> on_started_leading;         // called on the elector's thread
  // Called once when leadership is lost or released: on the elector's thread, or on its watchdog
  // thread when the renew deadline passes while a renewal is still waiting for the API server (Run
  // returns only after it, so it must not wait for Run).
  std::function<void()> on_stopped_leading;
  std::function<void(const std::string&)> on_new_leader;  // the observed holder changed
};

// client-go's rules: lease_duration > renew_deadline > retry_period > 0 (a leader gives up before a
// standby may take over, and tries to renew at least once before it gives up), a lease name and an
// identity. Returns "" when `config` is valid, else what is wrong.
std::string ValidateLeaderElectionConfig(const LeaderElectionConfig& config);

// Leader election on a coordination.k8s.io/v1 Lease, with client-go's rules: a lease is taken
// over only when its holder has not renewed it for lease_duration as observed on this replica's
// own clock (no cross-node clock comparison); every write carries the resourceVersion read, so
// two candidates never both win; a leader that has not renewed within renew_deadline of the start
// of its last successful renewal stops leading, even while a request hangs on a silent connection
// (a watchdog thread enforces the deadline; a renewal that succeeds after it does not count).
// Stop() releases a held lease (holder cleared) so a successor takes over at its next retry.
class LeaderElector {
 public:
  LeaderElector(std::shared_ptr<Client> client, LeaderElectionConfig config);
  ~LeaderElector();

  // Blocks: acquires, leads (renewing) and returns when leadership ends (lost or Stop()) and the
  // request in flight, if any, has finished. Returns true when it led and released cleanly, false
  // when leadership was lost or never won, or the configuration is invalid.
  bool Run();
  // From any thread: ends Run promptly, releasing the lease if held.
  void Stop();
  bool IsLeader() const { return leading_.load(); }
  std::string ObservedLeader() const;

  // One acquire-or-renew round (public for tests): true when this replica holds the lease now.
  bool TryAcquireOrRenew();

 private:
  bool Release();
  // Waits `d`; true when Stop() was called or, with `or_not_leading`, leadership ended meanwhile.
  bool WaitOrStop(std::chrono::milliseconds d, bool or_not_leading = false);
  // The watchdog: ends leadership when renewed_at_ + renew_deadline passes while leading.
  void WatchRenewDeadline();

  std::shared_ptr<Client> client_;
  LeaderElectionConfig config_;
  const Clock& clock_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> leading_{false};  // written with mu_ held
  Clock::Steady renewed_at_{};        // the start of the last successful acquire or renewal
  std::string observed_holder_;
  std::string observed_rv_;
  nlohmann::json observed_spec_;
  Clock::Steady observed_time_{};
};

// The manager's election on this Lease: `config`'s on_started_leading and on_stopped_leading are
// the manager's; its on_new_leader is kept.
manager::Election ElectionOf(std::shared_ptr<Client> client, LeaderElectionConfig config);

}  // namespace graydebug::kube
