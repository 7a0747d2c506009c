#include "controller/session_controller.h"

#include "graydebug/api/debug_session.h"
#include "graydebug/api/pod.h"
#include "graydebug/json_read.h"
#include "graydebug/log.h"

namespace graydebug::controller {
namespace {

using json = nlohmann::json;

using jsonr::Obj;
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

std::string KeyOf(const json& obj) {
  return kube::Informer::KeyOf(obj);
}

}  // namespace

SessionController::SessionController(std::shared_ptr<kube::Client> client, ControllerOptions options,
                                     AttachProber& prober, BreakerSource& breakers, prometheus::Registry& registry,
                                     kube::EventRecorder* events)
    : client_(client),
      options_(std::move(options)),
      clock_(options_.clock != nullptr ? *options_.clock : RealClock::Get()),
      reconciler_(options_.reconciler),
      prober_(prober),
      breakers_(breakers),
      events_(events),
      metrics_(registry),
      queue_(clock_, std::chrono::milliseconds(100), std::chrono::milliseconds(60000)),
      sessions_(client, kube::Resource::DebugSessions(), options_.namespace_, SessionOptions()),
      pods_(client, kube::Resource::Pods(), options_.namespace_, PodOptions()) {
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
  // Sessions whose status waits for their attempt to be stored go on once it is.
  breakers_.OnStored([this] {
    std::vector<std::string> keys;
    {
      std::lock_guard l(memory_mu_);
      for (const auto& [key, held] : held_) keys.push_back(key);
    }
    for (const auto& k : keys) queue_.Add(k);
  });
}

SessionController::~SessionController() {
  breakers_.OnStored({});
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
  trim_ = std::make_unique<TrimAfterBursts>([this] { return queue_.Len() == 0; }, std::chrono::seconds(1));
  for (int i = 0; i < std::max(1, options_.workers); ++i) {
    workers_.emplace_back(
        [this] { queue_.RunWorker([this](const std::string& key) { return ReconcileKey(key); }, "reconcile"); });
  }
}

void SessionController::Stop() {
  queue_.ShutDown();
  for (auto& t : workers_) {
    if (t.joinable()) t.join();
  }
  workers_.clear();
  trim_.reset();
  sessions_.Stop();
  pods_.Stop();
}

void SessionController::Forget(const std::string& key) {
  {
    std::lock_guard l(memory_mu_);
    probed_.erase(key);
    superseded_.erase(key);
    held_.erase(key);
    busy_.erase(key);
  }
  metrics_.SetActive(key, false, "", "", "");
}

SessionController::Observed SessionController::Observe(const std::string& key, Observation* o) {
  auto cached = sessions_.Get(key);
  if (!cached) {
    Forget(key);
    return Observed::kGone;
  }
  o->key = key;
  o->session = std::move(*cached);
  const json& md = Obj(o->session, "metadata");
  o->ns = Str(md, "namespace");
  o->name = Str(md, "name");
  {
    std::lock_guard l(memory_mu_);
    // The cache may not have seen our own last write yet: deciding from the older status would
    // probe again and count a second attempt. Look again shortly; the write's precondition catches
    // any other stale view.
    if (auto it = superseded_.find(key); it != superseded_.end()) {
      if (it->second.count(Str(md, "resourceVersion"))) {
        queue_.AddAfter(key, std::chrono::milliseconds(50));
        return Observed::kRequeued;
      }
      superseded_.erase(it);
    }
    if (auto it = probed_.find(key); it != probed_.end()) o->input.last_probe = it->second;
    if (auto it = held_.find(key); it != held_.end()) {
      HeldProbe& h = it->second;
      if (!breakers_.Stored(h.seq)) {
        const auto waited = clock_.Now() - h.since;
        if (waited < options_.stored_wait) {
          // OnStored requeues it; this bounds the wait should no write ever succeed.
          queue_.AddAfter(key, options_.stored_wait - waited);
          return Observed::kRequeued;
        }
        log::Warn("circuit breaker not stored yet; writing the session status anyway", {{"session", key}});
      }
      o->input.probe = h.result;
      o->input.now = h.at;
      o->held = true;
      held_.erase(it);
    }
  }

  // Candidates: the named pod, or every injected pod of the namespace for a selector.
  std::string by_name = Str(Obj(o->session, "status"), "pod");
  if (by_name.empty()) by_name = Str(Obj(Obj(o->session, "spec"), "target"), "pod");
  if (!by_name.empty()) {
    if (auto p = pods_.Get(o->ns + "/" + by_name)) o->pods.push_back(std::move(*p));
  } else {
    for (auto& p : pods_.List()) {
      if (Str(Obj(p, "metadata"), "namespace") == o->ns) o->pods.push_back(std::move(p));
    }
  }
  o->pod = ResolvePod(o->session, o->pods);
  const std::string release =
      o->pod != nullptr ? api::ReleaseKey(o->ns, api::ReleaseOf(*o->pod, options_.reconciler.release_label)) : "";
  if (!o->held) o->input.now = clock_.WallNow();
  o->input.circuit = release.empty() ? CircuitView{} : breakers_.View(release, clock_.WallNow());
  o->input.session = o->session;
  o->input.pods = o->pods;
  return Observed::kReady;
}

bool SessionController::ReconcileKey(const std::string& key) {
  if (trim_) trim_->Note();
  // Never decide from half a cache: a session whose pod is not cached yet would look Terminated.
  if (!HasSynced()) {
    queue_.AddAfter(key, std::chrono::milliseconds(100));
    return true;
  }
  Observation o;
  switch (Observe(key, &o)) {
    case Observed::kGone:
    case Observed::kRequeued: return true;
    case Observed::kReady: break;
  }
  SessionActions a = reconciler_.Reconcile(o.input);
  if (a.probe) {
    ProbeResult p = prober_.Probe(a.probe_address);
    if (p.busy) {
      // The agent caps concurrent probes: not a dlv failure and not an attempt. Ask again shortly
      // (a few times) instead of waiting here.
      std::lock_guard l(memory_mu_);
      int& n = busy_[key];
      if (n < options_.busy_retries) {
        ++n;
        queue_.AddAfter(key, options_.busy_retry * n);
        return true;
      }
      busy_.erase(key);
    } else {
      std::lock_guard l(memory_mu_);
      busy_.erase(key);
    }
    o.input.probe = std::move(p);
    o.input.now = clock_.WallNow();
    a = reconciler_.Reconcile(o.input);
  }
  return Apply(o, a);
}

bool SessionController::Apply(Observation& o, const SessionActions& a) {
  const std::string& key = o.key;
  const std::string& ns = o.ns;
  const std::string& name = o.name;
  if (a.probed_at) {
    std::lock_guard l(memory_mu_);
    probed_[key] = *a.probed_at;
  }
  if (a.attempt && !o.held) {
    metrics_.RecordAttempt(ns, api::SplitReleaseKey(a.release).second, *a.attempt);
    if (!a.release.empty()) {
      const uint64_t seq = breakers_.Record(a.release, a.attempt->ok, o.input.now, o.pod);
      // The attempt is stored for the next leader before the status says it happened: a leader that
      // dies between the two must not leave the breaker short of attempts the sessions report. The
      // status is written by a later reconcile, from this probe result, once it is stored.
      if (!breakers_.Stored(seq)) {
        std::lock_guard l(memory_mu_);
        held_[key] = HeldProbe{*o.input.probe, o.input.now, clock_.Now(), seq};
        queue_.AddAfter(key, options_.stored_wait);
        return true;
      }
    }
  }

  json& session = o.session;
  std::string rv = Str(Obj(session, "metadata"), "resourceVersion");
  std::set<std::string> superseded;
  if (a.add_finalizer) {
    const json& md = session["metadata"];
    json finalizers = md.contains("finalizers") && md["finalizers"].is_array() ? md["finalizers"] : json::array();
    finalizers.push_back(api::kSessionFinalizer);
    auto r = client_->Patch(kube::Resource::DebugSessions(), ns, name, kube::PatchType::kMerge,
                            json{{"metadata", {{"finalizers", finalizers}, {"resourceVersion", rv}}}}.dump());
    if (!r.ok()) {
      if (r.error().kind == kube::ErrorKind::kNotFound) return true;
      log::Info("adding the finalizer failed; retrying", {{"session", key}, {"error", r.error().ToString()}});
      return false;
    }
    superseded.insert(rv);
    rv = Str(r.value()["metadata"], "resourceVersion");
    session["metadata"] = r.value()["metadata"];
  }
  if (a.status_changed) {
    json update = session;
    update["status"] = a.status;
    update["metadata"]["resourceVersion"] = rv;
    auto r = client_->UpdateStatus(kube::Resource::DebugSessions(), ns, update);
    if (!r.ok()) {
      if (r.error().kind == kube::ErrorKind::kNotFound) return true;
      std::lock_guard l(memory_mu_);
      superseded_[key].insert(superseded.begin(), superseded.end());
      // The probe happened (and is counted): the retry writes its result instead of probing again.
      if (o.input.probe) held_[key] = HeldProbe{*o.input.probe, o.input.now, clock_.Now(), 0};
      // A conflict means the cache is behind: the next reconcile starts from the newer object.
      log::Info("status update failed; retrying", {{"session", key}, {"error", r.error().ToString()}});
      return false;
    }
    superseded.insert(rv);
    session = r.value();
  }
  if (!superseded.empty()) {
    std::lock_guard l(memory_mu_);
    superseded_[key].insert(superseded.begin(), superseded.end());
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
  metrics_.SetActive(key, a.active, ns, Str(st, "pod"), Str(st, "release"));
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
