#include "controller/session_reconciler.h"

#include <algorithm>
#include <optional>
#include <vector>

#include "graydebug/api/debug_session.h"
#include "graydebug/api/pod.h"
#include "graydebug/backoff.h"
#include "graydebug/duration.h"
#include "graydebug/json_read.h"
#include "graydebug/kube/time.h"

namespace graydebug::controller {
namespace {

using json = nlohmann::json;
using std::chrono::milliseconds;

using jsonr::Int;
using jsonr::Obj;
using jsonr::Str;

}  // namespace

namespace {

bool PodReady(const json& pod) {
  const json& status = Obj(pod, "status");
  if (Str(status, "phase") != "Running" || Str(status, "podIP").empty()) return false;
  return !Obj(pod, "metadata").contains("deletionTimestamp");
}

std::string Ms(double seconds) {
  return std::to_string(static_cast<int64_t>(seconds * 1000 + 0.5)) + "ms";
}

// The wait after `attempts` failed attach attempts: attach_backoff doubling, at most 1024 times it.
milliseconds AttachBackoff(const ReconcilerConfig& c, int64_t attempts) {
  return Backoff::Ceiling(c.attach_backoff, c.attach_backoff * 1024,
                          static_cast<int>(std::clamp<int64_t>(attempts, 1, 64)));
}

milliseconds Until(Clock::Wall from, Clock::Wall to) {
  return std::max(milliseconds(0), std::chrono::duration_cast<milliseconds>(to - from));
}

}  // namespace

bool SelectorMatches(const json& selector, const json& labels) {
  if (!selector.is_object()) return false;
  bool any = false;
  if (auto ml = selector.find("matchLabels"); ml != selector.end() && ml->is_object()) {
    for (const auto& [k, v] : ml->items()) {
      any = true;
      if (!v.is_string() || Str(labels, k.c_str()) != v.get<std::string>() || !labels.contains(k)) return false;
    }
  }
  if (auto me = selector.find("matchExpressions"); me != selector.end() && me->is_array()) {
    for (const json& e : *me) {
      any = true;
      std::string key = Str(e, "key"), op = Str(e, "operator");
      bool has = labels.is_object() && labels.contains(key);
      std::string value = Str(labels, key.c_str());
      bool in = false;
      if (auto vals = e.find("values"); vals != e.end() && vals->is_array()) {
        for (const json& v : *vals) in = in || (v.is_string() && has && v.get<std::string>() == value);
      }
      if (op == "In" && !in) return false;
      if (op == "NotIn" && in) return false;
      if (op == "Exists" && !has) return false;
      if (op == "DoesNotExist" && has) return false;
      if (op != "In" && op != "NotIn" && op != "Exists" && op != "DoesNotExist") return false;
    }
  }
  return any;  // an empty selector selects nothing here (the CRD requires one of the two)
}

const json* ResolvePod(const json& session, const std::vector<json>& pods) {
  const json& target = Obj(Obj(session, "spec"), "target");
  // Once resolved, a session stays with its pod.
  std::string name = Str(Obj(session, "status"), "pod");
  if (name.empty()) name = Str(target, "pod");
  if (!name.empty()) {
    for (const json& p : pods) {
      if (Str(Obj(p, "metadata"), "name") == name) return &p;
    }
    return nullptr;
  }
  const json* best = nullptr;
  std::string best_created;
  for (const json& p : pods) {
    const json& md = Obj(p, "metadata");
    if (!PodReady(p) || !SelectorMatches(Obj(target, "selector"), Obj(md, "labels"))) continue;
    std::string created = Str(md, "creationTimestamp");  // RFC 3339 in UTC sorts as text
    if (best == nullptr || created > best_created ||
        (created == best_created && Str(md, "name") > Str(Obj(*best, "metadata"), "name"))) {
      best = &p;
      best_created = created;
    }
  }
  return best;
}

SessionActions SessionReconciler::Reconcile(const SessionInput& in) const {
  const ReconcilerConfig& c = config_;
  SessionActions a;
  const json& md = Obj(in.session, "metadata");
  const json& spec = Obj(in.session, "spec");
  const json old_status = Obj(in.session, "status");
  json& st = a.status;
  st = old_status;
  std::string phase = Str(st, "phase");
  bool has_finalizer = false;
  if (auto f = md.find("finalizers"); f != md.end() && f->is_array()) {
    has_finalizer = std::find(f->begin(), f->end(), api::kSessionFinalizer) != f->end();
  }
  auto finish = [&]() {
    a.status_changed = a.status != old_status;
    return a;
  };

  if (md.contains("deletionTimestamp")) {
    a.remove_finalizer = has_finalizer;
    return finish();
  }
  if (api::IsFinalPhase(phase)) {
    a.remove_finalizer = has_finalizer;  // nothing left to clean up once final
    // Retention counts from status.finishedAt; a session that became final before graydebug
    // stamped it (or whose stamp was removed) gets one now, so its retention starts here.
    auto finished = kube::ParseTime(Str(st, "finishedAt"));
    if (!finished) {
      st["finishedAt"] = kube::FormatTime(in.now);
      finished = in.now;
    }
    if (c.final_session_retention.count() > 0) {
      Clock::Wall due = *finished + c.final_session_retention;
      if (in.now >= due) {
        a.delete_session = true;
      } else {
        a.requeue_after = Until(in.now, due);
      }
    }
    return finish();
  }
  if (!has_finalizer) a.add_finalizer = true;

  int64_t generation = Int(md, "generation", 1);
  std::string ns = Str(md, "namespace");
  milliseconds ttl = c.default_ttl;
  if (auto parsed = ParseDuration(Str(spec, "ttl")); parsed && parsed->count() > 0) ttl = *parsed;
  ttl = std::min(ttl, c.max_ttl);
  Clock::Wall created = kube::ParseTime(Str(md, "creationTimestamp")).value_or(in.now);
  Clock::Wall expires = created + ttl;
  st["expiresAt"] = kube::FormatTime(expires);
  st["observedGeneration"] = generation;
  if (!st.contains("attach") || !st["attach"].is_object()) st["attach"] = {{"attempts", 0}};

  // One Event per status write (docs/controller.md): the phases a reconcile passes through are
  // written together, so the last one's Event names the earlier ones instead of one Event each.
  std::vector<std::string> passed;
  std::optional<size_t> phase_event;
  auto become = [&](const std::string& next, const std::string& type, const std::string& reason,
                    const std::string& message) {
    st["phase"] = next;
    if (api::IsFinalPhase(next)) st["finishedAt"] = kube::FormatTime(in.now);
    if (phase_event) a.events.erase(a.events.begin() + static_cast<std::ptrdiff_t>(*phase_event));
    passed.push_back(next);
    std::string text = message;
    if (passed.size() > 1) {
      text += " (";
      for (size_t i = 0; i < passed.size(); ++i) text += (i == 0 ? "" : " -> ") + passed[i];
      text += ")";
    }
    phase_event = a.events.size();
    a.events.push_back({type, reason, std::move(text)});
    phase = next;
  };

  if (in.now >= expires) {
    become(api::phase::kExpired, "Normal", "Expired", "the session reached its ttl of " + FormatDuration(ttl));
    api::SetCondition(st, api::condition::kReady, false, "Expired", "the session expired", generation, in.now);
    return finish();
  }

  const json* pod = ResolvePod(in.session, in.pods);
  if (pod != nullptr) {
    std::string release = api::ReleaseOf(*pod, c.release_label);
    a.release = release.empty() ? "" : ns + "/" + release;
  }

  if (phase == api::phase::kAttaching || phase == api::phase::kActive) {
    if (pod == nullptr || Obj(*pod, "metadata").contains("deletionTimestamp")) {
      become(api::phase::kTerminated, "Normal", "PodGone", "pod " + Str(st, "pod") + " is gone");
      api::SetCondition(st, api::condition::kReady, false, "PodGone", "the target pod is gone", generation, in.now);
      return finish();
    }
  }

  if (phase.empty()) {
    become(api::phase::kPending, "Normal", "Pending", "looking for the target pod");
  }

  if (phase == api::phase::kPending) {
    std::string target = Str(Obj(spec, "target"), "pod");
    std::string what = target.empty() ? "ready injected pod matching the selector" : "injected pod " + target;
    if (pod != nullptr && in.circuit.state == CircuitState::kOpen) {
      std::string msg = "the circuit breaker of release " + a.release + " is open; it retries at " +
                        kube::FormatTime(in.circuit.retry_at);
      api::SetCondition(st, api::condition::kCircuitAllowed, false, "CircuitOpen", msg, generation, in.now);
      api::SetCondition(st, api::condition::kReady, false, "CircuitOpen", msg, generation, in.now);
      st["release"] = a.release.substr(a.release.find('/') + 1);
      become(api::phase::kRejected, "Warning", "CircuitOpen", msg);
      return finish();
    }
    std::string reason, message;
    if (pod == nullptr) {
      reason = "PodNotFound";
      message = "no " + what + " in namespace " + ns;
    } else if (!PodReady(*pod)) {
      reason = "PodNotRunning";
      message = "pod " + Str(Obj(*pod, "metadata"), "name") + " is not Running with an IP yet";
    } else if (api::AgentPortOf(*pod) == 0) {
      reason = "NoAgentPort";
      message = "pod " + Str(Obj(*pod, "metadata"), "name") + " has no graydebug-agent port";
    }
    if (!reason.empty()) {
      if (in.now - created >= c.pending_timeout) {
        api::SetCondition(st, api::condition::kAttached, false, reason, message, generation, in.now);
        api::SetCondition(st, api::condition::kReady, false, reason, message, generation, in.now);
        become(api::phase::kFailed, "Warning", reason, message + " after " + FormatDuration(c.pending_timeout));
        return finish();
      }
      api::SetCondition(st, api::condition::kAttached, false, reason, message, generation, in.now);
      api::SetCondition(st, api::condition::kReady, false, "Pending", "waiting for the target pod", generation, in.now);
      a.requeue_after = std::min(c.pending_recheck, Until(in.now, created + c.pending_timeout));
      return finish();
    }
    const json& pmd = Obj(*pod, "metadata");
    st["pod"] = Str(pmd, "name");
    st["podIP"] = Str(Obj(*pod, "status"), "podIP");
    st["release"] = a.release.substr(a.release.find('/') + 1);
    st["attach"] = {{"attempts", 0}};
    api::SetCondition(st, api::condition::kCircuitAllowed, true,
                      in.circuit.state == CircuitState::kHalfOpen ? "HalfOpenTrial" : "Closed",
                      "the release's circuit breaker allows sessions", generation, in.now);
    become(api::phase::kAttaching, "Normal", "Attaching", "attaching to dlv in pod " + Str(pmd, "name"));
  }

  // Attaching and Active both talk to the agent; the adapter runs the probe when asked.
  int agent_port = api::AgentPortOf(*pod);
  st["podIP"] = Str(Obj(*pod, "status"), "podIP");
  std::string address = Str(st, "podIP") + ":" + std::to_string(agent_port);
  json& attach = st["attach"];
  int64_t attempts = Int(attach, "attempts");
  auto last = kube::ParseTime(Str(attach, "lastProbeAt"));

  if (phase == api::phase::kAttaching) {
    if (!in.probe) {
      const milliseconds backoff = AttachBackoff(c, attempts);
      if (attempts > 0 && last && in.now < *last + backoff) {
        a.requeue_after = Until(in.now, *last + backoff);
        return finish();
      }
      a.probe = true;
      a.probe_address = address;
      return finish();
    }
    const ProbeResult& p = *in.probe;
    if (!p.own_fault) a.attempt = p;
    attach["attempts"] = ++attempts;
    attach["lastProbeAt"] = kube::FormatTime(in.now);
    if (p.ok) {
      attach["latencySeconds"] = p.latency_seconds;
      attach["lastError"] = "";
      int dlv_port = api::DlvPortOf(*pod, c.default_dlv_port);
      st["startedAt"] = kube::FormatTime(in.now);
      st["connect"] = "kubectl port-forward -n " + ns + " pod/" + Str(st, "pod") + " " + std::to_string(dlv_port) +
                      ":" + std::to_string(dlv_port) + " && dlv connect 127.0.0.1:" + std::to_string(dlv_port);
      api::SetCondition(st, api::condition::kAttached, true, "Attached", "dlv answered in " + Ms(p.latency_seconds),
                        generation, in.now);
      api::SetCondition(st, api::condition::kReady, true, "Active", "the session is active", generation, in.now);
      become(api::phase::kActive, "Normal", "Active",
             "attached to dlv in pod " + Str(st, "pod") + " in " + Ms(p.latency_seconds));
      a.active = true;
      a.requeue_after = std::min(c.reprobe_interval, Until(in.now, expires));
      return finish();
    }
    attach["lastError"] = p.error;
    if (attempts >= c.max_attach_attempts) {
      api::SetCondition(st, api::condition::kAttached, false, "AttachFailed", p.error, generation, in.now);
      api::SetCondition(st, api::condition::kReady, false, "AttachFailed", p.error, generation, in.now);
      become(api::phase::kFailed, "Warning", "AttachFailed",
             "attach failed " + std::to_string(attempts) + " times; last error: " + p.error);
      return finish();
    }
    api::SetCondition(st, api::condition::kAttached, false, "AttachRetrying", p.error, generation, in.now);
    a.events.push_back(
        {"Warning", "AttachRetrying", "attach attempt " + std::to_string(attempts) + " failed: " + p.error});
    a.requeue_after = AttachBackoff(c, attempts);
    return finish();
  }

  // Active: re-probe every reprobe_interval; a failing probe marks it not Ready but keeps it.
  a.active = true;
  // The adapter remembers re-probes it did not write down (see below).
  if (in.last_probe && (!last || *in.last_probe > *last)) last = in.last_probe;
  Clock::Wall next = last ? *last + c.reprobe_interval : in.now;
  if (!in.probe) {
    if (in.now >= next) {
      a.probe = true;
      a.probe_address = address;
      return finish();
    }
    a.requeue_after = std::min(Until(in.now, next), Until(in.now, expires));
    return finish();
  }
  const ProbeResult& p = *in.probe;
  if (!p.own_fault) a.attempt = p;
  a.probed_at = in.now;
  a.requeue_after = std::min(c.reprobe_interval, Until(in.now, expires));
  // A healthy session's routine re-probe is written down only every persist_interval: with a
  // thousand sessions, a status write per re-probe would be the API server's main load. Changes
  // of Ready are written at once.
  auto persisted = kube::ParseTime(Str(attach, "lastProbeAt"));
  bool ready = false;
  if (st.contains("conditions") && st["conditions"].is_array()) {
    for (const json& cond : st["conditions"])
      ready = ready || (Str(cond, "type") == api::condition::kReady && Str(cond, "status") == "True");
  }
  if (p.ok && ready && persisted && in.now - *persisted < c.persist_interval) return finish();
  attach["lastProbeAt"] = kube::FormatTime(in.now);  // re-probes do not count as attach tries
  if (p.ok) {
    attach["latencySeconds"] = p.latency_seconds;
    attach["lastError"] = "";
    api::SetCondition(st, api::condition::kReady, true, "Active", "the session is active", generation, in.now);
  } else {
    attach["lastError"] = p.error;
    api::SetCondition(st, api::condition::kReady, false, "ProbeFailed", p.error, generation, in.now);
    a.events.push_back({"Warning", "ProbeFailed", "dlv probe failed: " + p.error});
  }
  return finish();
}

}  // namespace graydebug::controller
