#include "webhook/pod_review.h"

#include <simdjson.h>

#include <cstdint>

namespace graydebug::webhook {
namespace {

namespace dom = simdjson::dom;
using json = nlohmann::json;

// Which members of a value are kept: for an object, the listed keys (each with the shape of its
// value; a null shape keeps the value whole); for an array, every element in the shape `each`. A
// value of another type than its shape expects is kept whole, so the injector sees the same wrong
// type it would have seen in the whole pod.
struct Field;
struct Shape {
  const Field* fields = nullptr;
  std::size_t count = 0;
  const Shape* each = nullptr;
};
struct Field {
  std::string_view key;
  const Shape* shape;  // nullptr: the whole value
};

// What SidecarInjector reads (sidecar_injector.cpp, api::ReleaseOf, JsonPatchBuilder's checks of
// the maps and arrays it adds to). A field read there and not listed here is a bug the unit test
// "the projection decides as the whole pod" finds for the fixtures and the mutated pods.
constexpr Field kPortFields[] = {{"containerPort", nullptr}};
constexpr Shape kPort{kPortFields, 1, nullptr};
constexpr Shape kPorts{nullptr, 0, &kPort};
constexpr Field kRunAsFields[] = {{"runAsUser", nullptr}, {"runAsGroup", nullptr}, {"runAsNonRoot", nullptr}};
constexpr Shape kRunAs{kRunAsFields, 3, nullptr};
constexpr Field kContainerFields[] = {{"name", nullptr}, {"ports", &kPorts}, {"securityContext", &kRunAs}};
constexpr Shape kContainer{kContainerFields, 3, nullptr};
constexpr Shape kContainers{nullptr, 0, &kContainer};
constexpr Field kOwnerFields[] = {{"name", nullptr}, {"controller", nullptr}};
constexpr Shape kOwner{kOwnerFields, 2, nullptr};
constexpr Shape kOwners{nullptr, 0, &kOwner};
constexpr Field kMetadataFields[] = {
    {"namespace", nullptr}, {"labels", nullptr}, {"annotations", nullptr}, {"ownerReferences", &kOwners}};
constexpr Shape kMetadata{kMetadataFields, 4, nullptr};
constexpr Field kSpecFields[] = {{"containers", &kContainers},
                                 {"initContainers", &kContainers},
                                 {"hostNetwork", nullptr},
                                 {"shareProcessNamespace", nullptr},
                                 {"securityContext", &kRunAs}};
constexpr Shape kSpec{kSpecFields, 5, nullptr};
constexpr Field kPodFields[] = {{"metadata", &kMetadata}, {"spec", &kSpec}};
constexpr Shape kPod{kPodFields, 2, nullptr};

const Field* Find(const Shape& s, std::string_view key) {
  for (std::size_t i = 0; i < s.count; ++i) {
    if (s.fields[i].key == key) return &s.fields[i];
  }
  return nullptr;
}

// simdjson -> nlohmann with nlohmann's number types (a non-negative integer is unsigned).
json Whole(dom::element e) {
  switch (e.type()) {
    case dom::element_type::OBJECT: {
      json o = json::object();
      for (dom::key_value_pair kv : dom::object(e)) o[std::string(kv.key)] = Whole(kv.value);
      return o;
    }
    case dom::element_type::ARRAY: {
      json a = json::array();
      for (dom::element x : dom::array(e)) a.push_back(Whole(x));
      return a;
    }
    case dom::element_type::STRING: return std::string(e.get_string().value_unsafe());
    case dom::element_type::INT64: {
      const std::int64_t v = e.get_int64().value_unsafe();
      if (v >= 0) return static_cast<std::uint64_t>(v);
      return v;
    }
    case dom::element_type::UINT64: return e.get_uint64().value_unsafe();
    case dom::element_type::DOUBLE: return e.get_double().value_unsafe();
    case dom::element_type::BOOL: return e.get_bool().value_unsafe();
    case dom::element_type::NULL_VALUE: return nullptr;
  }
  return nullptr;
}

json Project(dom::element e, const Shape* s) {
  if (s == nullptr) return Whole(e);
  if (s->count > 0 && e.type() == dom::element_type::OBJECT) {
    json o = json::object();
    for (dom::key_value_pair kv : dom::object(e)) {
      if (const Field* f = Find(*s, kv.key)) o[std::string(kv.key)] = Project(kv.value, f->shape);  // last wins
    }
    return o;
  }
  if (s->each != nullptr && e.type() == dom::element_type::ARRAY) {
    json a = json::array();
    for (dom::element x : dom::array(e)) a.push_back(Project(x, s->each));
    return a;
  }
  return Whole(e);
}

json Project(const json& v, const Shape* s) {
  if (s == nullptr) return v;
  if (s->count > 0 && v.is_object()) {
    json o = json::object();
    for (const auto& [key, value] : v.items()) {
      if (const Field* f = Find(*s, key)) o[key] = Project(value, f->shape);
    }
    return o;
  }
  if (s->each != nullptr && v.is_array()) {
    json a = json::array();
    for (const json& x : v) a.push_back(Project(x, s->each));
    return a;
  }
  return v;
}

// The string of `e` when it is one.
std::optional<std::string_view> String(dom::element e) {
  std::string_view s;
  if (e.get_string().get(s) != simdjson::SUCCESS) return std::nullopt;
  return s;
}

// A parser per thread for the reviews of every day (pods of a few KB to a few hundred); it keeps
// the capacity of the largest body it read, so a rare large review gets a parser of its own.
constexpr std::size_t kKeptParserBytes = 256u << 10;

}  // namespace

std::optional<PodReview> DecodePodReviewFast(std::string_view body, int max_depth) {
  thread_local dom::parser kept;
  std::optional<dom::parser> own;
  dom::parser* parser = &kept;
  if (body.size() > kKeptParserBytes) parser = &own.emplace();
  if (parser->max_depth() != static_cast<std::size_t>(max_depth)) {
    if (parser->allocate(body.size(), static_cast<std::size_t>(max_depth)) != simdjson::SUCCESS) return std::nullopt;
  }
  dom::element doc;
  if (parser->parse(body.data(), body.size()).get(doc) != simdjson::SUCCESS) return std::nullopt;
  if (doc.type() != dom::element_type::OBJECT) return std::nullopt;

  PodReview r;
  bool has_request = false, has_api_version = false;
  dom::element request;
  for (dom::key_value_pair kv : dom::object(doc)) {  // last wins, as in nlohmann's parse
    if (kv.key == "request") {
      request = kv.value;
      has_request = true;
    } else if (kv.key == "apiVersion") {
      auto s = String(kv.value);
      if (!s) return std::nullopt;
      r.api_version = std::string(*s);
      has_api_version = true;
    }
  }
  if (has_api_version && r.api_version != "admission.k8s.io/v1" && r.api_version != "admission.k8s.io/v1beta1") {
    return std::nullopt;
  }
  if (!has_request || request.type() != dom::element_type::OBJECT) return std::nullopt;
  bool has_uid = false;
  for (dom::key_value_pair kv : dom::object(request)) {
    const std::string_view key = kv.key;
    if (key == "uid") {
      auto s = String(kv.value);
      has_uid = s && !s->empty();
      if (has_uid) r.uid = std::string(*s);
    } else if (key == "kind") {
      r.kind.clear();
      if (kv.value.type() == dom::element_type::OBJECT) {
        for (dom::key_value_pair k : dom::object(kv.value)) {
          if (k.key == "kind") r.kind = std::string(String(k.value).value_or(""));
        }
      }
    } else if (key == "subResource") {
      r.sub_resource = std::string(String(kv.value).value_or(""));
    } else if (key == "operation") {
      r.operation = std::string(String(kv.value).value_or(""));
    } else if (key == "namespace") {
      r.namespace_name = std::string(String(kv.value).value_or(""));
    } else if (key == "dryRun") {
      bool b = false;
      r.dry_run = kv.value.get_bool().get(b) == simdjson::SUCCESS ? std::optional<bool>(b) : std::nullopt;
    } else if (key == "object") {
      r.object = Project(kv.value, &kPod);
    }
  }
  if (!has_uid) return std::nullopt;
  return r;
}

json ProjectPod(const json& pod) {
  return Project(pod, &kPod);
}

}  // namespace graydebug::webhook
