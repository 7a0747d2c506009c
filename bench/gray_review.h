#pragma once
// The in-process benches' input: an AdmissionReview of a gray pod (a fixture) padded to about
// `bytes` with realistic content (env vars of the first container).
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

namespace graydebug::bench {

inline nlohmann::json ReadJsonFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str());
}

inline std::string GrayReview(const nlohmann::json& pod, std::size_t bytes) {
  nlohmann::json review = {{"apiVersion", "admission.k8s.io/v1"},
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
    nlohmann::json& env = review["request"]["object"]["spec"]["containers"][0]["env"];
    env.push_back({{"name", "FEATURE_FLAG_" + std::to_string(i)}, {"value", "enabled-for-gray-release-v2-alpha"}});
  }
  return review.dump();
}

}  // namespace graydebug::bench
