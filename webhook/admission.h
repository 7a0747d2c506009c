#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "webhook/sidecar_injector.h"

namespace graydebug::webhook {

inline constexpr std::size_t kMaxAdmissionBodyBytes = 6u << 20;  // SPEC §2: over it, 413
inline constexpr int kMaxJsonDepth = 128;

// What an admission answer was, for metrics and logs (SPEC §5 labels).
struct AdmissionOutcome {
  std::string result;  // "injected" | "skipped" | "error"
  std::string reason;  // skip reason, error class ("bad-request", "too-large", ...), or what was mutated
};

struct AdmissionReply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  AdmissionOutcome outcome;
};

// The cluster facts the pod endpoint reads, all from caches (no API call on the request path).
struct ClusterView {
  // The namespace's pod-security.kubernetes.io/enforce level, "" when unknown or unset.
  std::function<std::string(const std::string& ns)> pod_security_enforce;
  BreakerView* breakers = nullptr;
};

// The admission layer: HTTP body in, HTTP reply out, nothing thrown. Decodes an AdmissionReview
// (v1 or v1beta1; the reply echoes the request's apiVersion and uid), calls the injector and
// encodes its patch. Bad input gets the status SPEC §2 names: 413 (too large), 415 (not JSON
// content), 400 (not JSON, no request, no uid, too deep) with a one-line reason.
class AdmissionHandler {
 public:
  AdmissionHandler(const SidecarInjector& injector, ClusterView cluster);

  // POST /mutate/pods
  AdmissionReply MutatePods(std::string_view content_type, std::string_view body) const;
  // POST /mutate/debugsessions: CREATE stamps spec.requestedBy from userInfo; UPDATE keeps the old one.
  AdmissionReply MutateDebugSessions(std::string_view content_type, std::string_view body) const;

 private:
  const SidecarInjector& injector_;
  ClusterView cluster_;
};

// True when `content_type` is application/json (any case, parameters such as charset allowed).
bool IsJsonContentType(std::string_view content_type);
// Deepest nesting of arrays/objects in a JSON text (strings skipped), stopping early past `limit`.
int JsonDepth(std::string_view text, int limit);

}  // namespace graydebug::webhook
