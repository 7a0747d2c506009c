#include "webhook/injection_config.h"

#include "graydebug/yaml_fields.h"

#include <charconv>
#include <regex>
#include <set>

#include "graydebug/config_file.h"

namespace graydebug::webhook {
namespace {

using json = nlohmann::json;

using yaml::Bool;
using yaml::CheckKeys;
using yaml::Fail;
using yaml::Str;

int64_t Int(const YAML::Node& n, const std::string& field) {
  return yaml::Int(n, field, INT64_MIN, INT64_MAX);
}

json Resources(const YAML::Node& n, const std::string& field) {
  CheckKeys(n, field, {"requests", "limits"});
  json out = json::object();
  for (const char* part : {"requests", "limits"}) {
    if (!n[part]) continue;
    std::string f = field + "." + part;
    CheckKeys(n[part], f, {"cpu", "memory", "ephemeral-storage"});
    json m = json::object();
    for (const auto& kv : n[part]) {
      std::string q = Str(kv.second, f + "." + kv.first.Scalar());
      if (!ValidQuantity(q)) Fail(f + "." + kv.first.Scalar(), "\"" + q + "\" is not a Kubernetes quantity");
      m[kv.first.Scalar()] = q;
    }
    out[part] = m;
  }
  if (!out.contains("requests") || !out["requests"].contains("cpu") || !out["requests"].contains("memory") ||
      !out.contains("limits") || !out["limits"].contains("memory")) {
    Fail(field, "requests.cpu, requests.memory and limits.memory are required (every injected container is sized)");
  }
  return out;
}

bool ValidLabelKey(const std::string& key) {
  static const std::regex kName("([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)");
  static const std::regex kPrefix("[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?");
  auto slash = key.find('/');
  if (slash == std::string::npos) return std::regex_match(key, kName);
  return std::regex_match(key.substr(0, slash), kPrefix) && std::regex_match(key.substr(slash + 1), kName);
}

bool ValidLabelValue(const std::string& v) {
  static const std::regex kValue("(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?");
  return std::regex_match(v, kValue);
}

}  // namespace

bool ValidPort(int64_t port) {
  return port >= 1 && port <= 65535;
}

bool ValidImage(const std::string& image) {
  if (image.empty() || image.size() > 512) return false;
  for (unsigned char c : image) {
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

bool ValidQuantity(const std::string& q) {
  static const std::regex kQuantity(
      R"(([+-]?[0-9]+(\.[0-9]*)?|[+-]?\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?)");
  return q.size() <= 64 && std::regex_match(q, kQuantity);
}

std::string ExpvarUrlProblem(const std::string& url) {
  // The agent reads the URL from inside the pod: only the pod's own loopback, so an annotation
  // cannot turn the agent into a client of other hosts.
  static const std::regex kUrl(
      R"(http://(127(\.[0-9]{1,3}){3}|localhost|\[::1\]):([0-9]{1,5})(/[-A-Za-z0-9._~/%?=&+]*))");
  if (url.size() > 512) return "is longer than 512 bytes";
  std::smatch m;
  if (!std::regex_match(url, m, kUrl)) {
    return "is not http://<loopback host>:<port>/<path> (host 127.x.x.x, localhost or [::1])";
  }
  if (m[1].str().rfind("127.", 0) == 0) {
    std::string host = m[1].str();
    for (std::size_t start = 0; start < host.size();) {
      std::size_t dot = host.find('.', start);
      std::string part = host.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
      if (std::stoi(part) > 255) return "has an invalid IPv4 address";
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
  }
  int port = std::stoi(m[3].str());
  if (!ValidPort(port)) return "has a port outside 1..65535";
  return "";
}

ConfigLoadResult ParseInjectionConfig(const std::string& yaml_text) {
  ConfigLoadResult r;
  InjectionConfig& c = r.config;
  r.error = yaml::ParseFields(yaml_text, [&](const YAML::Node& root) {
    CheckKeys(root, "",
              {"selector", "releaseLabel", "nativeSidecars", "scrapeAnnotations", "imagePullPolicy", "agentBinary",
               "halfOpenInjections", "dlv", "agent"});
    if (auto s = root["selector"]) {
      CheckKeys(s, "selector", {"labelKey", "labelValue"});
      if (s["labelKey"]) c.select_label_key = Str(s["labelKey"], "selector.labelKey");
      if (s["labelValue"]) c.select_label_value = Str(s["labelValue"], "selector.labelValue");
      if (!ValidLabelKey(c.select_label_key))
        Fail("selector.labelKey", "\"" + c.select_label_key + "\" is not a label key");
      if (!ValidLabelValue(c.select_label_value)) {
        Fail("selector.labelValue", "\"" + c.select_label_value + "\" is not a label value");
      }
    }
    if (root["releaseLabel"]) {
      c.release_label = Str(root["releaseLabel"], "releaseLabel");
      if (!ValidLabelKey(c.release_label)) Fail("releaseLabel", "\"" + c.release_label + "\" is not a label key");
    }
    if (root["halfOpenInjections"]) {
      c.half_open_injections = static_cast<int>(yaml::Int(root["halfOpenInjections"], "halfOpenInjections", 0, 1000));
    }
    if (root["nativeSidecars"]) c.native_sidecars = Bool(root["nativeSidecars"], "nativeSidecars");
    if (root["scrapeAnnotations"]) c.scrape_annotations = Bool(root["scrapeAnnotations"], "scrapeAnnotations");
    if (root["imagePullPolicy"]) {
      c.image_pull_policy = Str(root["imagePullPolicy"], "imagePullPolicy");
      if (c.image_pull_policy != "Always" && c.image_pull_policy != "IfNotPresent" && c.image_pull_policy != "Never") {
        Fail("imagePullPolicy", "must be Always, IfNotPresent or Never");
      }
    }
    if (root["agentBinary"]) {
      c.agent_binary = Str(root["agentBinary"], "agentBinary");
      bool control = false;
      for (unsigned char ch : c.agent_binary) control = control || ch < 0x20 || ch == 0x7f;
      if (c.agent_binary.empty() || c.agent_binary[0] != '/' || control) {
        Fail("agentBinary", "must be an absolute path without control characters");
      }
    }
    if (auto d = root["dlv"]) {
      CheckKeys(d, "dlv", {"image", "port", "listenHost", "allowNonLoopback", "readinessProbe", "resources"});
      if (d["image"]) c.dlv_image = Str(d["image"], "dlv.image");
      if (d["port"]) c.dlv_port = static_cast<int>(std::clamp<int64_t>(Int(d["port"], "dlv.port"), -1, 70000));
      if (d["listenHost"]) c.dlv_listen_host = Str(d["listenHost"], "dlv.listenHost");
      if (d["allowNonLoopback"]) c.allow_non_loopback_dlv = Bool(d["allowNonLoopback"], "dlv.allowNonLoopback");
      if (d["readinessProbe"]) c.dlv_readiness_probe = Bool(d["readinessProbe"], "dlv.readinessProbe");
      if (d["resources"]) c.dlv_resources = Resources(d["resources"], "dlv.resources");
    }
    if (auto a = root["agent"]) {
      CheckKeys(a, "agent", {"image", "port", "runAsUser", "runAsGroup", "expvarUrl", "resources"});
      if (a["image"]) c.agent_image = Str(a["image"], "agent.image");
      if (a["port"]) c.agent_port = static_cast<int>(std::clamp<int64_t>(Int(a["port"], "agent.port"), -1, 70000));
      if (a["runAsUser"]) c.agent_run_as_user = Int(a["runAsUser"], "agent.runAsUser");
      if (a["runAsGroup"]) c.agent_run_as_group = Int(a["runAsGroup"], "agent.runAsGroup");
      if (a["expvarUrl"]) {
        c.expvar_url = Str(a["expvarUrl"], "agent.expvarUrl");
        if (std::string why = ExpvarUrlProblem(c.expvar_url); !c.expvar_url.empty() && !why.empty()) {
          Fail("agent.expvarUrl", "\"" + c.expvar_url + "\" " + why);
        }
      }
      if (a["resources"]) c.agent_resources = Resources(a["resources"], "agent.resources");
    }
    if (!ValidImage(c.dlv_image)) Fail("dlv.image", "must be a non-empty image reference without spaces");
    if (!ValidImage(c.agent_image)) Fail("agent.image", "must be a non-empty image reference without spaces");
    if (!ValidPort(c.dlv_port)) Fail("dlv.port", "must be 1..65535");
    if (!ValidPort(c.agent_port)) Fail("agent.port", "must be 1..65535");
    if (c.dlv_port == c.agent_port)
      Fail("dlv.port", "must differ from agent.port (the pod's containers share one network)");
    if (c.agent_run_as_user <= 0 || c.agent_run_as_user > 2147483647) {
      Fail("agent.runAsUser", "must be a non-root UID (1..2147483647): the agent runs under the restricted profile");
    }
    if (c.agent_run_as_group < 0 || c.agent_run_as_group > 2147483647) {
      Fail("agent.runAsGroup", "must be a GID (0..2147483647)");
    }
    bool loopback = c.dlv_listen_host == "127.0.0.1" || c.dlv_listen_host == "::1" || c.dlv_listen_host == "localhost";
    if (!loopback && !c.allow_non_loopback_dlv) {
      Fail("dlv.listenHost",
           "\"" + c.dlv_listen_host +
               "\" is not loopback; dlv has no authentication, set dlv.allowNonLoopback: true to opt in");
    }
    if (c.dlv_listen_host.empty() || c.dlv_listen_host.find_first_of(" /\t") != std::string::npos) {
      Fail("dlv.listenHost", "must be a host address");
    }
  });
  r.ok = r.error.empty();
  return r;
}

ConfigLoadResult LoadInjectionConfig(const std::string& path) {
  FileReadResult file = ReadFileLimited(path);
  if (!file.ok) return {false, {}, file.error};
  ConfigLoadResult r = ParseInjectionConfig(file.contents);
  if (!r.ok) r.error = "config " + path + ": " + r.error;
  return r;
}

}  // namespace graydebug::webhook
