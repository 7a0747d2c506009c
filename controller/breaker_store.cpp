#include "controller/breaker_store.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include "graydebug/api/circuits.h"
#include "graydebug/api/pod.h"
#include "graydebug/kube/time.h"
#include "graydebug/log.h"

namespace graydebug::controller {
namespace {

using json = nlohmann::json;

std::string OwnerOf(const json& obj, std::string* kind) {
  if (!obj.is_object() || !obj.contains("metadata")) return "";
  const json& md = obj["metadata"];
  auto owners = md.find("ownerReferences");
  if (owners == md.end() || !owners->is_array()) return "";
  for (const json& o : *owners) {
    if (o.is_object() && o.value("controller", false)) {
      *kind = o.value("kind", "");
      return o.value("name", "");
    }
  }
  return "";
}

}  // namespace

BreakerStore::BreakerStore(std::shared_ptr<kube::Client> client, std::string ns, BreakerConfig config,
                           prometheus::Registry& registry, kube::EventRecorder* events, const Clock* clock)
    : client_(std::move(client)),
      ns_(std::move(ns)),
      config_(config),
      events_(events),
      clock_(clock != nullptr ? *clock : RealClock::Get()),
      state_(prometheus::BuildGauge()
                 .Name("graydebug_circuit_state")
                 .Help("Circuit breaker of a gray release: 0 closed, 1 half-open, 2 open")
                 .Register(registry)),
      trips_(prometheus::BuildCounter()
                 .Name("graydebug_circuit_trips_total")
                 .Help("Times a release's circuit breaker opened")
                 .Register(registry)),
      writes_(prometheus::BuildCounter()
                  .Name("graydebug_circuit_writes_total")
                  .Help("Writes of ConfigMap graydebug-circuits that stored attempts (each stores every attempt "
                        "recorded before it: a group commit)")
                  .Register(registry)
                  .Add({})),
      stored_attempts_(prometheus::BuildCounter()
                           .Name("graydebug_circuit_attempts_stored_total")
                           .Help("Attach attempts stored in ConfigMap graydebug-circuits; divided by "
                                 "graydebug_circuit_writes_total, the attempts per write")
                           .Register(registry)
                           .Add({})),
      trip_queue_(clock_, std::chrono::milliseconds(500), std::chrono::seconds(30)) {}

BreakerStore::~BreakerStore() {
  Stop();
}

void BreakerStore::PublishLocked(const std::string& release_key, const CircuitBreaker& b, Clock::Wall now) {
  const auto [ns, release] = api::SplitReleaseKey(release_key);
  state_.Add({{"namespace", ns}, {"release", release}}).Set(static_cast<double>(b.State(now)));
}

bool BreakerStore::Load() {
  auto cm = client_->Get(kube::Resource::ConfigMaps(), ns_, api::kCircuitsConfigMap);
  std::lock_guard l(mu_);
  if (!cm.ok()) {
    if (cm.error().kind == kube::ErrorKind::kNotFound) {
      rv_.clear();
      return true;
    }
    log::Warn("cannot read the circuit breakers",
              {{"configmap", ns_ + "/" + api::kCircuitsConfigMap}, {"error", cm.error().ToString()}});
    return false;
  }
  rv_ = cm.value()["metadata"].value("resourceVersion", "");
  auto data = cm.value().find("data");
  stored_.clear();
  int loaded = 0, open = 0;
  auto now = clock_.WallNow();
  if (data != cm.value().end() && data->is_object()) {
    for (const auto& [key, value] : data->items()) {
      if (value.is_string()) stored_[key] = value.get<std::string>();
      api::CircuitEntry e = api::DecodeCircuit(key, value, config_);
      if (!e.breaker) {
        log::Warn("ignoring a malformed circuit breaker entry", {{"key", key}, {"problem", e.problem}});
        continue;
      }
      breakers_.insert_or_assign(e.release_key, *e.breaker);
      PublishLocked(e.release_key, *e.breaker, now);
      ++loaded;
      open += e.breaker->State(now) != BreakerState::kClosed;
    }
  }
  log::Info("circuit breakers loaded", {{"releases", std::to_string(loaded)}, {"not_closed", std::to_string(open)}});
  return true;
}

void BreakerStore::AdoptLocked(const json* data, const std::string& rv, Clock::Wall now) {
  std::map<std::string, std::string> current;
  if (data != nullptr && data->is_object()) {
    for (const auto& [key, value] : data->items()) {
      if (value.is_string()) current[key] = value.get<std::string>();
    }
  }
  // Entries we stored that are gone: an operator reset them.
  for (const auto& [key, value] : stored_) {
    if (current.count(key)) continue;
    std::string release_key = api::ReleaseKeyOfCircuitDataKey(key);
    if (breakers_.erase(release_key) > 0) {
      log::Warn("circuit breaker reset: its entry was removed from ConfigMap " + std::string(api::kCircuitsConfigMap),
                {{"release", release_key}});
      PublishLocked(release_key, CircuitBreaker(config_), now);
    }
  }
  // Entries that differ from what we stored: someone else's breaker state wins.
  for (const auto& [key, value] : current) {
    auto was = stored_.find(key);
    if (was != stored_.end() && was->second == value) continue;
    api::CircuitEntry e = api::DecodeCircuit(key, json(value), config_);
    const std::string& release_key = e.release_key;
    const auto& b = e.breaker;
    if (!b) {
      log::Warn("circuit breaker entry edited into something unreadable: the release starts closed",
                {{"release", release_key}});
      breakers_.erase(release_key);
      PublishLocked(release_key, CircuitBreaker(config_), now);
      continue;
    }
    log::Warn("circuit breaker replaced by an edit of ConfigMap " + std::string(api::kCircuitsConfigMap),
              {{"release", release_key}, {"state", BreakerStateName(b->State(now))}});
    breakers_.insert_or_assign(release_key, *b);
    PublishLocked(release_key, *b, now);
  }
  stored_ = std::move(current);
  rv_ = rv;
}

bool BreakerStore::SyncExternalEdits() {
  auto cm = client_->Get(kube::Resource::ConfigMaps(), ns_, api::kCircuitsConfigMap);
  const auto now = clock_.WallNow();
  std::lock_guard l(mu_);
  if (!cm.ok()) {
    if (cm.error().kind != kube::ErrorKind::kNotFound) return false;
    if (rv_.empty()) return true;  // never written, and none exists
    log::Warn("ConfigMap " + std::string(api::kCircuitsConfigMap) + " was deleted: every circuit breaker is reset");
    AdoptLocked(nullptr, "", now);
    dirty_ = dirty_ || !breakers_.empty();
    return true;
  }
  std::string rv = cm.value()["metadata"].value("resourceVersion", "");
  if (rv == rv_) return true;
  auto data = cm.value().find("data");
  AdoptLocked(data != cm.value().end() ? &*data : nullptr, rv, now);
  return true;
}

void BreakerStore::Start() {
  std::lock_guard l(mu_);
  if (writer_.joinable()) return;
  stop_ = false;
  trip_worker_ = std::thread([this] {
    trip_queue_.RunWorker([this](const std::string& key) { return ReconcileTrip(key); },
                          "circuit breaker trip effects");
  });
  writer_ = std::thread([this] {
    std::unique_lock l(mu_);
    auto next_sync = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!stop_) {
      cv_.wait_for(l, std::chrono::seconds(1), [&] { return stop_ || urgent_; });
      if (stop_) break;
      if (std::chrono::steady_clock::now() >= next_sync) {
        // An operator's edit (a reset) reaches the leader within seconds, not at the next leader.
        l.unlock();
        SyncExternalEdits();
        l.lock();
        next_sync = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      }
      // Cool-downs end with time, not with attempts: publish half-open when it is due.
      auto now = clock_.WallNow();
      for (auto& [key, b] : breakers_) {
        if (b.Advance(now) == CircuitBreaker::Change::kHalfOpened) {
          log::Info("circuit breaker half-open: trial sessions allowed", {{"release", key}});
          PublishLocked(key, b, now);
          dirty_ = true;
        }
      }
      if (!dirty_) {
        urgent_ = false;  // nothing new to write (a waiter's attempt is in the write in flight)
        continue;
      }
      l.unlock();
      bool ok = Flush();
      l.lock();
      if (!ok) cv_.wait_for(l, std::chrono::seconds(1), [&] { return stop_; });
    }
  });
}

void BreakerStore::Stop() {
  {
    std::lock_guard l(mu_);
    if (!writer_.joinable()) return;
    stop_ = true;
  }
  cv_.notify_all();
  writer_.join();
  trip_queue_.ShutDown();
  trip_worker_.join();
  if (dirty_) Flush();
}

bool BreakerStore::Flush() {
  json data = json::object();
  std::string rv;
  uint64_t recorded = 0;
  {
    std::lock_guard l(mu_);
    for (const auto& [key, b] : breakers_) data[api::CircuitDataKey(key)] = b.ToJson().dump();
    dirty_ = urgent_ = false;
    rv = rv_;
    recorded = recorded_;
  }
  json cm = {{"apiVersion", "v1"},
             {"kind", "ConfigMap"},
             {"metadata",
              {{"name", api::kCircuitsConfigMap},
               {"namespace", ns_},
               {"labels", {{"app.kubernetes.io/name", "graydebug"}, {"app.kubernetes.io/component", "circuits"}}}}},
             {"data", data}};
  Result<json> r = rv.empty() ? client_->Create(kube::Resource::ConfigMaps(), ns_, cm) : [&] {
    cm["metadata"]["resourceVersion"] = rv;
    return client_->Update(kube::Resource::ConfigMaps(), ns_, cm);
  }();
  if (!r.ok() && (r.error().kind == kube::ErrorKind::kConflict || r.error().kind == kube::ErrorKind::kAlreadyExists ||
                  r.error().kind == kube::ErrorKind::kNotFound)) {
    // Someone else wrote it (an operator resetting a breaker, a previous leader): take over the
    // entries they changed, keep ours for the rest, and write again.
    SyncExternalEdits();
    std::lock_guard l(mu_);
    dirty_ = true;
    return false;
  }
  bool stored_more = false;
  {
    std::lock_guard l(mu_);
    if (!r.ok()) {
      log::Warn("writing the circuit breakers failed; retrying", {{"error", r.error().ToString()}});
      dirty_ = true;
      return false;
    }
    rv_ = r.value()["metadata"].value("resourceVersion", "");
    stored_.clear();
    for (const auto& [key, value] : data.items()) stored_[key] = value.get<std::string>();
    stored_more = recorded > persisted_;
    if (stored_more) {
      writes_.Increment();
      stored_attempts_.Increment(static_cast<double>(recorded - persisted_));
    }
    persisted_ = std::max(persisted_, recorded);
  }
  if (stored_more) {
    // Without mu_: the callback requeues sessions, whose reconciles call into the store.
    std::lock_guard l(stored_cb_mu_);
    if (on_stored_) on_stored_();
  }
  return true;
}

bool BreakerStore::Stored(uint64_t seq) {
  std::lock_guard l(mu_);
  if (persisted_ >= seq) return true;
  // Not dirty: the write in flight already carries `seq` (a failed one marks the store dirty).
  if (dirty_ && !urgent_) {
    urgent_ = true;
    cv_.notify_all();
  }
  return false;
}

void BreakerStore::OnStored(std::function<void()> f) {
  std::lock_guard l(stored_cb_mu_);
  on_stored_ = std::move(f);
}

CircuitView BreakerStore::View(const std::string& release_key, Clock::Wall now) {
  std::lock_guard l(mu_);
  auto it = breakers_.find(release_key);
  if (it == breakers_.end()) return {};
  if (it->second.Advance(now) == CircuitBreaker::Change::kHalfOpened) {
    log::Info("circuit breaker half-open: trial sessions allowed", {{"release", release_key}});
    PublishLocked(release_key, it->second, now);
    dirty_ = urgent_ = true;
    cv_.notify_all();
  }
  BreakerState s = it->second.State(now);
  return {s == BreakerState::kOpen       ? CircuitState::kOpen
          : s == BreakerState::kHalfOpen ? CircuitState::kHalfOpen
                                         : CircuitState::kClosed,
          it->second.RetryAt()};
}

BreakerState BreakerStore::StateOf(const std::string& release_key, Clock::Wall now) {
  std::lock_guard l(mu_);
  auto it = breakers_.find(release_key);
  return it == breakers_.end() ? BreakerState::kClosed : it->second.State(now);
}

uint64_t BreakerStore::Record(const std::string& release_key, bool success, Clock::Wall now, const json* pod) {
  std::optional<CircuitBreaker> opened;
  uint64_t seq = 0;
  {
    std::lock_guard l(mu_);
    auto [it, inserted] = breakers_.try_emplace(release_key, config_);
    CircuitBreaker::Change change = it->second.Record(success, now);
    dirty_ = true;
    seq = ++recorded_;
    if (change != CircuitBreaker::Change::kNone || inserted) {
      urgent_ = true;
      PublishLocked(release_key, it->second, now);
    }
    if (change == CircuitBreaker::Change::kOpened) {
      const auto [ns, release] = api::SplitReleaseKey(release_key);
      trips_.Add({{"namespace", ns}, {"release", release}}).Increment();
      opened = it->second;
    } else if (change == CircuitBreaker::Change::kClosed) {
      log::Info("circuit breaker closed after successful trials", {{"release", release_key}});
    }
  }
  cv_.notify_all();
  if (opened) {
    const CircuitBreaker& b = *opened;
    std::string message = "attach failures of release " + release_key + " reached " + std::to_string(b.failures()) +
                          " of " + std::to_string(b.attempts()) + "; debugging is suspended until " +
                          kube::FormatTime(b.RetryAt()) + " (no new sidecars, new sessions rejected)";
    log::Warn("circuit breaker opened", {{"release", release_key}, {"message", message}});
    if (pod != nullptr) {
      {
        std::lock_guard l(trips_mu_);
        pending_trips_.insert_or_assign(release_key, Trip{message, *pod});
      }
      trip_queue_.Add(release_key);
    }
  }
  return seq;
}

bool BreakerStore::ReconcileTrip(const std::string& release_key) {
  Trip trip;
  {
    std::lock_guard l(trips_mu_);
    auto it = pending_trips_.find(release_key);
    if (it == pending_trips_.end()) return true;
    trip = it->second;
  }
  auto done = [&] {
    std::lock_guard l(trips_mu_);
    pending_trips_.erase(release_key);
    return true;
  };
  auto failed = [&](const std::string& what, const kube::ApiError& e) {
    log::Warn(what + "; retrying", {{"release", release_key}, {"error", e.ToString()}});
    return false;
  };
  const json& pod = trip.pod;
  std::string ns = pod.contains("metadata") ? pod["metadata"].value("namespace", "") : "";
  std::string kind;
  std::string owner = OwnerOf(pod, &kind);
  if (kind != "ReplicaSet") return done();  // no workload graydebug reports to
  json workload;
  auto rs = client_->Get({"apps", "v1", "replicasets", true}, ns, owner);
  if (!rs.ok()) {
    if (rs.error().kind == kube::ErrorKind::kNotFound) return done();
    return failed("reading the tripped release's ReplicaSet failed", rs.error());
  }
  workload = rs.value();
  std::string dkind;
  std::string deployment = OwnerOf(rs.value(), &dkind);
  if (dkind == "Deployment") {
    auto d = client_->Get({"apps", "v1", "deployments", true}, ns, deployment);
    if (d.ok()) {
      workload = d.value();
    } else if (d.error().kind != kube::ErrorKind::kNotFound) {
      return failed("reading the tripped release's Deployment failed", d.error());
    }
  }
  if (!workload.contains("kind")) return done();
  workload["apiVersion"] = "apps/v1";
  if (!trip.event_done) {
    if (events_ != nullptr) events_->Record(workload, "Warning", "DebugCircuitOpen", trip.message);
    std::lock_guard l(trips_mu_);
    if (auto it = pending_trips_.find(release_key); it != pending_trips_.end()) it->second.event_done = true;
  }
  if (!config_.pause_rollout || workload["kind"] != "Deployment") return done();
  std::string name = workload["metadata"].value("name", "");
  json patch = {{"metadata",
                 {{"annotations",
                   {{api::kPausedByAnnotation, "circuit breaker of release " + release_key + " opened at " +
                                                   kube::FormatTime(clock_.WallNow())}}}}},
                {"spec", {{"paused", true}}}};
  auto r = client_->Patch({"apps", "v1", "deployments", true}, ns, name, kube::PatchType::kMerge, patch.dump());
  if (!r.ok()) {
    if (r.error().kind == kube::ErrorKind::kNotFound) return done();
    return failed("pausing the rollout failed (deployment " + ns + "/" + name + ")", r.error());
  }
  log::Warn("paused the gray rollout (pauseRollout)", {{"deployment", ns + "/" + name}, {"release", release_key}});
  if (events_ != nullptr) {
    events_->Record(workload, "Warning", "RolloutPaused", "graydebug paused this rollout: " + trip.message);
  }
  return done();
}

}  // namespace graydebug::controller
