#include "cli/plugin.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "graydebug/api/circuits.h"
#include "graydebug/api/debug_session.h"
#include "graydebug/api/pod.h"
#include "graydebug/duration.h"
#include "graydebug/json_read.h"
#include "graydebug/kube/time.h"

namespace graydebug::cli {

using nlohmann::json;

namespace {

using jsonr::Number;
using jsonr::Obj;
using jsonr::Str;

const json& Condition(const json& status, const char* type) {
  return api::ConditionOf(status, type);
}

// Kubernetes' generateName alphabet: no vowels (no words), no look-alikes (0/o, 1/l, 3/e).
constexpr std::string_view kSuffixAlphabet = "bcdfghjklmnpqrstvwxz2456789";
constexpr std::size_t kSuffixLength = 5;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// A user-given string inside an error message: quoted, escaped, short.
std::string Quote(std::string_view s) {
  std::string cut(s.substr(0, 64));
  std::string q = json(cut).dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > cut.size()) q.insert(q.size() - 1, "…");
  return q;
}

bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

std::string Latency(double seconds) {
  if (seconds < 0) seconds = 0;
  char buf[32];
  if (seconds < 0.01) {
    std::snprintf(buf, sizeof buf, "%.1fms", seconds * 1000);
  } else if (seconds < 10) {
    std::snprintf(buf, sizeof buf, "%.0fms", seconds * 1000);
  } else {
    std::snprintf(buf, sizeof buf, "%.1fs", seconds);
  }
  return buf;
}

std::chrono::seconds Since(Clock::Wall from, Clock::Wall to) {
  return std::chrono::duration_cast<std::chrono::seconds>(to - from);
}

// "in 14m" / "3m ago" relative to now.
std::string Relative(Clock::Wall t, Clock::Wall now) {
  if (t > now) return "in " + HumanDuration(Since(now, t));
  return HumanDuration(Since(t, now)) + " ago";
}

std::size_t DisplayWidth(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80 ? 1 : 0;
  return n;
}

// reason: message of the first condition that has a reason (Ready, then Attached).
std::string ReasonOf(const json& status) {
  for (const char* type : {api::condition::kReady, api::condition::kAttached, api::condition::kCircuitAllowed}) {
    const json& c = Condition(status, type);
    std::string reason = Str(c, "reason"), message = Str(c, "message");
    if (!reason.empty()) return OneLine(message.empty() ? reason : reason + ": " + message);
  }
  return "no reason given";
}

// LaunchJson in VS Code's usual key order (name, type, request first), pretty-printed.
std::string LaunchJsonText(const std::string& session, int local_port) {
  nlohmann::ordered_json j;
  j["name"] = "graydebug " + session;
  j["type"] = "go";
  j["request"] = "attach";
  j["mode"] = "remote";
  j["port"] = local_port;
  j["host"] = "127.0.0.1";
  return j.dump(2, ' ', false, json::error_handler_t::replace);
}

}  // namespace

bool IsDns1123Label(std::string_view s) {
  if (s.empty() || s.size() > 63 || !IsAlnum(s.front()) || !IsAlnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return IsAlnum(c) || c == '-'; });
}

bool IsDns1123Subdomain(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  std::size_t start = 0;
  while (true) {
    std::size_t dot = s.find('.', start);
    std::string_view part = s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (part.empty() || !IsAlnum(part.front()) || !IsAlnum(part.back())) return false;
    if (!std::all_of(part.begin(), part.end(), [](char c) { return IsAlnum(c) || c == '-'; })) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

TargetResult ParseTarget(std::string_view arg) {
  auto fail = [](std::string why) { return TargetResult{std::nullopt, std::move(why)}; };
  if (arg.empty()) return fail("empty target: give a pod name, pod/NAME or deploy/NAME");
  Target t;
  std::string_view name = arg;
  if (auto slash = arg.find('/'); slash != std::string_view::npos) {
    std::string kind = Lower(arg.substr(0, slash));
    name = arg.substr(slash + 1);
    if (kind == "pod" || kind == "pods" || kind == "po") {
      t.kind = Target::Kind::kPod;
    } else if (kind == "deploy" || kind == "deployment" || kind == "deployments" || kind == "deployment.apps" ||
               kind == "deployments.apps") {
      t.kind = Target::Kind::kDeployment;
    } else {
      return fail("unsupported kind " + Quote(arg.substr(0, slash)) + ": give a pod name, pod/NAME or deploy/NAME");
    }
    if (name.empty()) return fail("no name after " + Quote(arg.substr(0, slash + 1)));
    if (name.find('/') != std::string_view::npos) return fail("too many '/' in " + Quote(arg));
  }
  if (!IsDns1123Subdomain(name)) {
    return fail(Quote(name) + " is not a valid " + (t.kind == Target::Kind::kPod ? "pod" : "deployment") +
                " name (lowercase letters, digits, '-' and '.', at most 253 characters)");
  }
  t.name = std::string(name);
  return {t, ""};
}

std::string CompletionScript(const std::string& shell) {
  std::string bash =
      R"SH(# kubectl-graydebug completion (bash). Source it, or save as kubectl_complete-graydebug on PATH.
_kubectl_graydebug() {
  local cur prev words cword
  cur="${COMP_WORDS[COMP_CWORD]}"
  local cmd="${COMP_WORDS[1]}"
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "attach list end status completion --help --version" -- "$cur")); return
  fi
  case "$cmd" in
    attach) COMPREPLY=($(compgen -W "--ttl --reason --timeout --local-port --port --selector -l --keep --no-port-forward --namespace -n --kubeconfig --context" -- "$cur")) ;;
    list) COMPREPLY=($(compgen -W "--all-namespaces -A --output -o --namespace -n --kubeconfig --context" -- "$cur")) ;;
    end) COMPREPLY=($(compgen -W "$(kubectl-graydebug list -o json 2>/dev/null | sed -n 's/.*"name": *"\([^"]*\)".*/\1/p')" -- "$cur")) ;;
    status) COMPREPLY=($(compgen -W "--circuits-namespace --output -o --namespace -n --kubeconfig --context" -- "$cur")) ;;
    completion) COMPREPLY=($(compgen -W "bash zsh" -- "$cur")) ;;
  esac
}
complete -F _kubectl_graydebug kubectl-graydebug
)SH";
  if (shell == "zsh") return "autoload -U +X bashcompinit && bashcompinit\n" + bash;
  return bash;
}

SelectorResult ParseLabelSelector(std::string_view text) {
  SelectorResult r;
  json match_labels = json::object(), expressions = json::array();
  auto valid_key = [](std::string_view k) {
    if (k.empty() || k.size() > 317) return false;
    for (char c : k) {
      if (!(IsAlnum(c) || (c >= 'A' && c <= 'Z') || c == '-' || c == '_' || c == '.' || c == '/')) return false;
    }
    return true;
  };
  auto valid_value = [](std::string_view v) {
    if (v.size() > 63) return false;
    for (char c : v) {
      if (!(IsAlnum(c) || (c >= 'A' && c <= 'Z') || c == '-' || c == '_' || c == '.')) return false;
    }
    return true;
  };
  if (text.empty()) {
    r.error = "empty label selector";
    return r;
  }
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t comma = text.find(',', start);
    std::string term(text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    start = comma == std::string_view::npos ? text.size() + 1 : comma + 1;
    while (!term.empty() && term.front() == ' ') term.erase(0, 1);
    while (!term.empty() && term.back() == ' ') term.pop_back();
    if (term.empty() || term.find(" in ") != std::string::npos || term.find(" notin ") != std::string::npos ||
        term.find('(') != std::string::npos) {
      r.error = term.empty() ? "empty term in label selector " + Quote(text)
                             : "set-based selectors are not supported: " + Quote(term) + " (use k=v, k!=v, k or !k)";
      return r;
    }
    std::string key, value, op;
    if (auto ne = term.find("!="); ne != std::string::npos) {
      key = term.substr(0, ne), value = term.substr(ne + 2), op = "NotIn";
    } else if (auto eq = term.find('='); eq != std::string::npos) {
      key = term.substr(0, eq);
      value = term.substr(eq + (term.compare(eq, 2, "==") == 0 ? 2 : 1));
      op = "=";
    } else if (term[0] == '!') {
      key = term.substr(1), op = "DoesNotExist";
    } else {
      key = term, op = "Exists";
    }
    if (!valid_key(key)) {
      r.error = "bad label key " + Quote(key) + " in selector " + Quote(text);
      return r;
    }
    if ((op == "=" || op == "NotIn") && !valid_value(value)) {
      r.error = "bad label value " + Quote(value) + " in selector " + Quote(text);
      return r;
    }
    if (op == "=") {
      match_labels[key] = value;
    } else if (op == "NotIn") {
      expressions.push_back({{"key", key}, {"operator", "NotIn"}, {"values", {value}}});
    } else {
      expressions.push_back({{"key", key}, {"operator", op}});
    }
  }
  if (!match_labels.empty()) r.selector["matchLabels"] = match_labels;
  if (!expressions.empty()) r.selector["matchExpressions"] = expressions;
  return r;
}

std::string SessionName(std::string_view base, const std::function<uint32_t()>& random) {
  std::string b;
  for (char c : base) {
    char l = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    b += IsAlnum(l) ? l : '-';
  }
  const std::size_t room = kMaxSessionName - kSuffixLength - 1;
  std::size_t first = b.find_first_not_of('-');
  b = first == std::string::npos ? "" : b.substr(first, room);
  while (!b.empty() && b.back() == '-') b.pop_back();
  if (b.empty()) b = "session";
  b += '-';
  for (std::size_t i = 0; i < kSuffixLength; ++i) b += kSuffixAlphabet[random() % kSuffixAlphabet.size()];
  return b;
}

SelectorResult DeploymentSelector(const json& deployment) {
  std::string name = Str(Obj(deployment, "metadata"), "name");
  const json& selector = Obj(Obj(deployment, "spec"), "selector");
  json out = json::object();
  if (auto ml = selector.find("matchLabels"); ml != selector.end() && ml->is_object() && !ml->empty()) {
    for (const auto& [k, v] : ml->items()) {
      if (!v.is_string())
        return {json(), "deployment " + name + " has a non-string value in spec.selector.matchLabels"};
    }
    out["matchLabels"] = *ml;
  }
  if (auto me = selector.find("matchExpressions"); me != selector.end() && me->is_array() && !me->empty()) {
    out["matchExpressions"] = *me;
  }
  if (out.empty()) return {json(), "deployment " + name + " has no spec.selector.matchLabels to find its pods by"};
  return {out, ""};
}

json BuildSession(const SessionRequest& r) {
  json target = r.target.kind == Target::Kind::kPod ? json{{"pod", r.target.name}} : json{{"selector", r.selector}};
  json spec = {{"target", target}, {"ttl", FormatDuration(r.ttl)}};
  if (!r.reason.empty()) spec["reason"] = r.reason;
  return api::NewSession(r.namespace_, r.name, std::move(spec));
}

Outcome SessionOutcome(const json& session) {
  std::string phase = Str(Obj(session, "status"), "phase");
  if (phase == api::phase::kActive) return Outcome::kActive;
  if (phase == api::phase::kFailed || phase == api::phase::kRejected) return Outcome::kFailed;
  if (phase == api::phase::kExpired || phase == api::phase::kTerminated) return Outcome::kEnded;
  return Outcome::kWaiting;
}

std::string ProgressLine(const json& session) {
  const json& status = Obj(session, "status");
  std::string phase = Str(status, "phase");
  const json& attached = Condition(status, api::condition::kAttached);
  std::string reason = Str(attached, "reason"), message = OneLine(Str(attached, "message"));
  if (phase.empty()) return "Waiting for graydebug-controller to pick the session up…";
  if (phase == api::phase::kPending) {
    if (reason.empty()) return "Pending…";
    return "Pending: " + reason + (message.empty() ? "" : ": " + message);
  }
  if (phase == api::phase::kAttaching) {
    if (reason == "AttachRetrying") {
      auto attempts = Number(Obj(status, "attach"), "attempts").value_or(0);
      return "Attaching: attempt " + std::to_string(static_cast<int64_t>(attempts)) + " failed: " + message +
             "; retrying…";
    }
    return "Attaching…";
  }
  if (phase == api::phase::kActive) {
    auto latency = Number(Obj(status, "attach"), "latencySeconds");
    return latency ? "Active: attached in " + Latency(*latency) : "Active";
  }
  return OneLine(phase) + ": " + ReasonOf(status);
}

std::string FailureLine(const json& session) {
  const json& status = Obj(session, "status");
  std::string phase = Str(status, "phase");
  std::string line = (phase.empty() ? std::string("Unknown") : OneLine(phase)) + ": " + ReasonOf(status);
  auto attempts = Number(Obj(status, "attach"), "attempts");
  if (phase == api::phase::kFailed && attempts && *attempts > 0) {
    auto n = static_cast<int64_t>(*attempts);
    line += " (" + std::to_string(n) + (n == 1 ? " attempt)" : " attempts)");
  }
  return line;
}

int DlvPortOfPod(const json& pod, int fallback) {
  return api::DlvPortOf(pod, fallback);
}

json LaunchJson(const std::string& session, int local_port) {
  return {{"name", "graydebug " + session},
          {"type", "go"},
          {"request", "attach"},
          {"mode", "remote"},
          {"port", local_port},
          {"host", "127.0.0.1"}};
}

std::string ActiveSummary(const json& session, int local_port, Clock::Wall now) {
  const json& md = Obj(session, "metadata");
  const json& status = Obj(session, "status");
  std::string name = Str(md, "name");
  std::ostringstream out;
  out << "debugsession " << Str(md, "namespace") << "/" << name << " is Active on pod " << OneLine(Str(status, "pod"));
  if (std::string release = Str(status, "release"); !release.empty()) out << " (release " << OneLine(release) << ")";
  out << "\n";
  const json& attach = Obj(status, "attach");
  if (auto latency = Number(attach, "latencySeconds")) {
    auto attempts = static_cast<int64_t>(Number(attach, "attempts").value_or(1));
    out << "attached in " << Latency(*latency) << " (" << attempts << (attempts == 1 ? " attempt" : " attempts") << ")";
  } else {
    out << "attached";
  }
  std::string expires = Str(status, "expiresAt");
  if (auto t = kube::ParseTime(expires)) {
    out << "; expires at " << kube::FormatTime(*t) << " (" << Relative(*t, now) << ")";
  }
  out << "\n";
  if (std::string connect = Str(status, "connect"); !connect.empty())
    out << "connect: " << OneLine(connect, 1024) << "\n";
  out << "VS Code launch.json configuration (dlv on 127.0.0.1:" << local_port << "):\n"
      << LaunchJsonText(name, local_port) << "\n";
  return out.str();
}

std::vector<std::string> PortForwardArgs(const PortForward& pf) {
  std::vector<std::string> argv = {
      pf.kubectl,    "port-forward",  "-n",
      pf.namespace_, "pod/" + pf.pod, std::to_string(pf.local_port) + ":" + std::to_string(pf.remote_port)};
  if (!pf.kubeconfig.empty()) argv.push_back("--kubeconfig=" + pf.kubeconfig);
  if (!pf.context.empty()) argv.push_back("--context=" + pf.context);
  return argv;
}

std::string HumanDuration(std::chrono::seconds d) {
  const int64_t seconds = d.count();
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 120) return std::to_string(seconds) + "s";
  const int64_t minutes = seconds / 60;
  if (minutes < 10) {
    int64_t s = seconds % 60;
    return std::to_string(minutes) + "m" + (s == 0 ? "" : std::to_string(s) + "s");
  }
  if (minutes < 180) return std::to_string(minutes) + "m";
  const int64_t hours = minutes / 60;
  if (hours < 8) {
    int64_t m = minutes % 60;
    return std::to_string(hours) + "h" + (m == 0 ? "" : std::to_string(m) + "m");
  }
  if (hours < 48) return std::to_string(hours) + "h";
  if (hours < 24 * 8) {
    int64_t h = hours % 24;
    return std::to_string(hours / 24) + "d" + (h == 0 ? "" : std::to_string(h) + "h");
  }
  if (hours < 24 * 365 * 2) return std::to_string(hours / 24) + "d";
  if (hours < 24 * 365 * 8) {
    int64_t dy = (hours / 24) % 365;
    return std::to_string(hours / 24 / 365) + "y" + (dy == 0 ? "" : std::to_string(dy) + "d");
  }
  return std::to_string(hours / 24 / 365) + "y";
}

std::string OneLine(std::string_view s, std::size_t max) {
  std::string out;
  out.reserve(std::min(s.size(), max));
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      out += ' ';
    } else if (c == 0xC2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(s[i + 1]) <= 0x9F) {
      out += ' ';  // a C1 control character (U+0080..U+009F): terminals may act on it
      ++i;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (out.size() > max) {
    std::size_t cut = max;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
    out = out.substr(0, cut) + "…";
  }
  return out;
}

std::string FormatTable(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  const std::size_t columns = header.size();
  std::vector<std::vector<std::string>> cells;
  cells.push_back(header);
  for (const auto& row : rows) {
    std::vector<std::string> r;
    for (std::size_t i = 0; i < columns; ++i) {
      std::string v = i < row.size() ? OneLine(row[i], 256) : "";
      r.push_back(v.find_first_not_of(' ') == std::string::npos ? "<none>" : v);
    }
    cells.push_back(std::move(r));
  }
  std::vector<std::size_t> width(columns, 0);
  for (const auto& r : cells) {
    for (std::size_t i = 0; i < columns; ++i) width[i] = std::max(width[i], DisplayWidth(r[i]));
  }
  std::string out;
  for (const auto& r : cells) {
    std::string line;
    for (std::size_t i = 0; i < columns; ++i) {
      line += r[i];
      if (i + 1 < columns) line += std::string(width[i] - DisplayWidth(r[i]) + 3, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

std::string SessionTable(const json& list, bool all_namespaces, Clock::Wall now) {
  std::vector<const json*> items;
  if (auto it = list.is_object() ? list.find("items") : list.end();
      list.is_object() && it != list.end() && it->is_array()) {
    for (const json& item : *it) {
      if (item.is_object()) items.push_back(&item);
    }
  }
  auto key = [](const json* s) {
    const json& md = Obj(*s, "metadata");
    return std::make_pair(Str(md, "namespace"), Str(md, "name"));
  };
  std::stable_sort(items.begin(), items.end(), [&](const json* a, const json* b) { return key(a) < key(b); });
  std::vector<std::string> header = {"NAME", "PHASE", "POD", "RELEASE", "LATENCY", "EXPIRES", "AGE"};
  if (all_namespaces) header.insert(header.begin(), "NAMESPACE");
  std::vector<std::vector<std::string>> rows;
  for (const json* s : items) {
    const json& md = Obj(*s, "metadata");
    const json& status = Obj(*s, "status");
    std::string phase = Str(status, "phase");
    std::string pod = Str(status, "pod");
    if (pod.empty()) pod = Str(Obj(Obj(*s, "spec"), "target"), "pod");
    std::string latency = "-";
    if (auto l = Number(Obj(status, "attach"), "latencySeconds"); l && !Str(status, "startedAt").empty()) {
      latency = Latency(*l);
    }
    std::string expires = "-";
    if (auto t = kube::ParseTime(Str(status, "expiresAt"));
        t && (!api::IsFinalPhase(phase) || phase == api::phase::kExpired)) {
      expires = Relative(*t, now);
    }
    std::string age;
    if (auto created = kube::ParseTime(Str(md, "creationTimestamp"))) age = HumanDuration(Since(*created, now));
    std::vector<std::string> row = {Str(md, "name"), phase, pod, Str(status, "release"), latency, expires, age};
    if (all_namespaces) row.insert(row.begin(), Str(md, "namespace"));
    rows.push_back(std::move(row));
  }
  return FormatTable(header, rows);
}

std::vector<BreakerRow> BreakerRows(const json& configmap) {
  std::vector<BreakerRow> rows;
  for (const api::CircuitEntry& e : api::DecodeCircuits(Obj(configmap, "data"), api::ReaderBreakerConfig())) {
    BreakerRow row;
    row.release = e.release_key;
    row.state = "unreadable";
    row.problem = e.problem;
    if (e.breaker) {
      const CircuitBreaker& b = *e.breaker;
      row.state = BreakerStateName(b.stored_state());
      row.attempts = b.attempts();
      row.failures = b.failures();
      row.trips = b.trips();
      if (b.RetryAt() > Clock::Wall{}) row.retry_at = b.RetryAt();
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string BreakerTable(const std::vector<BreakerRow>& rows, Clock::Wall now) {
  if (rows.empty()) return "";
  std::vector<std::vector<std::string>> cells;
  for (const BreakerRow& r : rows) {
    if (r.state == "unreadable") {
      cells.push_back({r.release, r.state, "-", "-", "-", "-"});
      continue;
    }
    std::string retry = "-";
    if (r.state == "open" && r.retry_at)
      retry = kube::FormatTime(*r.retry_at) + " (" + Relative(*r.retry_at, now) + ")";
    cells.push_back(
        {r.release, r.state, std::to_string(r.attempts), std::to_string(r.failures), std::to_string(r.trips), retry});
  }
  return FormatTable({"RELEASE", "STATE", "ATTEMPTS", "FAILURES", "TRIPS", "RETRY AT"}, cells);
}

json BreakerJson(const std::vector<BreakerRow>& rows) {
  json out = json::object();
  for (const BreakerRow& r : rows) {
    json b = {{"state", r.state}};
    if (!r.problem.empty()) {
      b["problem"] = r.problem;
    } else {
      b["attempts"] = r.attempts;
      b["failures"] = r.failures;
      b["trips"] = r.trips;
      if (r.retry_at) b["retryAt"] = kube::FormatTime(*r.retry_at);
    }
    out[r.release] = std::move(b);
  }
  return out;
}

namespace {

// Plain scalars YAML would read as something other than a string.
bool NeedsQuotes(const std::string& s) {
  if (s.empty()) return true;
  static const char* const kWords[] = {"null", "~", "true", "false", "yes", "no", "on", "off", "y", "n"};
  std::string l = Lower(s);
  for (const char* w : kWords) {
    if (l == w) return true;
  }
  char c = s[0];
  return (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
}

void Emit(YAML::Emitter& out, const json& v) {
  switch (v.type()) {
    case json::value_t::object:
      if (v.empty()) out << YAML::Flow;  // "{}" on the key's line
      out << YAML::BeginMap;
      for (const auto& [k, x] : v.items()) {
        out << YAML::Key;
        if (NeedsQuotes(k)) out << YAML::DoubleQuoted;
        out << k << YAML::Value;
        Emit(out, x);
      }
      out << YAML::EndMap;
      break;
    case json::value_t::array:
      if (v.empty()) out << YAML::Flow;
      out << YAML::BeginSeq;
      for (const json& x : v) Emit(out, x);
      out << YAML::EndSeq;
      break;
    case json::value_t::string: {
      const auto& s = v.get_ref<const std::string&>();
      if (NeedsQuotes(s)) out << YAML::DoubleQuoted;
      out << s;
      break;
    }
    case json::value_t::boolean: out << (v.get<bool>() ? "true" : "false"); break;
    case json::value_t::null: out << YAML::Null; break;
    default: out << v.dump(); break;  // numbers: the JSON text is a valid YAML number
  }
}

}  // namespace

std::string ToYaml(const json& value) {
  try {
    YAML::Emitter out;
    Emit(out, value);
    if (out.good()) return std::string(out.c_str()) + "\n";
  } catch (const std::exception&) {
  }
  // JSON is YAML too; used when the emitter refuses a value (e.g. invalid UTF-8).
  return value.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace graydebug::cli
