#include "controller/session_controller.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <cmath>
#include <cstdlib>
#include <thread>

#include "graydebug/api/debug_session.h"
#include "graydebug/api/pod.h"
#include "graydebug/api/probe.h"
#include "graydebug/http_get.h"
#include "graydebug/json_read.h"
#include "graydebug/log.h"

namespace graydebug::controller {
namespace {

using json = nlohmann::json;

using jsonr::Str;

// What the controller reads of a pod; everything else is dropped before caching (memory stays
// flat with thousands of injected pods).
void TrimPod(json& pod) {
  if (!pod.is_object()) return;
  json out = json::object();
  if (auto md = pod.find("metadata"); md != pod.end() && md->is_object()) {
    json m = json::object();
    for (const char* k : {"name", "namespace", "uid", "resourceVersion", "creationTimestamp", "deletionTimestamp",
                          "labels", "ownerReferences"}) {
      if (auto it = md->find(k); it != md->end()) m[k] = std::move(*it);
    }
    if (auto a = md->find("annotations"); a != md->end() && a->is_object()) {
      if (auto s = a->find(api::kStatusAnnotation); s != a->end()) m["annotations"] = {{api::kStatusAnnotation, *s}};
    }
    out["metadata"] = std::move(m);
  }
  if (auto spec = pod.find("spec"); spec != pod.end() && spec->is_object()) {
    json s = json::object();
    for (const char* list : {"containers", "initContainers"}) {
      auto it = spec->find(list);
      if (it == spec->end() || !it->is_array()) continue;
      json l = json::array();
      for (json& c : *it) {
        if (!c.is_object()) continue;
        json kept = {{"name", Str(c, "name")}};
        if (c.contains("ports")) kept["ports"] = std::move(c["ports"]);
        l.push_back(std::move(kept));
      }
      s[list] = std::move(l);
    }
    out["spec"] = std::move(s);
  }
  if (auto status = pod.find("status"); status != pod.end() && status->is_object()) {
    out["status"] = {{"phase", Str(*status, "phase")}, {"podIP", Str(*status, "podIP")}};
  }
  pod = std::move(out);
}

kube::InformerOptions PodOptions() {
  kube::InformerOptions o;
  o.name = "injected-pods";
  o.label_selector = api::kInjectedSelector;
  o.transform = TrimPod;
  return o;
}

kube::InformerOptions SessionOptions() {
  kube::InformerOptions o;
  o.name = "debugsessions";
  return o;
}

bool IsBusy(const std::string& body) {
  auto reply = api::ProbeReply::Parse(body);
  return reply && reply->error_kind == api::kProbeBusy;
}

std::string KeyOf(const json& obj) {
  return kube::Informer::KeyOf(obj);
}

}  // namespace

ProbeResult HttpAttachProber::Probe(const std::string& address) {
  auto start = std::chrono::steady_clock::now();
  HttpGetResult r = HttpGet("http://" + address + api::kProbePath, timeout_, 64 << 10, connect_timeout_);
  // The agent caps concurrent probes and answers 503 "busy" beyond that: not a dlv failure, so
  // ask again shortly (bounded), never count it against the release.
  for (int i = 0; i < 5 && r.status == 503 && IsBusy(r.body); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100 * (i + 1)));
    start = std::chrono::steady_clock::now();
    r = HttpGet("http://" + address + api::kProbePath, timeout_, 64 << 10, connect_timeout_);
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!r.error.empty()) {
    ProbeResult p;
    p.latency_seconds = seconds;
    p.error = "agent at " + address + ": " + r.error;
    return p;
  }
  return ParseProbeReply(address, r.status, r.body, seconds);
}

ProbeResult ParseProbeReply(const std::string& address, int status, const std::string& raw, double seconds) {
  ProbeResult p;
  p.latency_seconds = seconds;
  auto reply = api::ProbeReply::Parse(raw);
  if (!reply) {
    p.error = "agent at " + address + " answered HTTP " + std::to_string(status) + " without a probe result";
    return p;
  }
  if (status == 503 && reply->error_kind == api::kProbeBusy) {
    p.own_fault = true;  // graydebug's own capacity, not the pod's dlv
    p.error = "agent at " + address + " is busy with other probes";
    return p;
  }
  // The agent may answer from a dlv call that finished under 100 ms ago ("cached"): then this round
  // trip never reached dlv, so the reused call's own dlv time is added to keep the attach latency a
  // controller -> agent -> dlv figure.
  if (reply->cached) p.latency_seconds += reply->latency_seconds;
  p.ok = reply->ok && status == 200;
  if (!p.ok) {
    p.error = reply->error;
    if (p.error.empty()) p.error = "dlv probe failed (HTTP " + std::to_string(status) + ")";
  }
  return p;
}

SessionController::SessionController(std::shared_ptr<kube::Client> client, ControllerOptions options,
                                     AttachProber& prober, BreakerSource& breakers, prometheus::Registry& registry,
                                     kube::EventRecorder* events)
    : client_(client),
      options_(std::move(options)),
      reconciler_(options_.reconciler),
      prober_(prober),
      breakers_(breakers),
      events_(events),
      queue_(clock_, std::chrono::milliseconds(100), std::chrono::milliseconds(60000)),
      sessions_(client, kube::Resource::DebugSessions(), options_.namespace_, SessionOptions()),
      pods_(client, kube::Resource::Pods(), options_.namespace_, PodOptions()),
      active_(prometheus::BuildGauge()
                  .Name("debug_session_active")
                  .Help("Active DebugSessions on the pod (the series is removed when the last one ends)")
                  .Register(registry)),
      latency_(prometheus::BuildHistogram()
                   .Name("dlv_attach_latency_seconds")
                   .Help("Round trip of one attach (controller -> agent -> dlv GetVersion -> back)")
                   .Register(registry)),
      attempts_(prometheus::BuildCounter()
                    .Name("graydebug_attach_attempts_total")
                    .Help("Attach attempts by release and result (success, failure)")
                    .Register(registry)) {
  queue_.Instrument("debugsession");
  kube::EventHandlers sh;
  sh.on_add = [this](const json& s) { Enqueue(s); };
  sh.on_update = [this](const json&, const json& s) { Enqueue(s); };
  sh.on_delete = [this](const json& s) {
    std::string key = KeyOf(s);
    {
      std::lock_guard l(index_mu_);
      by_namespace_[Str(s["metadata"], "namespace")].erase(key);
    }
    queue_.Add(key);
  };
  sessions_.AddHandlers(sh);
  kube::EventHandlers ph;
  auto pod_changed = [this](const json& p) {
    if (p.contains("metadata")) EnqueueNamespace(Str(p["metadata"], "namespace"));
  };
  ph.on_add = pod_changed;
  ph.on_update = [pod_changed](const json&, const json& p) { pod_changed(p); };
  ph.on_delete = pod_changed;
  pods_.AddHandlers(ph);
}

SessionController::~SessionController() {
  Stop();
}

void SessionController::Enqueue(const json& session) {
  std::string key = KeyOf(session);
  if (key.empty()) return;
  std::string ns = session.contains("metadata") ? Str(session["metadata"], "namespace") : "";
  bool final = session.contains("status") && api::IsFinalPhase(Str(session["status"], "phase"));
  {
    std::lock_guard l(index_mu_);
    if (final) {
      by_namespace_[ns].erase(key);
    } else {
      by_namespace_[ns].insert(key);
    }
  }
  queue_.Add(key);
}

void SessionController::EnqueueNamespace(const std::string& ns) {
  std::vector<std::string> keys;
  {
    std::lock_guard l(index_mu_);
    auto it = by_namespace_.find(ns);
    if (it == by_namespace_.end()) return;
    keys.assign(it->second.begin(), it->second.end());
  }
  for (const auto& k : keys) queue_.Add(k);
}

void SessionController::StartInformers() {
  sessions_.Start();
  pods_.Start();
}

bool SessionController::HasSynced() const {
  return sessions_.HasSynced() && pods_.HasSynced();
}

void SessionController::StartWorkers() {
  if (workers_started_.exchange(true)) return;
  for (int i = 0; i < std::max(1, options_.workers); ++i) {
    workers_.emplace_back([this] {
      // Never decide from half a cache: a session whose pod is not cached yet would look
      // Terminated.
      while (!HasSynced() && !queue_.ShuttingDown()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      while (auto key = queue_.Get()) {
        bool ok = false;
        try {
          ok = ReconcileKey(*key);
        } catch (const std::exception& e) {
          log::Error("reconcile threw; retrying", {{"session", *key}, {"error", e.what()}});
        }
        if (ok) {
          queue_.Forget(*key);
        } else {
          queue_.AddRateLimited(*key);
        }
        queue_.Done(*key);
      }
    });
  }
}

void SessionController::Stop() {
  queue_.ShutDown();
  for (auto& t : workers_) {
    if (t.joinable()) t.join();
  }
  workers_.clear();
  sessions_.Stop();
  pods_.Stop();
}

void SessionController::SetActive(const std::string& key, bool active, const std::string& ns, const std::string& pod,
                                  const std::string& release) {
  // Several sessions may debug one pod: the series of (namespace, pod, release) counts them and
  // goes away with the last one.
  std::lock_guard l(metrics_mu_);
  std::map<std::string, std::string> labels = {{"namespace", ns}, {"pod", pod}, {"release", release}};
  auto it = active_labels_.find(key);
  if (it != active_labels_.end() && (!active || it->second != labels)) {
    auto& holders = active_holders_[it->second];
    holders.erase(key);
    if (holders.empty()) {
      active_.Remove(&active_.Add(it->second));
      active_holders_.erase(it->second);
    } else {
      active_.Add(it->second).Set(static_cast<double>(holders.size()));
    }
    active_labels_.erase(it);
  }
  if (active) {
    auto& holders = active_holders_[labels];
    holders.insert(key);
    active_.Add(labels).Set(static_cast<double>(holders.size()));
    active_labels_[key] = labels;
  }
}

void SessionController::RecordAttempt(const std::string& ns, const std::string& release, const ProbeResult& p) {
  latency_
      .Add({{"status", p.ok ? "success" : "failure"}},
           prometheus::Histogram::BucketBoundaries{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
                                                   10})
      .Observe(p.latency_seconds);
  attempts_.Add({{"namespace", ns}, {"release", release}, {"result", p.ok ? "success" : "failure"}}).Increment();
}

bool SessionController::ReconcileKey(const std::string& key) {
  auto cached = sessions_.Get(key);
  if (!cached) {
    {
      std::lock_guard l(written_mu_);
      probed_.erase(key);
      written_.erase(key);
    }
    SetActive(key, false, "", "", "");
    return true;
  }
  json session = std::move(*cached);
  const json md = session.contains("metadata") ? session["metadata"] : json::object();
  std::string ns = Str(md, "namespace"), name = Str(md, "name");
  // The cache may not have seen our own last write yet: deciding from the older status would
  // probe again and count a second attempt. Wait for it (resourceVersions are etcd revisions; if
  // one is not a number, fall through and let the write's precondition catch a stale view).
  {
    std::lock_guard l(written_mu_);
    auto it = written_.find(key);
    if (it != written_.end()) {
      std::string cached_rv = Str(md, "resourceVersion");
      char* e1 = nullptr;
      char* e2 = nullptr;
      unsigned long long have = std::strtoull(cached_rv.c_str(), &e1, 10);
      unsigned long long want = std::strtoull(it->second.c_str(), &e2, 10);
      bool numeric = !cached_rv.empty() && *e1 == '\0' && !it->second.empty() && *e2 == '\0';
      if (numeric && have < want) {
        queue_.AddAfter(key, std::chrono::milliseconds(50));
        return true;
      }
      written_.erase(it);
    }
  }

  // Candidates: the named pod, or every injected pod of the namespace for a selector.
  std::vector<json> pods;
  std::string by_name = Str(session.contains("status") ? session["status"] : json(), "pod");
  if (by_name.empty() && session.contains("spec") && session["spec"].contains("target")) {
    by_name = Str(session["spec"]["target"], "pod");
  }
  if (!by_name.empty()) {
    if (auto p = pods_.Get(ns + "/" + by_name)) pods.push_back(std::move(*p));
  } else {
    for (auto& p : pods_.List()) {
      if (Str(p["metadata"], "namespace") == ns) pods.push_back(std::move(p));
    }
  }
  const json* pod = ResolvePod(session, pods);
  const std::string release =
      pod != nullptr ? api::ReleaseKey(ns, api::ReleaseOf(*pod, options_.reconciler.release_label)) : "";
  SessionInput in{session,
                  pods,
                  release.empty() ? CircuitView{} : breakers_.View(release, clock_.WallNow()),
                  std::nullopt,
                  clock_.WallNow(),
                  std::nullopt};
  {
    std::lock_guard l(written_mu_);
    if (auto it = probed_.find(key); it != probed_.end()) in.last_probe = it->second;
  }
  SessionActions a = reconciler_.Reconcile(in);
  if (a.probe) {
    in.probe = prober_.Probe(a.probe_address);
    in.now = clock_.WallNow();
    a = reconciler_.Reconcile(in);
  }
  if (a.probed_at) {
    std::lock_guard l(written_mu_);
    probed_[key] = *a.probed_at;
  }
  const std::string release_name = api::SplitReleaseKey(a.release).second;
  if (a.attempt) {
    RecordAttempt(ns, release_name, *a.attempt);
    if (!a.release.empty()) {
      breakers_.Record(a.release, a.attempt->ok, in.now, pod);
      // The attempt is stored for the next leader before the status says it happened: a leader that
      // dies between the two must not leave the breaker short of attempts the sessions report.
      if (!breakers_.WaitPersisted(std::chrono::seconds(10))) {
        log::Warn("circuit breaker not stored yet; writing the session status anyway",
                  {{"session", key}, {"release", a.release}});
      }
    }
  }

  std::string rv = Str(md, "resourceVersion");
  if (a.add_finalizer) {
    json finalizers = md.contains("finalizers") && md["finalizers"].is_array() ? md["finalizers"] : json::array();
    finalizers.push_back(api::kSessionFinalizer);
    auto r = client_->Patch(kube::Resource::DebugSessions(), ns, name, kube::PatchType::kMerge,
                            json{{"metadata", {{"finalizers", finalizers}, {"resourceVersion", rv}}}}.dump());
    if (!r.ok()) {
      if (r.error().kind == kube::ErrorKind::kNotFound) return true;
      log::Info("adding the finalizer failed; retrying", {{"session", key}, {"error", r.error().ToString()}});
      return false;
    }
    rv = Str(r.value()["metadata"], "resourceVersion");
    session["metadata"] = r.value()["metadata"];
    if (!a.status_changed) {
      std::lock_guard l(written_mu_);
      written_[key] = rv;
    }
  }
  if (a.status_changed) {
    json update = session;
    update["status"] = a.status;
    update["metadata"]["resourceVersion"] = rv;
    auto r = client_->UpdateStatus(kube::Resource::DebugSessions(), ns, update);
    if (!r.ok()) {
      if (r.error().kind == kube::ErrorKind::kNotFound) return true;
      // A conflict means the cache is behind: the next reconcile starts from the newer object.
      log::Info("status update failed; retrying", {{"session", key}, {"error", r.error().ToString()}});
      return false;
    }
    session = r.value();
    std::lock_guard l(written_mu_);
    written_[key] = Str(session["metadata"], "resourceVersion");
  }
  if (events_ != nullptr) {
    json ref = session;
    ref["apiVersion"] = api::kApiVersion;
    ref["kind"] = api::kSessionKind;
    for (const auto& e : a.events) events_->Record(ref, e.type, e.reason, e.message);
  }
  for (const auto& e : a.events) {
    log::Info("session " + e.reason, {{"session", key}, {"type", e.type}, {"message", e.message}});
  }
  const json& st = a.status;
  SetActive(key, a.active, ns, Str(st, "pod"), Str(st, "release"));
  if (api::IsFinalPhase(Str(st, "phase"))) {
    std::lock_guard l(index_mu_);
    by_namespace_[ns].erase(key);
  }
  if (a.remove_finalizer) {
    json finalizers = json::array();
    for (const json& f : session["metadata"].value("finalizers", json::array())) {
      if (f != api::kSessionFinalizer) finalizers.push_back(f);
    }
    auto r = client_->Patch(
        kube::Resource::DebugSessions(), ns, name, kube::PatchType::kMerge,
        json{{"metadata",
              {{"finalizers", finalizers}, {"resourceVersion", Str(session["metadata"], "resourceVersion")}}}}
            .dump());
    if (!r.ok() && r.error().kind != kube::ErrorKind::kNotFound) {
      log::Info("removing the finalizer failed; retrying", {{"session", key}, {"error", r.error().ToString()}});
      return false;
    }
  }
  if (a.delete_session) {
    // Final for longer than finalSessionRetention. The uid precondition keeps a session that was
    // deleted and created again under the same name.
    auto r = client_->Delete(kube::Resource::DebugSessions(), ns, name, -1, Str(session["metadata"], "uid"));
    if (!r.ok() && r.error().kind != kube::ErrorKind::kNotFound && r.error().kind != kube::ErrorKind::kConflict) {
      log::Info("deleting a retained final session failed; retrying",
                {{"session", key}, {"error", r.error().ToString()}});
      return false;
    }
    log::Info("deleted a final session after its retention",
              {{"session", key}, {"phase", Str(st, "phase")}, {"finished_at", Str(st, "finishedAt")}});
    return true;
  }
  if (a.requeue_after) queue_.AddAfter(key, *a.requeue_after);
  return true;
}

}  // namespace graydebug::controller
