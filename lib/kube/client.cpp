#include "graydebug/kube/client.h"

#include <sys/stat.h>

#include <algorithm>

#include "graydebug/file_read.h"
#include "graydebug/log.h"
#include "graydebug/telemetry.h"
#include "packed_page.h"

namespace graydebug::kube {

using nlohmann::json;

std::string QueryEscape(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

json::parser_callback_t DropManagedFields(int object_depth) {
  return [object_depth, in_metadata = false](int depth, json::parse_event_t event, json& parsed) mutable {
    if (event != json::parse_event_t::key || !parsed.is_string()) return true;
    const std::string& key = parsed.get_ref<const std::string&>();
    if (depth == object_depth) in_metadata = key == "metadata";
    return !(depth == object_depth + 1 && in_metadata && key == "managedFields");
  };
}

Result<WatchEvent> ParseWatchEvent(const std::string& line) {
  json j = json::parse(line, DropManagedFields(2), false);
  ApiError err{ErrorKind::kDecode, 0, "", ""};
  if (!j.is_object() || !j["type"].is_string() || !j["object"].is_object()) {
    err.message = "watch event is not {type, object}: " + line.substr(0, 120);
    return err;
  }
  WatchEvent ev;
  const std::string& type = j["type"].get_ref<const std::string&>();
  if (type == "ADDED") {
    ev.type = WatchEvent::Type::kAdded;
  } else if (type == "MODIFIED") {
    ev.type = WatchEvent::Type::kModified;
  } else if (type == "DELETED") {
    ev.type = WatchEvent::Type::kDeleted;
  } else if (type == "BOOKMARK") {
    ev.type = WatchEvent::Type::kBookmark;
  } else if (type == "ERROR") {
    ev.type = WatchEvent::Type::kError;
  } else {
    err.message = "unknown watch event type \"" + type.substr(0, 40) + "\"";
    return err;
  }
  ev.object = std::move(j["object"]);
  return ev;
}

bool Watch::Next(WatchEvent* event, ApiError* error) {
  std::string line;
  *error = ApiError{};
  if (!stream_->ReadLine(&line, error)) return false;
  Result<WatchEvent> ev = ParseWatchEvent(line);
  if (!ev.ok()) {
    *error = ev.error();
    return false;
  }
  *event = std::move(ev).value();
  return true;
}

Client::Client(RestConfig config, std::unique_ptr<HttpTransport> transport, ClientOptions options)
    : config_(std::move(config)),
      transport_(std::move(transport)),
      options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : &RealClock::Get()),
      limiter_(options_.qps, options_.burst, *clock_) {}

Result<std::shared_ptr<Client>> Client::Create(const RestConfig& config, ClientOptions options) {
  std::string error;
  auto transport = NewHttpTransport(config, options.watch_idle_timeout, &error);
  if (!transport) return ApiError{ErrorKind::kConfig, 0, "", error};
  return std::make_shared<Client>(config, std::move(transport), std::move(options));
}

std::string Client::Path(const Resource& r, const std::string& ns, const std::string& name,
                         const std::string& subresource) {
  std::string p = r.group.empty() ? "/api/" + r.version : "/apis/" + r.group + "/" + r.version;
  if (r.namespaced && !ns.empty()) p += "/namespaces/" + QueryEscape(ns);
  p += "/" + r.resource;
  if (!name.empty()) p += "/" + QueryEscape(name);
  if (!subresource.empty()) p += "/" + subresource;
  return p;
}

namespace {

std::string Query(const ListOptions& o, bool watch) {
  std::string q;
  auto add = [&q](const std::string& k, const std::string& v) {
    q += (q.empty() ? "?" : "&") + k + "=" + QueryEscape(v);
  };
  if (!o.label_selector.empty()) add("labelSelector", o.label_selector);
  if (!o.field_selector.empty()) add("fieldSelector", o.field_selector);
  if (o.limit > 0 && !watch) add("limit", std::to_string(o.limit));
  if (!o.continue_token.empty() && !watch) add("continue", o.continue_token);
  if (!o.resource_version.empty()) add("resourceVersion", o.resource_version);
  if (watch) {
    add("watch", "true");
    if (o.allow_bookmarks) add("allowWatchBookmarks", "true");
    if (o.timeout_seconds > 0) add("timeoutSeconds", std::to_string(o.timeout_seconds));
  }
  return q;
}

std::string ObjectName(const json& object) {
  const json& md = object.contains("metadata") ? object["metadata"] : json();
  return md.is_object() && md.contains("name") && md["name"].is_string() ? md["name"].get<std::string>() : "";
}

}  // namespace

void Client::Authorize(HttpRequest& request) {
  std::string token = config_.token;
  if (!config_.token_file.empty()) {
    // Re-read the token whenever the file changes: the kubelet rotates projected tokens.
    std::lock_guard lock(token_mu_);
    struct stat st {};
    int64_t mtime = -1;
    if (::stat(config_.token_file.c_str(), &st) == 0) {
      mtime = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec + st.st_size;
    }
    if (mtime != token_mtime_ns_) {
      FileReadResult f = ReadFileLimited(config_.token_file, 64 * 1024);
      if (f.ok) {
        while (!f.contents.empty() && (f.contents.back() == '\n' || f.contents.back() == ' ')) f.contents.pop_back();
        cached_token_ = std::move(f.contents);
        token_mtime_ns_ = mtime;
      } else {
        log::Warn("cannot read the token file; using the last token", {{"error", f.error}});
      }
    }
    token = cached_token_;
  }
  if (!token.empty()) request.headers.emplace_back("Authorization", "Bearer " + token);
}

Result<json> Client::Send(HttpRequest request, bool idempotent) {
  return Send(std::move(request), idempotent, nullptr);
}

Result<json> Client::Send(HttpRequest request, bool idempotent, const json::parser_callback_t& filter) {
  int status = 0;
  Result<std::string> raw = SendRaw(std::move(request), idempotent, &status);
  if (!raw.ok()) return raw.error();
  json body = json::parse(raw.value(), filter, false);
  if (body.is_discarded()) {
    return ApiError{ErrorKind::kDecode, status, "", "response is not JSON: " + raw.value().substr(0, 120)};
  }
  return body;
}

namespace {

constexpr std::size_t kMaxListBodyBytes = 512u << 20;  // as the transport's limit for a whole body

// A body already read whole, handed over as one piece (HttpTransport::Fetch's default).
class WholeBody final : public LineStream {
 public:
  explicit WholeBody(std::string body) : body_(std::move(body)) {}
  bool ReadLine(std::string*, ApiError* error) override {
    *error = ApiError{ErrorKind::kOther, 0, "", "a whole body is not read by lines"};
    return false;
  }
  void Cancel() override {}
  bool ReadSome(std::string* out, ApiError*) override {
    if (given_) return false;
    given_ = true;
    out->append(body_);
    body_ = std::string();
    return true;
  }

 private:
  std::string body_;
  bool given_ = false;
};

}  // namespace

StreamResponse HttpTransport::Fetch(const HttpRequest& request) {
  StreamResponse out;
  out.head = Do(request);
  if (out.head.status >= 200 && out.head.status <= 299) {
    out.stream = std::make_unique<WholeBody>(std::move(out.head.body));
    out.head.body.clear();
  }
  return out;
}

bool Client::BodyReader::Next(std::string* out) {
  if (error_.kind != ErrorKind::kNone) return false;
  const std::size_t before = out->size();
  if (!stream_->ReadSome(out, &error_)) return false;
  read_ += out->size() - before;
  if (read_ > kMaxListBodyBytes) {
    error_ =
        ApiError{ErrorKind::kDecode, 0, "", "list page larger than " + std::to_string(kMaxListBodyBytes) + " bytes"};
    return false;
  }
  return true;
}

bool Client::BodyReader::Rest(std::string* out) {
  while (Next(out)) {
  }
  return error_.kind == ErrorKind::kNone;
}

Result<std::string> Client::SendRaw(HttpRequest request, bool idempotent, int* status,
                                    std::unique_ptr<LineStream>* body) {
  if (std::none_of(request.headers.begin(), request.headers.end(), [](const auto& h) { return h.first == "Accept"; })) {
    request.headers.emplace_back("Accept", "application/json");
  }
  request.headers.emplace_back("User-Agent", options_.user_agent);
  if (request.timeout.count() == 0 || request.timeout == std::chrono::milliseconds(30000)) {
    request.timeout = options_.request_timeout;
  }
  Backoff backoff(options_.retry_base, options_.retry_cap);
  for (int attempt = 0;; ++attempt) {
    if (auto wait = limiter_.Reserve(); wait.count() > 0) clock_->Sleep(wait);
    HttpRequest r = request;
    Authorize(r);
    auto started = clock_->Now();
    HttpResponse resp;
    std::unique_ptr<LineStream> stream;
    if (body != nullptr) {
      StreamResponse sr = transport_->Fetch(r);
      resp = std::move(sr.head);
      stream = std::move(sr.stream);
    } else {
      resp = transport_->Do(r);
    }
    telemetry::Current().KubeRequest(r.method, resp.status,
                                     std::chrono::duration<double>(clock_->Now() - started).count());
    ApiError err;
    if (resp.status >= 200 && resp.status <= 299) {
      if (status != nullptr) *status = resp.status;
      if (body != nullptr) *body = std::move(stream);
      return std::move(resp.body);
    }
    if (resp.status != 0 && IsProtobuf(resp.body)) {
      // A Status in protobuf, for a request that asked for it: read as the JSON it stands for.
      std::string why, text = ProtobufToJson(resp.body, &why);
      resp.body = text.empty() ? "a Status in protobuf graydebug cannot read: " + why : std::move(text);
    }
    err = resp.status == 0 ? resp.error : ErrorFromResponse(resp.status, resp.body, resp.retry_after);
    // A POST is retried only when the server surely did not act on it: 429, 503, or no connection.
    bool retriable = err.Retriable();
    if (!idempotent) {
      retriable = err.kind == ErrorKind::kTooManyRequests || err.http_status == 503 || err.not_sent;
    }
    if (!retriable || attempt >= options_.max_retries) return err;
    auto delay = err.retry_after.count() > 0 ? std::chrono::duration_cast<std::chrono::milliseconds>(err.retry_after)
                                             : backoff.Next();
    log::Debug("retrying Kubernetes API request", {{"method", r.method},
                                                   {"path", r.path},
                                                   {"error", err.ToString()},
                                                   {"delay_ms", std::to_string(delay.count())}});
    telemetry::Current().KubeRetry(r.method);
    clock_->Sleep(delay);
  }
}

Result<json> Client::Get(const Resource& r, const std::string& ns, const std::string& name) {
  return Send({"GET", Path(r, ns, name), "", "", {}, {}}, true);
}

Result<json> Client::List(const Resource& r, const std::string& ns, const ListOptions& options) {
  return Send({"GET", Path(r, ns) + Query(options, false), "", "", {}, {}}, true);
}

Client::PageInfo Client::EachItem(const std::string& body, const std::function<void(json& item)>& each) {
  PageInfo info;
  json page = json::parse(body, DropManagedFields(3), false);  // items[i] are at depth 3
  if (!page.is_object()) {
    info.error = "list page is not a JSON object: " + body.substr(0, 120);
    return info;
  }
  if (auto items = page.find("items"); items != page.end() && items->is_array()) {
    for (json& item : *items) each(item);
  }
  if (auto md = page.find("metadata"); md != page.end() && md->is_object()) {
    if (auto rv = md->find("resourceVersion"); rv != md->end() && rv->is_string()) info.resource_version = *rv;
    if (auto next = md->find("continue"); next != md->end() && next->is_string()) info.continue_token = *next;
  }
  return info;
}

Result<std::string> Client::ListEach(const Resource& r, const std::string& ns, ListOptions options,
                                     const std::function<void(json& item)>& each) {
  return ListEachRaw(r, ns, std::move(options), [&](BodyReader& body) {
    std::string text;
    body.Rest(&text);
    return EachItem(text, each);
  });
}

Result<std::string> Client::ListEachRaw(const Resource& r, const std::string& ns, ListOptions options,
                                        const std::function<PageInfo(BodyReader& body)>& page) {
  std::string rv;
  while (true) {
    int status = 0;
    HttpRequest request{"GET", Path(r, ns) + Query(options, false), "", "", {}, {}};
    if (options.prefer_protobuf) {
      request.headers.emplace_back("Accept", "application/vnd.kubernetes.protobuf, application/json");
    }
    std::unique_ptr<LineStream> stream;
    Result<std::string> res = SendRaw(std::move(request), true, &status, options.prefer_protobuf ? &stream : nullptr);
    if (!res.ok()) return res.error();
    // A JSON list read whole (kept connections are reused for it) is handed over as one piece.
    BodyReader body(stream ? std::move(stream) : std::make_unique<WholeBody>(std::move(res).value()));
    PageInfo info = page(body);
    if (body.error().kind != ErrorKind::kNone) return body.error();
    if (!info.error.empty()) return ApiError{ErrorKind::kDecode, status, "", info.error};
    if (!info.resource_version.empty()) rv = info.resource_version;
    if (info.continue_token.empty()) return rv;
    options.continue_token = info.continue_token;
    options.resource_version.clear();  // the continue token pins the version
  }
}

Result<json> Client::ListAll(const Resource& r, const std::string& ns, ListOptions options) {
  for (int attempt = 0;; ++attempt) {
    json items = json::array();
    Result<std::string> rv = ListEach(r, ns, options, [&](json& item) { items.push_back(std::move(item)); });
    if (rv.ok()) return json{{"items", std::move(items)}, {"metadata", {{"resourceVersion", rv.value()}}}};
    // A continue token that expired mid-list: start over, once.
    if (rv.error().kind != ErrorKind::kGone || attempt > 0 || items.empty()) return rv.error();
  }
}

Result<json> Client::Create(const Resource& r, const std::string& ns, const json& object) {
  return Send({"POST", Path(r, ns), object.dump(), "application/json", {}, {}}, false);
}

Result<json> Client::Update(const Resource& r, const std::string& ns, const json& object) {
  return Send({"PUT", Path(r, ns, ObjectName(object)), object.dump(), "application/json", {}, {}}, true);
}

Result<json> Client::UpdateStatus(const Resource& r, const std::string& ns, const json& object) {
  return Send({"PUT", Path(r, ns, ObjectName(object), "status"), object.dump(), "application/json", {}, {}}, true);
}

Result<json> Client::Patch(const Resource& r, const std::string& ns, const std::string& name, PatchType type,
                           const std::string& patch, const std::string& subresource) {
  const char* ct = type == PatchType::kMerge  ? "application/merge-patch+json"
                   : type == PatchType::kJson ? "application/json-patch+json"
                                              : "application/strategic-merge-patch+json";
  return Send({"PATCH", Path(r, ns, name, subresource), patch, ct, {}, {}}, true);
}

Result<json> Client::Delete(const Resource& r, const std::string& ns, const std::string& name, int64_t grace_seconds,
                            const std::string& precondition_uid) {
  json opts = {{"apiVersion", "v1"}, {"kind", "DeleteOptions"}};
  if (grace_seconds >= 0) opts["gracePeriodSeconds"] = grace_seconds;
  if (!precondition_uid.empty()) opts["preconditions"] = {{"uid", precondition_uid}};
  return Send({"DELETE", Path(r, ns, name), opts.dump(), "application/json", {}, {}}, true);
}

Result<std::unique_ptr<Watch>> Client::StartWatch(const Resource& r, const std::string& ns,
                                                  const ListOptions& options) {
  if (auto wait = limiter_.Reserve(); wait.count() > 0) clock_->Sleep(wait);
  HttpRequest req{"GET", Path(r, ns) + Query(options, true), "", "", {}, options_.request_timeout};
  req.headers.emplace_back("Accept", "application/json");
  req.headers.emplace_back("User-Agent", options_.user_agent);
  Authorize(req);
  auto started = clock_->Now();
  StreamResponse resp = transport_->Stream(req);
  telemetry::Current().KubeRequest("WATCH", resp.head.status,
                                   std::chrono::duration<double>(clock_->Now() - started).count());
  if (resp.head.status == 0) return resp.head.error;
  if (resp.head.status < 200 || resp.head.status > 299) {
    return ErrorFromResponse(resp.head.status, resp.head.body, resp.head.retry_after);
  }
  return std::make_unique<Watch>(std::move(resp.stream));
}

}  // namespace graydebug::kube
