#include "graydebug/kube/events.h"

#include <random>

#include "graydebug/kube/leader_election.h"
#include "graydebug/kube/time.h"
#include "graydebug/log.h"

namespace graydebug::kube {

using nlohmann::json;

namespace {

// A string member, or "" (also when it is not a string).
std::string Str(const json& o, const char* key) {
  if (!o.is_object()) return "";
  auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string Md(const json& o, const char* key) {
  return o.is_object() && o.contains("metadata") ? Str(o["metadata"], key) : "";
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
  ObjectRef ref{Str(object, "apiVersion"), Str(object, "kind"), Md(object, "name"),
                Md(object, "namespace"),   Md(object, "uid"),   Md(object, "resourceVersion")};
  if (ref.ns.empty()) ref.ns = "default";
  if (ref.name.empty()) {  // no object an Event could name (the API server would refuse it)
    ++dropped_;
    return;
  }
  queue_.push_back({std::move(ref), type, reason, message.substr(0, 1024), clock_.WallNow()});
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

std::size_t EventRecorder::remembered() const {
  return remembered_.load();
}

void EventRecorder::Forget(Clock::Wall now) {
  for (auto it = seen_.begin(); it != seen_.end();) {
    it = now - it->second.last >= options_.aggregate_window ? seen_.erase(it) : std::next(it);
  }
  const auto steady = clock_.Now();
  const auto full = options_.refill * options_.burst;  // a bucket left alone this long is full again
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    it = steady - it->second.second >= full ? buckets_.erase(it) : std::next(it);
  }
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
  // Every 256 events, what no longer matters is forgotten, so a long-running controller that sees
  // many sessions does not keep a key for each one.
  if (++sends_since_forget_ >= 256) {
    sends_since_forget_ = 0;
    Forget(p.when);
  }
  struct Remember {
    EventRecorder& r;
    ~Remember() { r.remembered_ = r.seen_.size() + r.buckets_.size(); }
  } remember{*this};
  const ObjectRef& o = p.object;
  const std::string& ns = o.ns;
  const std::string& uid = o.uid;
  const std::string object_key = o.kind + "/" + ns + "/" + o.name;
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
  std::string name = o.name + "." + suffix;
  json event = {{"apiVersion", "v1"},
                {"kind", "Event"},
                {"metadata", {{"name", name}, {"namespace", ns}}},
                {"involvedObject",
                 {{"apiVersion", o.api_version},
                  {"kind", o.kind},
                  {"name", o.name},
                  {"namespace", ns},
                  {"uid", uid},
                  {"resourceVersion", o.resource_version}}},
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
