#include "support/fake_apiserver.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>

#include "graydebug/kube/time.h"

namespace graydebug::testing {
namespace {

using json = nlohmann::json;
using kube::HttpRequest;
using kube::HttpResponse;

// Where a request points: the collection ("/api/v1/pods", "/apis/g/v/res"), namespace, name and
// subresource, and the query.
struct Target {
  std::string collection, ns, name, sub;
  std::map<std::string, std::string> query;
  bool ok = false;
};

std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i] == '+' ? ' ' : s[i];
    }
  }
  return out;
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(sep, start);
    if (end == std::string::npos) end = s.size();
    out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

Target Parse(const std::string& path_and_query) {
  Target t;
  const size_t q = path_and_query.find('?');
  const std::string path = path_and_query.substr(0, q);
  if (q != std::string::npos) {
    for (const std::string& kv : Split(path_and_query.substr(q + 1), '&')) {
      const size_t eq = kv.find('=');
      if (eq == std::string::npos) continue;
      t.query[kv.substr(0, eq)] = Unescape(kv.substr(eq + 1));
    }
  }
  std::vector<std::string> seg = Split(path, '/');  // "", "api", ...
  if (seg.size() < 2) return t;
  size_t i = 0;
  std::string prefix;
  if (seg.size() >= 4 && seg[1] == "api") {
    prefix = "/api/" + seg[2];
    i = 3;
  } else if (seg.size() >= 5 && seg[1] == "apis") {
    prefix = "/apis/" + seg[2] + "/" + seg[3];
    i = 4;
  } else {
    return t;
  }
  std::vector<std::string> rest;
  for (; i < seg.size(); ++i) rest.push_back(Unescape(seg[i]));
  if (rest.size() >= 3 && rest[0] == "namespaces") {
    t.ns = rest[1];
    rest.erase(rest.begin(), rest.begin() + 2);
  }
  if (rest.empty() || rest.size() > 3 || rest[0].empty()) return t;
  t.collection = prefix + "/" + rest[0];
  if (rest.size() >= 2) t.name = rest[1];
  if (rest.size() == 3) t.sub = rest[2];
  t.ok = true;
  return t;
}

std::string Key(const std::string& ns, const std::string& name) {
  return ns + "/" + name;
}

// Equality-based selectors as kubectl and the controllers write them: k=v, k==v, k!=v, k, !k.
bool Matches(const std::string& selector, const json& object) {
  if (selector.empty()) return true;
  static const json kNoLabels = json::object();
  const json* labels = &kNoLabels;
  if (auto md = object.find("metadata"); md != object.end() && md->contains("labels")) labels = &(*md)["labels"];
  for (const std::string& term : Split(selector, ',')) {
    if (term.empty()) continue;
    auto value_of = [&](const std::string& k) -> std::optional<std::string> {
      auto it = labels->find(k);
      if (it == labels->end() || !it->is_string()) return std::nullopt;
      return it->get<std::string>();
    };
    if (size_t ne = term.find("!="); ne != std::string::npos) {
      if (value_of(term.substr(0, ne)) == term.substr(ne + 2)) return false;
    } else if (size_t eq = term.find('='); eq != std::string::npos) {
      const size_t vstart = term.compare(eq, 2, "==") == 0 ? eq + 2 : eq + 1;
      if (value_of(term.substr(0, eq)) != term.substr(vstart)) return false;
    } else if (term[0] == '!') {
      if (value_of(term.substr(1))) return false;
    } else if (!value_of(term)) {
      return false;
    }
  }
  return true;
}

std::string Rv(const json& object) {
  if (!object.is_object() || !object.contains("metadata") || !object["metadata"].is_object()) return "";
  auto it = object["metadata"].find("resourceVersion");
  return it != object["metadata"].end() && it->is_string() ? it->get<std::string>() : "";
}

bool HasFinalizers(const json& object) {
  auto md = object.find("metadata");
  if (md == object.end()) return false;
  auto f = md->find("finalizers");
  return f != md->end() && f->is_array() && !f->empty();
}

bool Deleting(const json& object) {
  auto md = object.find("metadata");
  return md != object.end() && md->contains("deletionTimestamp") && !(*md)["deletionTimestamp"].is_null();
}

}  // namespace

struct FakeApiServer::State {
  struct Event {
    int64_t rv;
    std::string collection, ns, type;
    json object;
  };
  std::mutex mu;
  std::condition_variable cv;                                  // events, requests, closes
  std::map<std::string, std::map<std::string, json>> objects;  // collection -> "ns/name" -> object
  std::vector<Event> events;                                   // in resourceVersion order
  int64_t rv = 100, compacted = 0, uid = 0;
  uint64_t epoch = 0;  // bumped by CloseWatches
  bool closed = false;
  Interceptor intercept;
  std::deque<HttpResponse> script;
  std::deque<std::deque<std::string>> watch_scripts;
  std::vector<std::string> requests;
  std::vector<HttpRequest> full_requests;
  std::vector<std::pair<std::string, int>> answered;  // "METHOD path", status

  // Stores `object` under the next resourceVersion and records the event.
  json Store(const std::string& collection, const std::string& ns, json object, const std::string& type) {
    object["metadata"]["resourceVersion"] = std::to_string(++rv);
    const std::string name = object["metadata"].value("name", "");
    objects[collection][Key(ns, name)] = object;
    events.push_back({rv, collection, ns, type, object});
    cv.notify_all();
    return object;
  }
  json Remove(const std::string& collection, const std::string& ns, const std::string& name) {
    auto& c = objects[collection];
    json object = c[Key(ns, name)];
    c.erase(Key(ns, name));
    object["metadata"]["resourceVersion"] = std::to_string(++rv);
    events.push_back({rv, collection, ns, "DELETED", object});
    cv.notify_all();
    return object;
  }
};

// A watch: the events after its resourceVersion that match its namespace and selector, as lines.
class FakeApiServer::WatchStream final : public kube::LineStream {
 public:
  WatchStream(std::shared_ptr<State> s, Target t, int64_t from, std::vector<std::string> initial)
      : s_(std::move(s)), t_(std::move(t)), cursor_(from), pending_(std::move(initial)) {
    std::lock_guard l(s_->mu);
    epoch_ = s_->epoch;
  }
  bool ReadLine(std::string* line, kube::ApiError* error) override {
    *error = {};
    if (!pending_.empty()) {
      *line = std::move(pending_.front());
      pending_.erase(pending_.begin());
      return true;
    }
    std::unique_lock l(s_->mu);
    if (cursor_ < s_->compacted) {
      cursor_ = s_->rv;  // one ERROR, then the stream ends
      *line = json{{"type", "ERROR"},
                   {"object",
                    {{"kind", "Status"},
                     {"apiVersion", "v1"},
                     {"status", "Failure"},
                     {"reason", "Expired"},
                     {"code", 410},
                     {"message", "too old resource version"}}}}
                  .dump();
      done_ = true;
      return true;
    }
    while (true) {
      if (cancelled_ || done_ || s_->closed || s_->epoch != epoch_) return false;
      auto it = std::upper_bound(s_->events.begin(), s_->events.end(), cursor_,
                                 [](int64_t rv, const State::Event& e) { return rv < e.rv; });
      for (; it != s_->events.end(); ++it) {
        cursor_ = it->rv;
        if (it->collection != t_.collection || (!t_.ns.empty() && it->ns != t_.ns)) continue;
        if (!Matches(t_.query["labelSelector"], it->object)) continue;
        *line = json{{"type", it->type}, {"object", it->object}}.dump();
        return true;
      }
      s_->cv.wait(l);
    }
  }
  void Cancel() override {
    std::lock_guard l(s_->mu);
    cancelled_ = true;
    s_->cv.notify_all();
  }

 private:
  std::shared_ptr<State> s_;
  Target t_;
  int64_t cursor_;
  std::vector<std::string> pending_;
  uint64_t epoch_ = 0;
  bool cancelled_ = false, done_ = false;
};

FakeApiServer::FakeApiServer(const Clock* clock) : s_(std::make_shared<State>()) {
  clock_ = clock;
}

FakeApiServer::~FakeApiServer() {
  std::lock_guard l(s_->mu);
  s_->closed = true;
  s_->cv.notify_all();
}

HttpResponse FakeApiServer::StatusReply(int code, const std::string& reason, const std::string& message) {
  return {code,
          json{{"kind", "Status"},
               {"apiVersion", "v1"},
               {"status", "Failure"},
               {"reason", reason},
               {"message", message},
               {"code", code}}
              .dump(),
          "",
          {}};
}

std::shared_ptr<kube::Client> FakeApiServer::NewClient(kube::ClientOptions options, kube::RestConfig cfg) {
  // The client owns its transport; this forwards to the server, which the test owns.
  class Forward final : public kube::HttpTransport {
   public:
    explicit Forward(FakeApiServer* s) : s_(s) {}
    HttpResponse Do(const HttpRequest& r) override { return s_->Do(r); }
    kube::StreamResponse Stream(const HttpRequest& r) override { return s_->Stream(r); }

   private:
    FakeApiServer* s_;
  };
  if (cfg.server.empty()) cfg.server = "https://127.0.0.1:1";
  options.qps = 0;
  if (options.clock == nullptr) options.clock = clock_;
  return std::make_shared<kube::Client>(cfg, std::make_unique<Forward>(this), options);
}

std::string FakeApiServer::Now() const {
  return kube::FormatTime(clock_ != nullptr ? clock_->WallNow() : std::chrono::system_clock::now());
}

json FakeApiServer::Seed(const kube::Resource& r, json object) {
  const std::string ns = r.namespaced ? object["metadata"].value("namespace", "") : "";
  const Target t = Parse(kube::Client::Path(r, ns));
  std::lock_guard l(s_->mu);
  auto& md = object["metadata"];
  if (!md.contains("uid")) md["uid"] = "uid-" + std::to_string(++s_->uid);
  if (!md.contains("creationTimestamp")) md["creationTimestamp"] = Now();
  const bool exists = s_->objects[t.collection].count(Key(ns, md.value("name", ""))) > 0;
  return s_->Store(t.collection, ns, std::move(object), exists ? "MODIFIED" : "ADDED");
}

std::optional<json> FakeApiServer::Get(const kube::Resource& r, const std::string& ns, const std::string& name) const {
  const Target t = Parse(kube::Client::Path(r, r.namespaced ? ns : ""));
  std::lock_guard l(s_->mu);
  auto c = s_->objects.find(t.collection);
  if (c == s_->objects.end()) return std::nullopt;
  auto it = c->second.find(Key(r.namespaced ? ns : "", name));
  if (it == c->second.end()) return std::nullopt;
  return it->second;
}

std::vector<json> FakeApiServer::List(const kube::Resource& r, const std::string& ns) const {
  const Target t = Parse(kube::Client::Path(r, ""));
  std::lock_guard l(s_->mu);
  std::vector<json> out;
  auto c = s_->objects.find(t.collection);
  if (c == s_->objects.end()) return out;
  for (const auto& [key, o] : c->second) {
    if (ns.empty() || key.rfind(ns + "/", 0) == 0) out.push_back(o);
  }
  return out;
}

void FakeApiServer::Intercept(Interceptor f) {
  std::lock_guard l(s_->mu);
  s_->intercept = std::move(f);
}

void FakeApiServer::Script(std::deque<HttpResponse> replies) {
  std::lock_guard l(s_->mu);
  s_->script = std::move(replies);
}

void FakeApiServer::ScriptWatch(std::deque<std::string> lines) {
  std::lock_guard l(s_->mu);
  s_->watch_scripts.push_back(std::move(lines));
}

std::vector<HttpRequest> FakeApiServer::FullRequests() const {
  std::lock_guard l(s_->mu);
  return s_->full_requests;
}

int FakeApiServer::Answered(const std::string& prefix, int code) const {
  std::lock_guard l(s_->mu);
  return static_cast<int>(std::count_if(s_->answered.begin(), s_->answered.end(), [&](const auto& a) {
    return a.second == code && a.first.rfind(prefix, 0) == 0;
  }));
}

std::vector<std::string> FakeApiServer::Requests() const {
  std::lock_guard l(s_->mu);
  return s_->requests;
}

int FakeApiServer::Count(const std::string& prefix) const {
  std::lock_guard l(s_->mu);
  return static_cast<int>(std::count_if(s_->requests.begin(), s_->requests.end(),
                                        [&](const std::string& r) { return r.rfind(prefix, 0) == 0; }));
}

bool FakeApiServer::WaitForCount(const std::string& prefix, int n, std::chrono::milliseconds timeout) const {
  std::unique_lock l(s_->mu);
  return s_->cv.wait_for(l, timeout, [&] {
    return std::count_if(s_->requests.begin(), s_->requests.end(),
                         [&](const std::string& r) { return r.rfind(prefix, 0) == 0; }) >= n;
  });
}

void FakeApiServer::CloseWatches() {
  std::lock_guard l(s_->mu);
  ++s_->epoch;
  s_->cv.notify_all();
}

void FakeApiServer::Compact() {
  std::lock_guard l(s_->mu);
  s_->compacted = s_->rv;
  s_->events.clear();
  s_->cv.notify_all();
}

int64_t FakeApiServer::resource_version() const {
  std::lock_guard l(s_->mu);
  return s_->rv;
}

HttpResponse FakeApiServer::Do(const HttpRequest& request) {
  const std::string line = request.method + " " + request.path;
  Interceptor intercept;
  {
    std::lock_guard l(s_->mu);
    s_->requests.push_back(line);
    s_->full_requests.push_back(request);
    s_->cv.notify_all();
    intercept = s_->intercept;
  }
  std::optional<HttpResponse> answer;
  if (intercept) answer = intercept(request);
  if (!answer) {
    std::lock_guard l(s_->mu);
    if (!s_->script.empty()) {
      answer = std::move(s_->script.front());
      s_->script.pop_front();
    }
  }
  if (!answer) answer = Serve(request);
  std::lock_guard l(s_->mu);
  s_->answered.emplace_back(line, answer->status);
  s_->cv.notify_all();
  return *answer;
}

kube::StreamResponse FakeApiServer::Stream(const HttpRequest& request) {
  Interceptor intercept;
  std::optional<std::deque<std::string>> scripted;
  {
    std::lock_guard l(s_->mu);
    s_->requests.push_back("WATCH " + request.path);
    s_->full_requests.push_back(request);
    s_->cv.notify_all();
    intercept = s_->intercept;
  }
  kube::StreamResponse out;
  if (intercept) {
    if (auto r = intercept(request)) {
      out.head = *r;
      return out;
    }
  }
  {
    std::lock_guard l(s_->mu);
    if (!s_->watch_scripts.empty()) {
      scripted = std::move(s_->watch_scripts.front());
      s_->watch_scripts.pop_front();
    }
  }
  if (scripted) {
    // Lines as scripted, then the end of the stream.
    class Lines final : public kube::LineStream {
     public:
      explicit Lines(std::deque<std::string> lines) : lines_(std::move(lines)) {}
      bool ReadLine(std::string* line, kube::ApiError* error) override {
        *error = {};
        if (lines_.empty()) return false;
        *line = std::move(lines_.front());
        lines_.pop_front();
        return true;
      }
      void Cancel() override {}

     private:
      std::deque<std::string> lines_;
    };
    out.head.status = 200;
    out.stream = std::make_unique<Lines>(std::move(*scripted));
    return out;
  }
  Target t = Parse(request.path);
  if (!t.ok || !t.name.empty() || t.query["watch"] != "true") {
    out.head = StatusReply(400, "BadRequest", "not a watch: " + request.path);
    return out;
  }
  std::unique_lock l(s_->mu);
  int64_t from = s_->rv;
  std::vector<std::string> initial;
  const std::string rv = t.query["resourceVersion"];
  if (rv.empty() || rv == "0") {
    // "Most recent": every current object as ADDED first.
    for (const auto& [key, o] : s_->objects[t.collection]) {
      if ((t.ns.empty() || key.rfind(t.ns + "/", 0) == 0) && Matches(t.query["labelSelector"], o)) {
        initial.push_back(json{{"type", "ADDED"}, {"object", o}}.dump());
      }
    }
  } else {
    try {
      from = std::stoll(rv);
    } catch (const std::exception&) {
      out.head = StatusReply(400, "BadRequest", "invalid resourceVersion " + rv);
      return out;
    }
  }
  l.unlock();
  out.head.status = 200;
  out.stream = std::make_unique<WatchStream>(s_, std::move(t), from, std::move(initial));
  return out;
}

HttpResponse FakeApiServer::Serve(const HttpRequest& request) {
  Target t = Parse(request.path);
  if (!t.ok) return StatusReply(404, "NotFound", "the server could not find the requested resource");
  std::lock_guard l(s_->mu);
  auto& objects = s_->objects[t.collection];
  const std::string key = Key(t.ns, t.name);
  auto found = t.name.empty() ? objects.end() : objects.find(key);
  const std::string what = t.collection.substr(t.collection.rfind('/') + 1) + " \"" + t.name + "\"";
  auto not_found = [&] {
    // As the API server does: details.name says which object is missing.
    HttpResponse r = StatusReply(404, "NotFound", what + " not found");
    json status = json::parse(r.body);
    status["details"] = {{"name", t.name}, {"kind", t.collection.substr(t.collection.rfind('/') + 1)}};
    r.body = status.dump();
    return r;
  };
  auto conflict = [&] {
    return StatusReply(409, "Conflict",
                       "Operation cannot be fulfilled on " + what +
                           ": the object has been modified; please apply your changes to the latest version and "
                           "try again");
  };
  auto body = [&](json* out) {
    try {
      *out = json::parse(request.body);
      return out->is_object() || out->is_array();
    } catch (const json::exception&) {
      return false;
    }
  };

  if (request.method == "GET" && !t.name.empty()) {
    if (found == objects.end()) return not_found();
    return {200, found->second.dump(), "", {}};
  }
  if (request.method == "GET") {
    json list = {{"kind", "List"},
                 {"apiVersion", "v1"},
                 {"metadata", {{"resourceVersion", std::to_string(s_->rv)}}},
                 {"items", json::array()}};
    for (const auto& [k, o] : objects) {
      if ((t.ns.empty() || k.rfind(t.ns + "/", 0) == 0) && Matches(t.query["labelSelector"], o)) {
        list["items"].push_back(o);
      }
    }
    return {200, list.dump(), "", {}};
  }
  json in;
  if (request.method == "POST" && t.name.empty()) {
    if (!body(&in) || !in.is_object()) return StatusReply(400, "BadRequest", "the body is not a JSON object");
    auto& md = in["metadata"];
    if (!md.is_object()) md = json::object();
    std::string name = md.value("name", "");
    if (name.empty() && md.contains("generateName")) {
      name = md.value("generateName", "") + std::to_string(++s_->uid);
      md["name"] = name;
    }
    if (name.empty()) return StatusReply(422, "Invalid", "metadata.name: Required value");
    if (objects.count(Key(t.ns, name))) {
      return StatusReply(409, "AlreadyExists", t.collection + " \"" + name + "\" already exists");
    }
    if (!t.ns.empty()) md["namespace"] = t.ns;
    md["uid"] = "uid-" + std::to_string(++s_->uid);
    md["creationTimestamp"] = Now();
    md.erase("resourceVersion");
    return {201, s_->Store(t.collection, t.ns, std::move(in), "ADDED").dump(), "", {}};
  }
  if (t.name.empty()) return StatusReply(405, "MethodNotAllowed", request.method + " on a collection");
  if (found == objects.end()) return not_found();
  const json stored = found->second;

  // The new object of a PUT or PATCH, then what the API server keeps of the old one.
  auto finish = [&](json next) -> HttpResponse {
    if (!next.is_object() || !next["metadata"].is_object()) return StatusReply(422, "Invalid", "not an object");
    if (t.sub == "status") {
      json kept = stored;
      if (next.contains("status")) kept["status"] = next["status"];
      next = std::move(kept);
    } else if (stored.contains("status")) {
      next["status"] = stored["status"];  // the status subresource is written on its own
    }
    for (const char* k : {"name", "namespace", "uid", "creationTimestamp", "deletionTimestamp"}) {
      if (stored["metadata"].contains(k)) {
        next["metadata"][k] = stored["metadata"][k];
      } else {
        next["metadata"].erase(k);
      }
    }
    if (Deleting(next) && !HasFinalizers(next)) return {200, s_->Remove(t.collection, t.ns, t.name).dump(), "", {}};
    return {200, s_->Store(t.collection, t.ns, std::move(next), "MODIFIED").dump(), "", {}};
  };

  if (request.method == "PUT") {
    if (!body(&in) || !in.is_object()) return StatusReply(400, "BadRequest", "the body is not a JSON object");
    const std::string rv = Rv(in);
    if (!rv.empty() && rv != Rv(stored)) return conflict();
    return finish(std::move(in));
  }
  if (request.method == "PATCH") {
    if (!body(&in)) return StatusReply(400, "BadRequest", "the patch is not JSON");
    json next;
    try {
      if (request.content_type == "application/json-patch+json") {
        next = stored.patch(in);
      } else {
        const std::string rv = Rv(in);
        if (!rv.empty() && rv != Rv(stored)) return conflict();
        next = stored;
        next.merge_patch(in);
      }
    } catch (const json::exception& e) {
      return StatusReply(422, "Invalid", std::string("the patch does not apply: ") + e.what());
    }
    return finish(std::move(next));
  }
  if (request.method == "DELETE") {
    if (body(&in) && in.is_object() && in.contains("preconditions")) {
      const std::string uid = in["preconditions"].value("uid", "");
      if (!uid.empty() && uid != stored["metadata"].value("uid", "")) {
        return StatusReply(409, "Conflict", "Precondition failed: UID in precondition: " + uid);
      }
    }
    if (HasFinalizers(stored)) {
      if (Deleting(stored)) return {200, stored.dump(), "", {}};
      json next = stored;
      next["metadata"]["deletionTimestamp"] = Now();
      return {200, s_->Store(t.collection, t.ns, std::move(next), "MODIFIED").dump(), "", {}};
    }
    return {200, s_->Remove(t.collection, t.ns, t.name).dump(), "", {}};
  }
  return StatusReply(405, "MethodNotAllowed", request.method + " is not supported");
}

}  // namespace graydebug::testing
