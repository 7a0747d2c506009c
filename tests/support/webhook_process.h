#pragma once
// The graydebug-webhook binary under test and the MutatingWebhookConfiguration that points the
// local kube-apiserver at it (shared by the webhook, breaker and demo-style integration tests).
#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "graydebug/base64.h"
#include "support/process.h"
#include "support/test_pki.h"

namespace graydebug::testing {

using namespace std::chrono_literals;
using nlohmann::json;

// The webhook binary with its own certificate, listening on a free loopback port.
struct Webhook {
  TestPki pki;
  std::unique_ptr<Child> child;
  std::string log_path;
  int port = 0, metrics_port = 0;

  bool Start(const std::string& kubeconfig, const std::string& config = "",
             const std::vector<std::string>& extra = {}) {
    if (!pki.ok() || !pki.Issue("serving", "graydebug-webhook-1")) return false;
    log_path = pki.dir() + "/webhook.log";
    std::vector<std::string> argv = {std::string(GRAYDEBUG_BIN_DIR) + "/graydebug-webhook",
                                     "--listen=127.0.0.1:0",
                                     "--metrics-addr=127.0.0.1:0",
                                     "--tls-cert-file=" + pki.dir() + "/serving.crt",
                                     "--tls-key-file=" + pki.dir() + "/serving.key",
                                     "--log-level=debug"};
    if (!kubeconfig.empty()) argv.push_back("--kubeconfig=" + kubeconfig);
    if (!config.empty()) argv.push_back("--config=" + config);
    argv.insert(argv.end(), extra.begin(), extra.end());
    child = Child::Spawn(argv, log_path);
    if (!child) return false;
    for (int i = 0; i < 300 && port == 0; ++i) {
      std::this_thread::sleep_for(50ms);
      std::istringstream lines(child->Output());
      for (std::string line; std::getline(lines, line);) {
        json j = json::parse(line, nullptr, false);
        if (j.is_object() && j.value("msg", "") == "serving") {
          port = std::stoi(j.value("port", "0"));
          metrics_port = std::stoi(j.value("metrics_port", "0"));
        }
      }
    }
    return port != 0;
  }
  std::string Url(const std::string& path) const { return "https://127.0.0.1:" + std::to_string(port) + path; }
  ProcessResult Curl(const std::string& path) const {
    return Run({"curl", "-sS", "--cacert", pki.ca_file(), "-o", "/dev/stdout", "-w", "\n%{http_code}", Url(path)});
  }
  bool WaitReady() const {
    for (int i = 0; i < 200; ++i) {
      if (Curl("/readyz").out.ends_with("200")) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }
  std::string Metrics() const {
    return Run({"curl", "-sS", "http://127.0.0.1:" + std::to_string(metrics_port) + "/metrics"}).out;
  }
};

inline std::string WebhookConfiguration(const Webhook& w, const std::string& name) {
  // timeoutSeconds: admission sits on the path of every pod creation; the injector answers in
  // well under a millisecond, so 5 s only bounds a hung webhook, and failurePolicy: Ignore then
  // admits the pod unmodified rather than blocking a rollout.
  json cfg = {
      {"apiVersion", "admissionregistration.k8s.io/v1"},
      {"kind", "MutatingWebhookConfiguration"},
      {"metadata", {{"name", name}}},
      {"webhooks",
       {{{"name", "pods.graydebug.io"},
         {"admissionReviewVersions", {"v1", "v1beta1"}},
         {"sideEffects", "None"},
         {"failurePolicy", "Ignore"},
         {"timeoutSeconds", 5},
         {"reinvocationPolicy", "IfNeeded"},
         {"clientConfig", {{"url", w.Url("/mutate/pods")}, {"caBundle", graydebug::EncodeBase64(w.pki.ca_pem())}}},
         {"rules",
          {{{"operations", {"CREATE"}}, {"apiGroups", {""}}, {"apiVersions", {"v1"}}, {"resources", {"pods"}}}}},
         {"objectSelector", {{"matchLabels", {{"graydebug.io/inject", "true"}}}}},
         {"namespaceSelector",
          {{"matchExpressions",
            {{{"key", "kubernetes.io/metadata.name"},
              {"operator", "NotIn"},
              {"values", {"kube-system", "graydebug-system"}}}}}}}},
        {{"name", "debugsessions.graydebug.io"},
         {"admissionReviewVersions", {"v1"}},
         {"sideEffects", "None"},
         {"failurePolicy", "Fail"},  // requestedBy is an audit field: never store a session without it
         {"timeoutSeconds", 5},
         {"clientConfig",
          {{"url", w.Url("/mutate/debugsessions")}, {"caBundle", graydebug::EncodeBase64(w.pki.ca_pem())}}},
         {"rules",
          {{{"operations", {"CREATE", "UPDATE"}},
            {"apiGroups", {"graydebug.io"}},
            {"apiVersions", {"v1alpha1"}},
            {"resources", {"debugsessions"}}}}}}}}};
  return cfg.dump();
}

}  // namespace graydebug::testing
