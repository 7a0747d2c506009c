#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace graydebug::webhook {

// What POST /mutate/pods reads of an AdmissionReview: the request's header fields and the part of
// the pod the injector looks at. Both decoders below fill it; the admission logic runs on it alone.
struct PodReview {
  std::string api_version;  // "" when the review has none (the reply then says admission.k8s.io/v1)
  std::string uid;
  std::string kind;          // request.kind.kind
  std::string sub_resource;  // request.subResource
  std::string operation;
  std::string namespace_name;
  std::optional<bool> dry_run;  // request.dryRun when it is a boolean
  nlohmann::json object;        // request.object (null when absent)
};

// The fast decoder (simdjson's DOM, no nlohmann tree of the whole review): request.object holds only
// what the injector reads (metadata's namespace, labels, annotations and owners; the spec's
// containers with their names, ports and run-as ids, hostNetwork, shareProcessNamespace and the
// pod's securityContext), with the same values and number types nlohmann's parse gives. nullopt
// for anything it does not take as a well-formed review: JSON simdjson refuses or nests deeper than
// `max_depth`, a review without an object request or a uid, an unknown apiVersion. The caller then
// decodes the body the slow way, which names the problem, so every refusal keeps one wording.
std::optional<PodReview> DecodePodReviewFast(std::string_view body, int max_depth);

// The projection DecodePodReviewFast makes of request.object, from an nlohmann value (for tests).
nlohmann::json ProjectPod(const nlohmann::json& pod);

}  // namespace graydebug::webhook
