#include "graydebug/workqueue.h"

#include "graydebug/backoff.h"
#include "graydebug/log.h"

namespace graydebug {

WorkQueue::WorkQueue(const Clock& clock, std::chrono::milliseconds backoff_base, std::chrono::milliseconds backoff_cap)
    : clock_(clock), base_(backoff_base), cap_(backoff_cap) {}

void WorkQueue::Instrument(std::string_view name) {
  auto metrics = telemetry::Current().Queue(name);
  std::lock_guard lock(mu_);
  metrics_ = std::move(metrics);
}

void WorkQueue::PushLocked(const std::string& key) {
  queue_.push_back(key);
  if (metrics_) {
    queued_at_.emplace(key, clock_.Now());
    metrics_->Depth(static_cast<std::int64_t>(queue_.size()));
  }
  cv_.notify_one();
}

void WorkQueue::AddLocked(const std::string& key) {
  if (shutting_down_ || dirty_.count(key) != 0) return;
  if (metrics_) metrics_->Added();
  dirty_.insert(key);
  if (processing_.count(key) != 0) return;  // re-queued by Done
  PushLocked(key);
}

void WorkQueue::Add(const std::string& key) {
  std::lock_guard lock(mu_);
  AddLocked(key);
}

void WorkQueue::AddAfter(const std::string& key, std::chrono::nanoseconds delay) {
  if (delay.count() <= 0) return Add(key);
  std::lock_guard lock(mu_);
  if (shutting_down_) return;
  auto due = clock_.Now() + std::chrono::duration_cast<Clock::Steady::duration>(delay);
  auto it = waiting_.find(key);
  if (it == waiting_.end() || due < it->second) waiting_[key] = due;
  ++generation_;
  cv_.notify_all();  // a sleeping Get may need to wake earlier
}

void WorkQueue::AddRateLimited(const std::string& key) {
  int failures;
  {
    std::lock_guard lock(mu_);
    failures = ++failures_[key];
    if (metrics_) metrics_->Retried();
  }
  AddAfter(key, Backoff::Ceiling(base_, cap_, failures));
}

void WorkQueue::Forget(const std::string& key) {
  std::lock_guard lock(mu_);
  failures_.erase(key);
}

int WorkQueue::NumRequeues(const std::string& key) const {
  std::lock_guard lock(mu_);
  auto it = failures_.find(key);
  return it == failures_.end() ? 0 : it->second;
}

void WorkQueue::PromoteDueLocked() {
  auto now = clock_.Now();
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    if (it->second <= now) {
      std::string key = it->first;
      it = waiting_.erase(it);
      AddLocked(key);
    } else {
      ++it;
    }
  }
}

std::optional<std::string> WorkQueue::Get() {
  std::unique_lock lock(mu_);
  while (true) {
    PromoteDueLocked();
    if (!queue_.empty()) break;
    if (shutting_down_) return std::nullopt;
    if (waiting_.empty()) {
      cv_.wait(lock);
      continue;
    }
    auto next = waiting_.begin()->second;
    for (const auto& [k, due] : waiting_) next = std::min(next, due);
    uint64_t generation = generation_;
    // Wake at the next due time, or earlier when something is added or the queue shuts down.
    clock_.WaitUntil(next, lock, cv_, [&] { return !queue_.empty() || shutting_down_ || generation_ != generation; });
  }
  std::string key = std::move(queue_.front());
  queue_.pop_front();
  processing_.insert(key);
  dirty_.erase(key);
  if (metrics_) {
    auto now = clock_.Now();
    if (auto it = queued_at_.find(key); it != queued_at_.end()) {
      metrics_->Waited(std::chrono::duration<double>(now - it->second).count());
      queued_at_.erase(it);
    }
    started_at_[key] = now;
    metrics_->Depth(static_cast<std::int64_t>(queue_.size()));
  }
  return key;
}

void WorkQueue::Done(const std::string& key) {
  std::lock_guard lock(mu_);
  processing_.erase(key);
  if (metrics_) {
    if (auto it = started_at_.find(key); it != started_at_.end()) {
      metrics_->Worked(std::chrono::duration<double>(clock_.Now() - it->second).count());
      started_at_.erase(it);
    }
  }
  if (dirty_.count(key) != 0) PushLocked(key);
}

void WorkQueue::ShutDown() {
  std::lock_guard lock(mu_);
  shutting_down_ = true;
  waiting_.clear();
  cv_.notify_all();
}

bool WorkQueue::ShuttingDown() const {
  std::lock_guard lock(mu_);
  return shutting_down_;
}

std::size_t WorkQueue::Len() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

void WorkQueue::RunWorker(const std::function<bool(const std::string&)>& reconcile, std::string_view what) {
  while (auto key = Get()) {
    bool ok = false;
    try {
      ok = reconcile(*key);
    } catch (const std::exception& e) {
      log::Error(std::string(what) + " threw; retrying", {{"key", *key}, {"error", e.what()}});
    }
    if (ok) {
      Forget(*key);
    } else {
      AddRateLimited(*key);
    }
    Done(*key);
  }
}

}  // namespace graydebug
