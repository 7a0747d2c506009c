#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace graydebug::webhook {

// What the webhook injects and how it selects pods (SPEC §2). Every field has a built-in default;
// a YAML file (--config) overrides any of them. See docs/webhook-config.md.
struct InjectionConfig {
  // A pod is a gray pod when it carries this label with this value.
  std::string select_label_key = "graydebug.io/inject";
  std::string select_label_value = "true";
  // The pod label whose value names the gray release (circuit breakers are per release); the pod's
  // owner name is used when the label is absent.
  std::string release_label = "version";
  // Inject as native sidecars (initContainers with restartPolicy: Always, Kubernetes >= 1.29).
  bool native_sidecars = false;
  // Add prometheus.io/{scrape,port,path} when the pod has none of them.
  bool scrape_annotations = true;

  std::string dlv_image = "graydebug/graydebug:latest";
  std::string agent_image = "graydebug/graydebug:latest";
  std::string image_pull_policy = "IfNotPresent";
  int dlv_port = 2345;
  int agent_port = 9102;
  // dlv has no authentication: 127.0.0.1 unless an operator opts in to another address.
  std::string dlv_listen_host = "127.0.0.1";
  bool allow_non_loopback_dlv = false;
  std::string agent_binary = "/usr/local/bin/graydebug-agent";

  // Kubernetes resource requirements ({"requests": {...}, "limits": {...}}) of each container.
  nlohmann::json dlv_resources = {{"requests", {{"cpu", "50m"}, {"memory", "64Mi"}}},
                                  {"limits", {{"cpu", "1"}, {"memory", "512Mi"}}}};
  nlohmann::json agent_resources = {{"requests", {{"cpu", "10m"}, {"memory", "16Mi"}}},
                                    {"limits", {{"cpu", "100m"}, {"memory", "64Mi"}}}};
  // UID and GID of the agent container (restricted profile: non-root).
  int64_t agent_run_as_user = 65532;
  int64_t agent_run_as_group = 65532;
  // The target's Go expvar endpoint passed to the agent as --expvar-url (heap gauges); "" leaves
  // the agent on RSS only. Annotation graydebug.io/expvar-url overrides it per pod.
  std::string expvar_url;
  // An exec readiness probe on dlv-server (`graydebug-agent probe-dlv`): a pod whose debugger does
  // not answer is not Ready (and leaves its Services' endpoints). See docs/decisions.md.
  bool dlv_readiness_probe = true;
  // New pods of a release whose breaker is half-open that this replica still injects per half-open
  // period, so the trial sessions have pods; 0: none (a half-open release gets no new sidecars).
  int half_open_injections = 5;
};

struct ConfigLoadResult {
  bool ok = false;
  InjectionConfig config;
  std::string error;  // one line naming the field, when !ok
};

// Parses and validates the YAML text of a config file (camelCase keys, unknown keys refused).
ConfigLoadResult ParseInjectionConfig(const std::string& yaml_text);
// Reads (size-limited) and parses a config file; the error names the file.
ConfigLoadResult LoadInjectionConfig(const std::string& path);

// Validation helpers shared with the per-pod annotations.
bool ValidPort(int64_t port);
// An image reference: non-empty, at most 512 bytes, no whitespace or control characters.
bool ValidImage(const std::string& image);
// A Kubernetes quantity such as "100m", "64Mi", "1", "1.5", "2e3".
bool ValidQuantity(const std::string& q);
// An expvar URL the agent may read: http, a loopback host (127.x.x.x, localhost, [::1]), an
// explicit port and a path, at most 512 bytes, nothing that needs quoting. "" when valid, else why.
std::string ExpvarUrlProblem(const std::string& url);

}  // namespace graydebug::webhook
