#include "graydebug/kube/leader_election.h"

#include <ctime>
#include <thread>

#include "graydebug/kube/time.h"
#include "graydebug/log.h"
#include "graydebug/telemetry.h"

namespace graydebug::kube {

using nlohmann::json;

LeaderElector::LeaderElector(std::shared_ptr<Client> client, LeaderElectionConfig config)
    : client_(std::move(client)), config_(std::move(config)), clock_(client_->clock()) {}

LeaderElector::~LeaderElector() {
  Stop();
}

std::string LeaderElector::ObservedLeader() const {
  std::lock_guard lock(mu_);
  return observed_holder_;
}

std::string ValidateLeaderElectionConfig(const LeaderElectionConfig& config) {
  auto ms = [](std::chrono::milliseconds d) { return std::to_string(d.count()) + " ms"; };
  if (config.lease_name.empty()) return "no lease name";
  if (config.identity.empty()) return "no identity";
  if (config.retry_period.count() <= 0) return "the retry period must be positive";
  if (config.lease_duration <= config.renew_deadline) {
    return "the lease duration (" + ms(config.lease_duration) + ") must be longer than the renew deadline (" +
           ms(config.renew_deadline) + ")";
  }
  if (config.renew_deadline <= config.retry_period) {
    return "the renew deadline (" + ms(config.renew_deadline) + ") must be longer than the retry period (" +
           ms(config.retry_period) + ")";
  }
  return "";
}

bool LeaderElector::WaitOrStop(std::chrono::milliseconds d, bool or_not_leading) {
  std::unique_lock lock(mu_);
  return clock_.SleepFor(d, lock, cv_, [&] { return stopping_.load() || (or_not_leading && !leading_.load()); });
}

void LeaderElector::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
}

bool LeaderElector::TryAcquireOrRenew() {
  const Resource leases = Resource::Leases();
  const std::string now = FormatTime(clock_.WallNow(), 6);
  const int64_t duration_s = std::max<int64_t>(1, config_.lease_duration.count() / 1000);
  Result<json> got = client_->Get(leases, config_.lease_namespace, config_.lease_name);
  if (!got.ok() && got.error().kind != ErrorKind::kNotFound) {
    log::Warn("cannot read the leader lease", {{"lease", config_.lease_name}, {"error", got.error().ToString()}});
    return false;
  }
  if (!got.ok()) {
    json lease = {{"apiVersion", "coordination.k8s.io/v1"},
                  {"kind", "Lease"},
                  {"metadata", {{"name", config_.lease_name}, {"namespace", config_.lease_namespace}}},
                  {"spec",
                   {{"holderIdentity", config_.identity},
                    {"leaseDurationSeconds", duration_s},
                    {"acquireTime", now},
                    {"renewTime", now},
                    {"leaseTransitions", 0}}}};
    Result<json> created = client_->Create(leases, config_.lease_namespace, lease);
    if (!created.ok()) return false;  // someone else created it first
    std::lock_guard lock(mu_);
    observed_holder_ = config_.identity;
    observed_rv_ = created->at("metadata").value("resourceVersion", "");
    observed_spec_ = created->at("spec");
    observed_time_ = clock_.Now();
    return true;
  }
  json lease = std::move(got).value();
  json spec = lease.contains("spec") && lease["spec"].is_object() ? lease["spec"] : json::object();
  std::string holder = spec.value("holderIdentity", "");
  std::string rv = lease["metadata"].value("resourceVersion", "");
  std::string new_leader;
  {
    std::lock_guard lock(mu_);
    // The lease's age is judged by when *we* last saw it change, not by its renewTime: replicas'
    // clocks may disagree.
    if (spec != observed_spec_) {
      observed_spec_ = spec;
      observed_time_ = clock_.Now();
      if (holder != observed_holder_) {
        observed_holder_ = holder;
        new_leader = holder;
      }
    }
    observed_rv_ = rv;
  }
  if (config_.on_new_leader && !new_leader.empty()) config_.on_new_leader(new_leader);
  {
    std::lock_guard lock(mu_);
    bool held_by_other = !holder.empty() && holder != config_.identity;
    if (held_by_other && clock_.Now() < observed_time_ + config_.lease_duration) return false;
  }
  int64_t transitions = spec.value("leaseTransitions", int64_t{0});
  json next = lease;
  next["spec"]["holderIdentity"] = config_.identity;
  next["spec"]["leaseDurationSeconds"] = duration_s;
  next["spec"]["renewTime"] = now;
  if (holder != config_.identity) {
    next["spec"]["acquireTime"] = now;
    next["spec"]["leaseTransitions"] = transitions + 1;
  }
  Result<json> updated = client_->Update(leases, config_.lease_namespace, next);  // carries rv: Conflict if raced
  if (!updated.ok()) {
    if (updated.error().kind != ErrorKind::kConflict) {
      log::Warn("cannot update the leader lease",
                {{"lease", config_.lease_name}, {"error", updated.error().ToString()}});
    }
    return false;
  }
  std::lock_guard lock(mu_);
  observed_holder_ = config_.identity;
  observed_rv_ = updated->at("metadata").value("resourceVersion", "");
  observed_spec_ = updated->at("spec");
  observed_time_ = clock_.Now();
  return true;
}

bool LeaderElector::Release() {
  // Clear the holder and shorten the lease so a successor takes over at its next retry.
  Result<json> got = client_->Get(Resource::Leases(), config_.lease_namespace, config_.lease_name);
  if (!got.ok()) return false;
  json lease = std::move(got).value();
  if (lease["spec"].value("holderIdentity", "") != config_.identity) return false;
  lease["spec"]["holderIdentity"] = "";
  lease["spec"]["leaseDurationSeconds"] = 1;
  lease["spec"]["renewTime"] = FormatTime(clock_.WallNow(), 6);
  return client_->Update(Resource::Leases(), config_.lease_namespace, lease).ok();
}

void LeaderElector::WatchRenewDeadline() {
  std::unique_lock lock(mu_);
  while (leading_) {
    Clock::Steady deadline = renewed_at_ + config_.renew_deadline;
    if (clock_.Now() >= deadline) break;
    // Wakes at the deadline (renewals move it later: look again then) or when leadership ends.
    clock_.WaitUntil(deadline, lock, cv_, [this] { return !leading_.load(); });
  }
  if (!leading_) return;  // ended by Run (Stop(), or the lease taken)
  leading_ = false;
  lock.unlock();
  cv_.notify_all();
  // A standby takes over once it has seen no renewal for lease_duration (> renew_deadline): stop now,
  // whatever the request in flight does later.
  log::Warn("lost the leader lease: not renewed within the renew deadline",
            {{"lease", config_.lease_namespace + "/" + config_.lease_name},
             {"identity", config_.identity},
             {"renew_deadline_ms", std::to_string(config_.renew_deadline.count())}});
  telemetry::Current().Leading(config_.lease_name, false);
  if (config_.on_stopped_leading) config_.on_stopped_leading();
}

bool LeaderElector::Run() {
  if (std::string why = ValidateLeaderElectionConfig(config_); !why.empty()) {
    log::Error("invalid leader election configuration", {{"error", why}});
    return false;
  }
  // Acquire. Leadership counts from the start of the winning attempt: the write happened at some
  // point during it. An attempt that took longer than the renew deadline may be stale already, so
  // it does not count (the next one renews at once if the lease is still ours).
  Clock::Steady acquired_at{};
  while (!stopping_) {
    acquired_at = clock_.Now();
    if (TryAcquireOrRenew()) {
      if (clock_.Now() - acquired_at < config_.renew_deadline) break;
      log::Warn("the leader lease was acquired only after the renew deadline; renewing it before leading",
                {{"lease", config_.lease_namespace + "/" + config_.lease_name}, {"identity", config_.identity}});
    }
    if (WaitOrStop(config_.retry_period)) return false;
  }
  if (stopping_) return false;
  {
    std::lock_guard lock(mu_);
    renewed_at_ = acquired_at;
    leading_ = true;
  }
  log::Info("became the leader",
            {{"lease", config_.lease_namespace + "/" + config_.lease_name}, {"identity", config_.identity}});
  telemetry::Current().Leading(config_.lease_name, true);
  if (config_.on_started_leading) config_.on_started_leading();
  std::thread watchdog([this] { WatchRenewDeadline(); });
  // Renew every retry_period until Stop(), the lease is seen taken, or the watchdog ends leadership.
  bool taken = false;
  while (!stopping_ && leading_) {
    if (WaitOrStop(config_.retry_period, true)) break;
    Clock::Steady started = clock_.Now();
    bool renewed = TryAcquireOrRenew();
    std::lock_guard lock(mu_);
    if (!leading_) break;  // the deadline passed during the attempt: a late success does not count
    if (renewed) {
      renewed_at_ = started;
    } else if (observed_holder_ != config_.identity) {
      taken = true;
      break;
    }
  }
  bool was_leading = false;
  {
    std::lock_guard lock(mu_);
    was_leading = leading_.exchange(false);
  }
  cv_.notify_all();
  watchdog.join();
  if (!was_leading) return false;  // the watchdog ended leadership and ran on_stopped_leading
  bool released = !taken && Release();
  log::Info(taken ? "lost the leader lease" : "released the leader lease",
            {{"lease", config_.lease_namespace + "/" + config_.lease_name}, {"identity", config_.identity}});
  telemetry::Current().Leading(config_.lease_name, false);
  if (config_.on_stopped_leading) config_.on_stopped_leading();
  return released;
}

manager::Election ElectionOf(std::shared_ptr<Client> client, LeaderElectionConfig config) {
  // Made at run time, when the manager hands over its callbacks; stop may come from another thread.
  struct Shared {
    std::mutex mu;
    std::unique_ptr<LeaderElector> elector;
    bool stopped = false;
  };
  auto shared = std::make_shared<Shared>();
  manager::Election e;
  e.run = [shared, client = std::move(client), config = std::move(config)](std::function<void()> started,
                                                                           std::function<void()> stopped) mutable {
    config.on_started_leading = std::move(started);
    config.on_stopped_leading = std::move(stopped);
    LeaderElector* elector = nullptr;
    {
      std::lock_guard lock(shared->mu);
      if (shared->stopped) return;
      shared->elector = std::make_unique<LeaderElector>(client, config);
      elector = shared->elector.get();
    }
    elector->Run();
  };
  e.stop = [shared] {
    std::lock_guard lock(shared->mu);
    shared->stopped = true;
    if (shared->elector) shared->elector->Stop();
  };
  return e;
}

}  // namespace graydebug::kube
