#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "graydebug/telemetry.h"

namespace graydebug::testing {

// A telemetry sink that remembers every call, installed for its lifetime (unit tests only).
class RecordingSink final : public telemetry::Sink {
 public:
  struct Queue final : telemetry::QueueMetrics {
    std::mutex mu;
    int adds = 0, retries = 0;
    std::vector<std::int64_t> depths;
    std::vector<double> waited, worked;
    void Added() override {
      std::lock_guard l(mu);
      ++adds;
    }
    void Depth(std::int64_t d) override {
      std::lock_guard l(mu);
      depths.push_back(d);
    }
    void Waited(double s) override {
      std::lock_guard l(mu);
      waited.push_back(s);
    }
    void Worked(double s) override {
      std::lock_guard l(mu);
      worked.push_back(s);
    }
    void Retried() override {
      std::lock_guard l(mu);
      ++retries;
    }
  };

  RecordingSink() { telemetry::Install(this); }
  ~RecordingSink() override { telemetry::Install(nullptr); }
  RecordingSink(const RecordingSink&) = delete;
  RecordingSink& operator=(const RecordingSink&) = delete;

  void KubeRequest(std::string_view verb, int code, double) override {
    Record("request " + std::string(verb) + " " + std::to_string(code));
  }
  void KubeRetry(std::string_view verb) override { Record("retry " + std::string(verb)); }
  void InformerList(std::string_view informer, bool ok) override {
    Record("list " + std::string(informer) + (ok ? " ok" : " error"));
  }
  void WatchRestart(std::string_view informer, std::string_view reason) override {
    Record("watch-restart " + std::string(informer) + " " + std::string(reason));
  }
  void Leading(std::string_view lease, bool leading) override {
    Record("leading " + std::string(lease) + (leading ? " true" : " false"));
  }
  void TlsReload(std::string_view server, bool ok) override {
    Record("tls-reload " + std::string(server) + (ok ? " loaded" : " refused"));
  }
  std::shared_ptr<telemetry::QueueMetrics> Queue(std::string_view name) override {
    auto q = std::make_shared<struct Queue>();
    std::lock_guard l(mu_);
    queues_[std::string(name)] = q;
    return q;
  }

  std::vector<std::string> calls() const {
    std::lock_guard l(mu_);
    return calls_;
  }
  int Count(const std::string& call) const {
    std::lock_guard l(mu_);
    int n = 0;
    for (const auto& c : calls_) n += c == call;
    return n;
  }
  std::shared_ptr<struct Queue> queue(const std::string& name) const {
    std::lock_guard l(mu_);
    auto it = queues_.find(name);
    return it == queues_.end() ? nullptr : it->second;
  }

 private:
  void Record(std::string call) {
    std::lock_guard l(mu_);
    calls_.push_back(std::move(call));
  }
  mutable std::mutex mu_;
  std::vector<std::string> calls_;
  std::map<std::string, std::shared_ptr<struct Queue>> queues_;
};

}  // namespace graydebug::testing
