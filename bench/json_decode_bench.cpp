// Issue #18: what JSON decoding costs on graydebug's two hot paths, decoder against decoder, in
// one run on the same bytes. Prints one JSON line per (path, decoder): ns/op (median of --runs),
// heap allocations per op (operator new is counted) and a checksum of what was read, which must be
// the same for every decoder of a path (the run fails otherwise).
//
//   admission: a ~2 KB AdmissionReview of a gray pod; read what the admission and the injector's
//              selection need: apiVersion, request uid, kind, subResource, operation, namespace,
//              dryRun, and the pod's labels and annotations.
//   informer:  one list page of 500 injected pods (~1.3 KB each); read what the controller's pod
//              cache keeps: name, namespace, resourceVersion, uid, labels, the injection
//              annotation, phase, podIP, and the container names.
//
// Decoders: nlohmann_json's DOM (today's code), nlohmann_json with a parser callback that drops
// what is not read (no DOM for it, but every byte still goes through its lexer), simdjson's DOM
// (a tape of the whole document) and simdjson On-Demand (reads only what is asked, skips the rest
// without building anything). simdjson gets a padded copy of the body, and the copy is counted.
#include <simdjson.h>
#include "alloc_count.h"
#include "gray_review.h"  // replaces operator new: counts every allocation of the binary

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <new>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

using graydebug::bench::Measure;
using json = nlohmann::json;
namespace od = simdjson::ondemand;

// What a decoder read, folded into one number: the scalars in a fixed order, and the key/value
// pairs of maps order-free (nlohmann iterates objects sorted, simdjson in document order).
struct Sum {
  std::uint64_t h = 1469598103934665603ull;
  std::uint64_t pairs = 0;
  static std::uint64_t Hash(std::string_view s, std::uint64_t h = 1469598103934665603ull) {
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    return (h ^ 0xff) * 1099511628211ull;
  }
  void Add(std::string_view s) { h = Hash(s, h); }
  void Pair(std::string_view k, std::string_view v) { pairs += Hash(v, Hash(k)); }
  std::uint64_t Total() const { return h ^ (pairs * 31); }
};

json PageOf(const json& pod, int count) {
  json page = {{"apiVersion", "v1"}, {"kind", "PodList"}, {"metadata", {{"resourceVersion", "123456"}}}};
  json items = json::array();
  for (int i = 0; i < count; ++i) {
    json p = pod;
    p["metadata"]["name"] = "gray-" + std::to_string(i);
    p["metadata"]["namespace"] = "shop";
    p["metadata"]["uid"] = "0b6c1a2e-0000-4000-8000-" + std::to_string(100000000000 + i);
    p["metadata"]["resourceVersion"] = std::to_string(1000 + i);
    p["metadata"]["labels"]["graydebug.io/injected"] = "true";
    p["metadata"]["annotations"]["graydebug.io/status"] =
        R"({"injected":true,"dlvPort":2345,"agentPort":9102,"target":"app"})";
    p["status"] = {{"phase", "Running"}, {"podIP", "10.0.0." + std::to_string(i % 250)}};
    items.push_back(std::move(p));
  }
  page["items"] = std::move(items);
  return page;
}

// ---- admission ----

void AdmissionFromDom(const json& review, Sum& s) {
  s.Add(review.value("apiVersion", ""));
  const json& req = review.at("request");
  s.Add(req.value("uid", ""));
  s.Add(req.at("kind").value("kind", ""));
  s.Add(req.value("subResource", ""));
  s.Add(req.value("operation", ""));
  s.Add(req.value("namespace", ""));
  s.Add(req.value("dryRun", false) ? "dry" : "wet");
  const json& meta = req.at("object").at("metadata");
  for (const char* which : {"labels", "annotations"}) {
    if (auto m = meta.find(which); m != meta.end()) {
      for (auto it = m->begin(); it != m->end(); ++it) s.Pair(it.key(), it->get_ref<const std::string&>());
    }
  }
}

void AdmissionNlohmannDom(const std::string& body, Sum& s) {
  AdmissionFromDom(json::parse(body), s);
}

// Keeps only the members on the paths read; everything else is dropped as it is parsed.
void AdmissionNlohmannFiltered(const std::string& body, Sum& s) {
  std::vector<std::string> path;
  auto keep = [&path](int depth, json::parse_event_t event, json& parsed) {
    if (event != json::parse_event_t::key) return true;
    path.resize(static_cast<std::size_t>(depth));
    path[static_cast<std::size_t>(depth) - 1] = parsed.get<std::string>();
    const std::string& k = path.back();
    switch (depth) {
      case 1: return k == "apiVersion" || k == "request";
      case 2:
        return k == "uid" || k == "kind" || k == "subResource" || k == "operation" || k == "namespace" ||
               k == "dryRun" || k == "object";
      case 3:
        if (path[1] == "kind") return k == "kind";
        return path[1] == "object" && k == "metadata";
      case 4: return path[1] == "object" && (k == "labels" || k == "annotations");
      default: return true;  // inside labels or annotations
    }
  };
  AdmissionFromDom(json::parse(body, keep), s);
}

std::string_view DomStr(simdjson::dom::element obj, const char* key) {
  std::string_view v;
  return obj[key].get(v) == simdjson::SUCCESS ? v : std::string_view();
}

void AdmissionSimdjsonDom(simdjson::dom::parser& parser, const std::string& body, Sum& s) {
  simdjson::padded_string padded(body);
  simdjson::dom::element review = parser.parse(padded);
  s.Add(DomStr(review, "apiVersion"));
  simdjson::dom::element req = review["request"];
  s.Add(DomStr(req, "uid"));
  s.Add(DomStr(req["kind"], "kind"));
  s.Add(DomStr(req, "subResource"));
  s.Add(DomStr(req, "operation"));
  s.Add(DomStr(req, "namespace"));
  bool dry = false;
  if (req["dryRun"].get(dry) != simdjson::SUCCESS) dry = false;
  s.Add(dry ? "dry" : "wet");
  simdjson::dom::element meta = req["object"]["metadata"];
  for (const char* which : {"labels", "annotations"}) {
    simdjson::dom::object m;
    if (meta[which].get(m) != simdjson::SUCCESS) continue;
    for (auto field : m) s.Pair(field.key, std::string_view(field.value));
  }
}

// One pass in document order; unread members are skipped without being decoded. The strings stay
// valid in the parser's buffer for the whole document.
void AdmissionOnDemand(od::parser& parser, const std::string& body, Sum& s) {
  simdjson::padded_string padded(body);
  od::document review = parser.iterate(padded);
  std::string_view api, uid, kind, sub, op, ns;
  bool dry = false;
  for (auto field : review.get_object()) {
    std::string_view key = field.unescaped_key();
    if (key == "apiVersion") {
      api = field.value().get_string();
    } else if (key == "request") {
      for (auto rf : field.value().get_object()) {
        std::string_view k = rf.unescaped_key();
        if (k == "uid") {
          uid = rf.value().get_string();
        } else if (k == "kind") {
          std::string_view v;
          if (rf.value().find_field_unordered("kind").get(v) == simdjson::SUCCESS) kind = v;
        } else if (k == "subResource") {
          sub = rf.value().get_string();
        } else if (k == "operation") {
          op = rf.value().get_string();
        } else if (k == "namespace") {
          ns = rf.value().get_string();
        } else if (k == "dryRun") {
          dry = rf.value().get_bool();
        } else if (k == "object") {
          od::object meta;
          if (rf.value().find_field_unordered("metadata").get(meta) != simdjson::SUCCESS) continue;
          for (auto mf : meta) {
            std::string_view mk = mf.unescaped_key();
            if (mk != "labels" && mk != "annotations") continue;
            for (auto kv : mf.value().get_object()) {
              std::string_view k2 = kv.unescaped_key();
              s.Pair(k2, kv.value().get_string());
            }
          }
        }
      }
    }
  }
  for (std::string_view v : {api, uid, kind, sub, op, ns}) s.Add(v);
  s.Add(dry ? "dry" : "wet");
}

// ---- informer ----

void PodFromDom(const json& pod, Sum& s) {
  const json& meta = pod.at("metadata");
  for (const char* k : {"name", "namespace", "resourceVersion", "uid"}) s.Add(meta.value(k, ""));
  if (auto l = meta.find("labels"); l != meta.end()) {
    for (auto it = l->begin(); it != l->end(); ++it) s.Pair(it.key(), it->get_ref<const std::string&>());
  }
  const json* ann = meta.contains("annotations") ? &meta.at("annotations") : nullptr;
  s.Add(ann != nullptr ? ann->value("graydebug.io/status", "") : "");
  const json& status = pod.at("status");
  s.Add(status.value("phase", ""));
  s.Add(status.value("podIP", ""));
  for (const json& c : pod.at("spec").at("containers")) s.Add(c.value("name", ""));
}

void InformerNlohmannDom(const std::string& body, Sum& s) {
  json page = json::parse(body);
  for (const json& pod : page.at("items")) PodFromDom(pod, s);
}

void InformerSimdjsonDom(simdjson::dom::parser& parser, const std::string& body, Sum& s) {
  simdjson::padded_string padded(body);
  simdjson::dom::element page = parser.parse(padded);
  for (simdjson::dom::element pod : page["items"].get_array()) {
    simdjson::dom::element meta = pod["metadata"];
    for (const char* k : {"name", "namespace", "resourceVersion", "uid"}) s.Add(DomStr(meta, k));
    simdjson::dom::object labels;
    if (meta["labels"].get(labels) == simdjson::SUCCESS) {
      for (auto f : labels) s.Pair(f.key, std::string_view(f.value));
    }
    simdjson::dom::element ann;
    s.Add(meta["annotations"].get(ann) == simdjson::SUCCESS ? DomStr(ann, "graydebug.io/status") : "");
    s.Add(DomStr(pod["status"], "phase"));
    s.Add(DomStr(pod["status"], "podIP"));
    for (simdjson::dom::element c : pod["spec"]["containers"].get_array()) s.Add(DomStr(c, "name"));
  }
}

void InformerOnDemand(od::parser& parser, const std::string& body, Sum& s) {
  simdjson::padded_string padded(body);
  od::document page = parser.iterate(padded);
  for (auto pod : page.find_field_unordered("items").get_array()) {
    std::string_view f[4], status_ann, phase, ip;
    std::vector<std::string_view> containers;
    for (auto field : pod.get_object()) {
      std::string_view key = field.unescaped_key();
      if (key == "metadata") {
        for (auto mf : field.value().get_object()) {
          std::string_view mk = mf.unescaped_key();
          if (mk == "name") {
            f[0] = mf.value().get_string();
          } else if (mk == "namespace") {
            f[1] = mf.value().get_string();
          } else if (mk == "resourceVersion") {
            f[2] = mf.value().get_string();
          } else if (mk == "uid") {
            f[3] = mf.value().get_string();
          } else if (mk == "labels") {
            for (auto kv : mf.value().get_object()) {
              std::string_view k2 = kv.unescaped_key();
              s.Pair(k2, kv.value().get_string());
            }
          } else if (mk == "annotations") {
            std::string_view v;
            if (mf.value().find_field_unordered("graydebug.io/status").get(v) == simdjson::SUCCESS) status_ann = v;
          }
        }
      } else if (key == "spec") {
        for (auto c : field.value().find_field_unordered("containers").get_array()) {
          std::string_view n;
          if (c.find_field_unordered("name").get(n) == simdjson::SUCCESS) containers.push_back(n);
        }
      } else if (key == "status") {
        for (auto sf : field.value().get_object()) {
          std::string_view sk = sf.unescaped_key();
          if (sk == "phase") {
            phase = sf.value().get_string();
          } else if (sk == "podIP") {
            ip = sf.value().get_string();
          }
        }
      }
    }
    for (std::string_view v : f) s.Add(v);
    s.Add(status_ann);
    s.Add(phase);
    s.Add(ip);
    for (std::string_view c : containers) s.Add(c);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::string fixture = argc > 1 ? argv[1] : "tests/fixtures/injector/simple-gray.pod.json";
  const int runs = argc > 2 ? std::atoi(argv[2]) : 5;
  const json pod = graydebug::bench::ReadJsonFile(fixture);
  const std::string review = graydebug::bench::GrayReview(pod, 2 * 1024);
  const std::string page = PageOf(pod, 500).dump();
  simdjson::dom::parser dom_parser;
  od::parser od_parser;

  struct Case {
    const char* path;
    const char* decoder;
    const std::string* body;
    int iterations;
    std::function<void(Sum&)> run;
  };
  const int ai = 20000, pi = 40;
  std::vector<Case> cases = {
      {"admission", "nlohmann-dom", &review, ai, [&](Sum& s) { AdmissionNlohmannDom(review, s); }},
      {"admission", "nlohmann-filtered", &review, ai, [&](Sum& s) { AdmissionNlohmannFiltered(review, s); }},
      {"admission", "simdjson-dom", &review, ai, [&](Sum& s) { AdmissionSimdjsonDom(dom_parser, review, s); }},
      {"admission", "simdjson-ondemand", &review, ai, [&](Sum& s) { AdmissionOnDemand(od_parser, review, s); }},
      {"informer", "nlohmann-dom", &page, pi, [&](Sum& s) { InformerNlohmannDom(page, s); }},
      {"informer", "simdjson-dom", &page, pi, [&](Sum& s) { InformerSimdjsonDom(dom_parser, page, s); }},
      {"informer", "simdjson-ondemand", &page, pi, [&](Sum& s) { InformerOnDemand(od_parser, page, s); }},
  };
  std::string last_path;
  std::uint64_t want = 0;
  for (Case& c : cases) {
    Sum check;
    c.run(check);
    if (c.path != last_path) {
      last_path = c.path;
      want = check.Total();
    } else if (check.Total() != want) {
      std::cerr << "json_decode_bench: " << c.path << "/" << c.decoder << " read something else than "
                << cases.front().decoder << "\n";
      return 1;
    }
    auto [ns, allocs] = Measure(
        [&] {
          Sum s;
          c.run(s);
          if (s.Total() != want) std::abort();
        },
        c.iterations, runs);
    std::printf("{\"path\":\"%s\",\"decoder\":\"%s\",\"bytes\":%zu,\"ns_per_op\":%.0f,\"allocs_per_op\":%.0f}\n",
                c.path, c.decoder, c.body->size(), ns, allocs);
  }
  return 0;
}
