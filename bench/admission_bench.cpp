// In-process cost of one admission: decode the AdmissionReview + SidecarInjector + encode the
// reply, for gray pods of about 2, 16 and 64 KB. Beside it, in the same run, the floor: parsing
// and re-serialising the same body with nlohmann_json and nothing else. Prints one JSON line per
// size: ns/op (median of --runs) and heap allocations per op (operator new is counted).
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <new>
#include <sstream>
#include <string>
#include <vector>
#include "alloc_count.h"  // replaces operator new: counts every allocation of the binary

#include "webhook/admission.h"

namespace {

using graydebug::bench::Measure;
using json = nlohmann::json;
using namespace graydebug::webhook;

// A gray pod padded to about `bytes` with realistic content: env vars and config annotations.
std::string Review(const std::string& fixture, std::size_t bytes) {
  std::ifstream in(fixture);
  std::stringstream ss;
  ss << in.rdbuf();
  json pod = json::parse(ss.str());
  json review = {{"apiVersion", "admission.k8s.io/v1"},
                 {"kind", "AdmissionReview"},
                 {"request",
                  {{"uid", "705ab4f5-6393-11e8-b7cc-42010a800002"},
                   {"kind", {{"group", ""}, {"version", "v1"}, {"kind", "Pod"}}},
                   {"resource", {{"group", ""}, {"version", "v1"}, {"resource", "pods"}}},
                   {"namespace", "shop"},
                   {"operation", "CREATE"},
                   {"userInfo", {{"username", "system:serviceaccount:kube-system:replicaset-controller"}}},
                   {"object", pod}}}};
  for (int i = 0; review.dump().size() < bytes; ++i) {
    json& env = review["request"]["object"]["spec"]["containers"][0]["env"];
    env.push_back({{"name", "FEATURE_FLAG_" + std::to_string(i)}, {"value", "enabled-for-gray-release-v2-alpha"}});
  }
  return review.dump();
}

}  // namespace

int main(int argc, char** argv) {
  std::string fixture = argc > 1 ? argv[1] : "tests/fixtures/injector/simple-gray.pod.json";
  int runs = argc > 2 ? std::atoi(argv[2]) : 5;
  SidecarInjector injector({}, "bench");
  AdmissionHandler handler(injector, {});
  for (std::size_t kb : {2, 16, 64}) {
    std::string body = Review(fixture, kb * 1024);
    AdmissionReply check = handler.MutatePods("application/json", body);
    if (check.outcome.result != "injected") {
      std::cerr << "bench: the pod was not injected: " << check.body << "\n";
      return 1;
    }
    int iterations = static_cast<int>(20000 / kb);
    auto [ns, allocs] = Measure([&] { (void)handler.MutatePods("application/json", body); }, iterations, runs);
    auto [floor_ns, floor_allocs] = Measure(
        [&] {
          json j = json::parse(body);
          std::string out = j.dump();
          (void)out;
        },
        iterations, runs);
    std::printf(
        "{\"size_kb\":%zu,\"bytes\":%zu,\"ns_per_op\":%.0f,\"allocs_per_op\":%.0f,\"parse_dump_ns\":%.0f,"
        "\"parse_dump_allocs\":%.0f}\n",
        kb, body.size(), ns, allocs, floor_ns, floor_allocs);
  }
  return 0;
}
