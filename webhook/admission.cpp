#include "webhook/admission.h"

#include <algorithm>
#include <cctype>
#include <optional>

#include "graydebug/api/debug_session.h"
#include "graydebug/base64.h"
#include "graydebug/json_patch.h"
#include "webhook/pod_review.h"

namespace graydebug::webhook {
namespace {

using json = nlohmann::json;

AdmissionReply Error(int status, std::string reason_class, const std::string& message) {
  AdmissionReply r;
  r.status = status;
  r.body = json{{"error", message}}.dump(-1, ' ', false, json::error_handler_t::replace);
  r.outcome = {"error", std::move(reason_class)};
  return r;
}

// A decoded request, or the reply that refuses it.
struct Decoded {
  json review;
  std::optional<AdmissionReply> refusal;
};

Decoded Decode(std::string_view content_type, std::string_view body) {
  Decoded d;
  if (body.size() > kMaxAdmissionBodyBytes) {
    d.refusal = Error(413, "too-large", "request body is larger than 6 MiB");
    return d;
  }
  if (!IsJsonContentType(content_type)) {
    d.refusal =
        Error(415, "unsupported-media-type",
              "Content-Type must be application/json, got \"" + std::string(content_type.substr(0, 100)) + "\"");
    return d;
  }
  if (JsonDepth(body, kMaxJsonDepth) > kMaxJsonDepth) {
    d.refusal = Error(400, "bad-request", "JSON nesting is deeper than " + std::to_string(kMaxJsonDepth));
    return d;
  }
  d.review = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (d.review.is_discarded()) {
    // Parse again only to get the position for the message (bad requests are rare).
    std::string why = "body is not JSON";
    try {
      json ignored = json::parse(body);
      (void)ignored;
    } catch (const json::parse_error& e) {
      why += ": " + std::string(e.what());
    }
    d.refusal = Error(400, "bad-request", why);
    return d;
  }
  if (!d.review.is_object()) {
    d.refusal = Error(400, "bad-request", "body is not an AdmissionReview object");
    return d;
  }
  auto req = d.review.find("request");
  if (req == d.review.end() || !req->is_object()) {
    d.refusal = Error(400, "bad-request", "AdmissionReview has no request");
    return d;
  }
  auto uid = req->find("uid");
  if (uid == req->end() || !uid->is_string() || uid->get_ref<const std::string&>().empty()) {
    d.refusal = Error(400, "bad-request", "AdmissionReview request has no uid");
    return d;
  }
  auto api = d.review.find("apiVersion");
  if (api != d.review.end() &&
      !(api->is_string() && (*api == "admission.k8s.io/v1" || *api == "admission.k8s.io/v1beta1"))) {
    d.refusal =
        Error(400, "bad-request", "unsupported AdmissionReview apiVersion (want admission.k8s.io/v1 or v1beta1)");
    return d;
  }
  return d;
}

std::string StringOr(const json& obj, const char* key, std::string fallback = "") {
  if (!obj.is_object()) return fallback;
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : fallback;
}

// The reply, written as text (a JSON patch of a few KB in base64 needs no escaping), in the member
// order nlohmann's dump of the same object gives.
AdmissionReply Respond(const std::string& api_version, const std::string& uid, std::string_view patch,
                       const std::string& audit, AdmissionOutcome outcome) {
  AdmissionReply r;
  r.body.reserve(160 + audit.size() + uid.size() + patch.size() / 3 * 4);
  r.body += "{\"apiVersion\":";
  r.body += JsonString(api_version.empty() ? "admission.k8s.io/v1" : api_version);
  r.body += ",\"kind\":\"AdmissionReview\",\"response\":{\"allowed\":true";
  if (!audit.empty()) {
    r.body += ",\"auditAnnotations\":{\"injection\":";
    r.body += JsonString(audit);
    r.body += '}';
  }
  if (!patch.empty()) {
    r.body += ",\"patch\":\"";
    AppendBase64(patch, &r.body);
    r.body += "\",\"patchType\":\"JSONPatch\"";
  }
  r.body += ",\"uid\":";
  r.body += JsonString(uid);
  r.body += "}}";
  r.outcome = std::move(outcome);
  return r;
}

// The pod review, decoded by simdjson when it takes it, else by nlohmann (which names the problem).
struct DecodedPods {
  PodReview review;
  std::optional<AdmissionReply> refusal;
};

DecodedPods DecodePods(std::string_view content_type, std::string_view body) {
  DecodedPods d;
  if (body.size() <= kMaxAdmissionBodyBytes && IsJsonContentType(content_type)) {
    if (auto fast = DecodePodReviewFast(body, kMaxJsonDepth)) {
      d.review = std::move(*fast);
      return d;
    }
  }
  Decoded slow = Decode(content_type, body);
  if (slow.refusal) {
    d.refusal = std::move(slow.refusal);
    return d;
  }
  json& req = slow.review["request"];
  PodReview& r = d.review;
  r.api_version = StringOr(slow.review, "apiVersion");
  r.uid = StringOr(req, "uid");
  r.kind = req.contains("kind") ? StringOr(req["kind"], "kind") : "";
  r.sub_resource = StringOr(req, "subResource");
  r.operation = StringOr(req, "operation");
  r.namespace_name = StringOr(req, "namespace");
  if (auto dry = req.find("dryRun"); dry != req.end() && dry->is_boolean()) r.dry_run = dry->get<bool>();
  if (auto obj = req.find("object"); obj != req.end()) r.object = std::move(*obj);
  return d;
}

}  // namespace

bool IsJsonContentType(std::string_view ct) {
  std::string_view media = ct.substr(0, ct.find(';'));
  while (!media.empty() && std::isspace(static_cast<unsigned char>(media.back()))) media.remove_suffix(1);
  while (!media.empty() && std::isspace(static_cast<unsigned char>(media.front()))) media.remove_prefix(1);
  static constexpr std::string_view kJson = "application/json";
  if (media.size() != kJson.size()) return false;
  for (std::size_t i = 0; i < kJson.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(media[i])) != kJson[i]) return false;
  }
  return true;
}

int JsonDepth(std::string_view text, int limit) {
  int depth = 0, max_depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > max_depth) {
        max_depth = depth;
        if (max_depth > limit) return max_depth;
      }
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return max_depth;
}

AdmissionHandler::AdmissionHandler(const SidecarInjector& injector, ClusterView cluster)
    : injector_(injector), cluster_(std::move(cluster)) {}

AdmissionReply AdmissionHandler::MutatePods(std::string_view content_type, std::string_view body) const {
  try {
    DecodedPods d = DecodePods(content_type, body);
    if (d.refusal) return *d.refusal;
    const PodReview& req = d.review;
    // Only pods themselves: subresources (ephemeralcontainers, binding, status) pass untouched.
    if (req.kind != "Pod" || !req.sub_resource.empty()) {
      return Respond(req.api_version, req.uid, "", "", {"skipped", "not-pod"});
    }
    InjectionContext ctx;
    ctx.operation = req.operation;
    ctx.namespace_name = req.namespace_name;
    if (cluster_.pod_security_enforce && !ctx.namespace_name.empty()) {
      ctx.pod_security_enforce = cluster_.pod_security_enforce(ctx.namespace_name);
    }
    ctx.breakers = cluster_.breakers;
    ctx.dry_run = req.dry_run.value_or(false);
    InjectionResult res = injector_.Inject(req.object, ctx);
    if (!res.inject) return Respond(req.api_version, req.uid, "", "skipped: " + res.reason, {"skipped", res.reason});
    return Respond(req.api_version, req.uid, res.patch, res.half_open_trial ? "injected: half-open trial" : "injected",
                   {"injected", "pod"});
  } catch (const std::exception& e) {
    return Error(500, "internal", std::string("internal error: ") + e.what());
  }
}

AdmissionReply AdmissionHandler::MutateDebugSessions(std::string_view content_type, std::string_view body) const {
  try {
    Decoded d = Decode(content_type, body);
    if (d.refusal) return *d.refusal;
    const json& req = d.review["request"];
    const std::string api_version = StringOr(d.review, "apiVersion"), uid = StringOr(req, "uid");
    std::string kind = req.contains("kind") ? StringOr(req["kind"], "kind") : "";
    if (kind != api::kSessionKind) return Respond(api_version, uid, "", "", {"skipped", "not-debugsession"});
    std::string op = StringOr(req, "operation");
    auto obj = req.find("object");
    if (obj == req.end() || !obj->is_object()) return Respond(api_version, uid, "", "", {"skipped", "no-object"});
    JsonPatchBuilder b;
    bool stamped = false, finalizer_added = false;  // the audit annotation says what the patch does
    const json* spec = JsonAt(*obj, {"spec"});
    const json* current = JsonAt(*obj, {"spec", "requestedBy"});
    if (op == "CREATE") {
      json by = {{"username", ""}, {"groups", json::array()}};
      if (auto ui = req.find("userInfo"); ui != req.end() && ui->is_object()) {
        by["username"] = StringOr(*ui, "username");
        if (auto g = ui->find("groups"); g != ui->end() && g->is_array()) {
          for (const json& group : *g) {
            if (group.is_string()) by["groups"].push_back(group);
          }
        }
      }
      if (spec == nullptr || !spec->is_object()) {
        b.Add({"spec"}, json{{"requestedBy", std::move(by)}});
        stamped = true;
      } else if (current == nullptr || *current != by) {
        b.Add({"spec", "requestedBy"}, std::move(by));
        stamped = true;
      }
      // The controller's finalizer comes with the session (docs/controller.md): its first reconcile
      // then has no write of its own to make before the status. Only on CREATE: removing it later
      // is the operator's way out when the controller is gone (docs/operations.md).
      if (const json* md = JsonAt(*obj, {"metadata"}); md != nullptr && md->is_object()) {
        const json* f = JsonAt(*md, {"finalizers"});
        if (f == nullptr || f->is_null()) {
          b.Add({"metadata", "finalizers"}, json::array({api::kSessionFinalizer}));
          finalizer_added = true;
        } else if (f->is_array() && std::find(f->begin(), f->end(), api::kSessionFinalizer) == f->end()) {
          b.Add({"metadata", "finalizers", "-"}, api::kSessionFinalizer);
          finalizer_added = true;
        }
      }
    } else if (op == "UPDATE") {
      auto old = req.find("oldObject");
      const json* before = old == req.end() ? nullptr : JsonAt(*old, {"spec", "requestedBy"});
      if (before != nullptr && spec != nullptr && spec->is_object() && (current == nullptr || *current != *before)) {
        b.Add({"spec", "requestedBy"}, *before);
        stamped = true;
      } else if (before == nullptr && current != nullptr) {
        b.Remove({"spec", "requestedBy"});
        stamped = true;
      }
    } else {
      return Respond(api_version, uid, "", "", {"skipped", "not-create"});
    }
    if (b.empty()) return Respond(api_version, uid, "", "", {"skipped", "unchanged"});
    const char* audit = !finalizer_added ? "requestedBy stamped"
                        : stamped        ? "requestedBy stamped, finalizer added"
                                         : "finalizer added";
    return Respond(api_version, uid, b.Text(), audit, {"injected", "debugsession"});
  } catch (const std::exception& e) {
    return Error(500, "internal", std::string("internal error: ") + e.what());
  }
}

}  // namespace graydebug::webhook
