#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "graydebug/kube/client.h"

namespace graydebug::kube {

struct LeaderElectionConfig {
  std::string lease_namespace;
  std::string lease_name;
  std::string identity;                             // unique per replica: the pod name (HOSTNAME) plus a random suffix
  std::chrono::milliseconds lease_duration{15000};  // how long a lease is valid without renewal
  std::chrono::milliseconds renew_deadline{10000};  // the leader gives up if it cannot renew this long
  std::chrono::milliseconds retry_period{2000};     // how often to try to acquire or renew
  std::function<void()> on_started_leading;         // called on the elector's thread
  std::function<void()> on_stopped_leading;         // called when leadership is lost or released
  std::function<void(const std::string&)> on_new_leader;  // the observed holder changed
};

// Leader election on a coordination.k8s.io/v1 Lease, with client-go's rules: a lease is taken
// over only when its holder has not renewed it for lease_duration as observed on this replica's
// own clock (no cross-node clock comparison); every write carries the resourceVersion read, so
// two candidates never both win; a leader that cannot renew within renew_deadline stops leading.
// Stop() releases a held lease (holder cleared) so a successor takes over at its next retry.
class LeaderElector {
 public:
  LeaderElector(std::shared_ptr<Client> client, LeaderElectionConfig config);
  ~LeaderElector();

  // Blocks: acquires, leads (renewing) and returns when leadership ends (lost or Stop()).
  // Returns true when it led and released cleanly, false when leadership was lost or never won.
  bool Run();
  // From any thread: ends Run promptly, releasing the lease if held.
  void Stop();
  bool IsLeader() const { return leading_.load(); }
  std::string ObservedLeader() const;

  // One acquire-or-renew round (public for tests): true when this replica holds the lease now.
  bool TryAcquireOrRenew();

 private:
  bool Release();
  bool WaitOrStop(std::chrono::milliseconds d);

  std::shared_ptr<Client> client_;
  LeaderElectionConfig config_;
  const Clock& clock_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> leading_{false};
  std::string observed_holder_;
  std::string observed_rv_;
  nlohmann::json observed_spec_;
  Clock::Steady observed_time_{};
};

// Formats a wall time as Kubernetes MicroTime ("2026-11-25T18:00:00.123456Z").
std::string FormatMicroTime(Clock::Wall t);

}  // namespace graydebug::kube
