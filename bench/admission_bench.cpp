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
#include "alloc_count.h"
#include "gray_review.h"  // replaces operator new: counts every allocation of the binary

#include "webhook/admission.h"

namespace {

using graydebug::bench::Measure;
using json = nlohmann::json;
using namespace graydebug::webhook;

}  // namespace

int main(int argc, char** argv) {
  std::string fixture = argc > 1 ? argv[1] : "tests/fixtures/injector/simple-gray.pod.json";
  int runs = argc > 2 ? std::atoi(argv[2]) : 5;
  SidecarInjector injector({}, "bench");
  AdmissionHandler handler(injector, {});
  for (std::size_t kb : {2, 16, 64}) {
    std::string body = graydebug::bench::GrayReview(graydebug::bench::ReadJsonFile(fixture), kb * 1024);
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
