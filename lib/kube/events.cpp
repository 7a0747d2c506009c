#include "graydebug/kube/events.h"

#include <random>

#include "graydebug/kube/leader_election.h"
#include "graydebug/kube/time.h"
#include "graydebug/log.h"

namespace graydebug::kube {

using nlohmann::json;

namespace {

std::string Md(const json& o, const char* key) {
  return o.contains("metadata") && o["metadata"].is_object() ? o["metadata"].value(key, "") : "";
}

}  // namespace

EventRecorder::EventRecorder(std::shared_ptr<Client> client, Options options)
    : client_(std::move(client)), options_(std::move(options)), clock_(client_->clock()) {
  thread_ = std::thread([this] { Loop(); });
}

EventRecorder::~EventRecorder() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void EventRecorder::Record(const json& object, const std::string& type, const std::string& reason,
                           const std::string& message) {
  std::lock_guard lock(mu_);
  if (stopping_ || queue_.size() >= options_.queue_limit) {
    ++dropped_;
    return;
  }
  queue_.push_back({object, type, reason, message.substr(0, 1024), clock_.WallNow()});
  cv_.notify_one();
}

void EventRecorder::Flush() {
  std::unique_lock lock(mu_);
  idle_cv_.wait(lock, [this] { return queue_.empty() && !busy_; });
}

uint64_t EventRecorder::dropped() const {
  std::lock_guard lock(mu_);
  return dropped_;
}

uint64_t EventRecorder::sent() const {
  std::lock_guard lock(mu_);
  return sent_;
}

void EventRecorder::Loop() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty() && stopping_) break;
    Pending p = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    lock.unlock();
    Send(p);
    lock.lock();
    busy_ = false;
    if (queue_.empty()) idle_cv_.notify_all();
  }
  idle_cv_.notify_all();
}

bool EventRecorder::Allowed(const std::string& object_key) {
  auto now = clock_.Now();
  auto [it, inserted] = buckets_.try_emplace(object_key, static_cast<double>(options_.burst), now);
  auto& [tokens, last] = it->second;
  double refill = std::chrono::duration<double>(now - last).count() / static_cast<double>(options_.refill.count());
  tokens = std::min<double>(options_.burst, tokens + refill);
  last = now;
  if (tokens < 1) return false;
  tokens -= 1;
  return true;
}

void EventRecorder::Send(const Pending& p) {
  const std::string ns = Md(p.object, "namespace").empty() ? "default" : Md(p.object, "namespace");
  const std::string uid = Md(p.object, "uid");
  const std::string object_key = p.object.value("kind", "") + "/" + ns + "/" + Md(p.object, "name");
  const std::string agg_key = object_key + "/" + uid + "/" + p.type + "/" + p.reason + "/" + p.message;
  // seen_ and buckets_ belong to this thread; mu_ is taken only for the counters, so Record never
  // waits for an API call.
  auto count = [this](uint64_t& counter) {
    std::lock_guard lock(mu_);
    ++counter;
  };
  auto it = seen_.find(agg_key);
  if (it != seen_.end() && p.when - it->second.last < options_.aggregate_window) {
    Seen& s = it->second;
    json patch = {{"count", s.count + 1}, {"lastTimestamp", FormatTime(p.when)}};
    auto r = client_->Patch(Resource::Events(), s.ns, s.event_name, PatchType::kMerge, patch.dump());
    if (r.ok()) {
      s.count++;
      s.last = p.when;
      count(sent_);
      return;
    }
    if (r.error().kind != ErrorKind::kNotFound) {
      log::Warn("cannot update event", {{"event", s.event_name}, {"error", r.error().ToString()}});
      return;
    }
    seen_.erase(it);  // the Event expired on the server: create a new one
  }
  if (!Allowed(object_key)) {
    count(dropped_);
    return;
  }
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char suffix[20];
  std::snprintf(suffix, sizeof suffix, "%016llx", static_cast<unsigned long long>(rng()));
  std::string name = Md(p.object, "name") + "." + suffix;
  json event = {{"apiVersion", "v1"},
                {"kind", "Event"},
                {"metadata", {{"name", name}, {"namespace", ns}}},
                {"involvedObject",
                 {{"apiVersion", p.object.value("apiVersion", "")},
                  {"kind", p.object.value("kind", "")},
                  {"name", Md(p.object, "name")},
                  {"namespace", ns},
                  {"uid", uid},
                  {"resourceVersion", Md(p.object, "resourceVersion")}}},
                {"type", p.type},
                {"reason", p.reason},
                {"message", p.message},
                {"count", 1},
                {"firstTimestamp", FormatTime(p.when)},
                {"lastTimestamp", FormatTime(p.when)},
                {"source", {{"component", options_.component}}},
                {"reportingComponent", options_.component},
                {"reportingInstance", options_.instance.empty() ? options_.component : options_.instance}};
  auto r = client_->Create(Resource::Events(), ns, event);
  if (!r.ok()) {
    log::Warn("cannot create event", {{"reason", p.reason}, {"error", r.error().ToString()}});
    return;
  }
  seen_[agg_key] = {name, ns, 1, p.when, p.when};
  count(sent_);
}

}  // namespace graydebug::kube
