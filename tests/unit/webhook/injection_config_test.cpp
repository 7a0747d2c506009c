#include "webhook/injection_config.h"

#include <doctest/doctest.h>

using namespace graydebug::webhook;

TEST_CASE("injection config: empty text gives the built-in defaults") {
  auto r = ParseInjectionConfig("");
  REQUIRE(r.ok);
  CHECK(r.config.select_label_key == "graydebug.io/inject");
  CHECK(r.config.dlv_port == 2345);
  CHECK(r.config.agent_port == 9102);
  CHECK(r.config.dlv_listen_host == "127.0.0.1");
}

TEST_CASE("injection config: every field parses") {
  auto r = ParseInjectionConfig(R"(
selector: {labelKey: team.example.com/debug, labelValue: "yes"}
releaseLabel: app.kubernetes.io/version
nativeSidecars: true
scrapeAnnotations: false
imagePullPolicy: Always
agentBinary: /opt/graydebug-agent
dlv:
  image: registry.example.com/dlv:1
  port: 40000
  readinessProbe: false
  resources: {requests: {cpu: 10m, memory: 32Mi}, limits: {cpu: "2", memory: 1Gi}}
halfOpenInjections: 2
agent:
  image: registry.example.com/agent:1
  port: 9200
  runAsUser: 1000
  runAsGroup: 1001
  expvarUrl: http://localhost:6060/debug/vars
)");
  REQUIRE_MESSAGE(r.ok, r.error);
  CHECK(r.config.select_label_key == "team.example.com/debug");
  CHECK(r.config.select_label_value == "yes");
  CHECK(r.config.native_sidecars);
  CHECK_FALSE(r.config.scrape_annotations);
  CHECK(r.config.dlv_port == 40000);
  CHECK(r.config.agent_port == 9200);
  CHECK(r.config.dlv_resources["limits"]["memory"] == "1Gi");
  CHECK(r.config.agent_run_as_user == 1000);
  CHECK(r.config.agent_run_as_group == 1001);
  CHECK(r.config.expvar_url == "http://localhost:6060/debug/vars");
  CHECK_FALSE(r.config.dlv_readiness_probe);
  CHECK(r.config.half_open_injections == 2);
}

TEST_CASE("injection config: expvar URLs must be http to the pod's loopback with a port and a path") {
  for (const char* ok : {"http://127.0.0.1:8080/debug/vars", "http://localhost:6060/debug/vars", "http://[::1]:1/",
                         "http://127.1.2.3:65535/x?y=1"}) {
    CHECK_MESSAGE(ExpvarUrlProblem(ok).empty(), ok, ": ", ExpvarUrlProblem(ok));
  }
  for (const char* bad :
       {"https://127.0.0.1:8080/debug/vars", "http://10.0.0.1:8080/debug/vars", "http://127.0.0.1/debug/vars",
        "http://127.0.0.1:8080", "http://127.0.0.1:0/x", "http://127.0.0.1:70000/x", "http://127.0.0.300:80/x",
        "http://localhost.evil:80/x", "http://127.0.0.1:80/a b", "", "http://user@127.0.0.1:80/x"}) {
    CHECK_MESSAGE(!ExpvarUrlProblem(bad).empty(), bad);
  }
  CHECK_FALSE(ParseInjectionConfig("agent: {expvarUrl: 'http://example.com:80/x'}").ok);
  CHECK(ParseInjectionConfig("agent: {expvarUrl: ''}").ok);
}

TEST_CASE("injection config: bad fields are named in one line") {
  struct Case {
    const char* yaml;
    const char* want;
  };
  for (const Case& c : {
           Case{"dlv: {port: 0}", "dlv.port"},
           Case{"halfOpenInjections: -1", "halfOpenInjections"},
           Case{"agent: {runAsGroup: -5}", "agent.runAsGroup"},
           Case{"dlv: {readinessProbe: sometimes}", "dlv.readinessProbe: must be true or false"},
           Case{"dlv: {port: abc}", "dlv.port: must be an integer"},
           Case{"agent: {port: 2345}", "dlv.port: must differ"},
           Case{"dlv: {listenHost: 0.0.0.0}", "dlv.listenHost"},
           Case{"dlv: {imagee: x}", "dlv.imagee: unknown field"},
           Case{"nativeSidecars: yes", "nativeSidecars: must be true or false"},
           Case{"selector: {labelKey: 'bad key!'}", "selector.labelKey"},
           Case{"agent: {runAsUser: 0}", "agent.runAsUser"},
           Case{"dlv: {resources: {requests: {cpu: lots}}}", "dlv.resources.requests.cpu"},
           Case{"dlv: {resources: {limits: {memory: 1Gi}}}", "dlv.resources: requests.cpu"},
           Case{"imagePullPolicy: Sometimes", "imagePullPolicy"},
           Case{"agentBinary: relative/agent", "agentBinary: must be an absolute path"},
           Case{"agentBinary: \"/opt/\\x01agent\"", "agentBinary: must be an absolute path without control"},
           Case{"- a\n- b", "config: must be a mapping"},
           Case{"dlv: {image: [a, b]}", "dlv.image: must be a string"},
           Case{"a: [", "not valid YAML"},
       }) {
    auto r = ParseInjectionConfig(c.yaml);
    CHECK_FALSE(r.ok);
    CHECK_MESSAGE(r.error.find(c.want) != std::string::npos, c.yaml, " -> ", r.error);
    CHECK(r.error.find('\n') == std::string::npos);
  }
}

TEST_CASE("injection config: non-loopback dlv needs the explicit opt-in") {
  CHECK(ParseInjectionConfig("dlv: {listenHost: 0.0.0.0, allowNonLoopback: true}").ok);
  CHECK(ParseInjectionConfig("dlv: {listenHost: '::1'}").ok);
}

TEST_CASE("injection config: file errors name the file") {
  auto r = LoadInjectionConfig("/nonexistent/graydebug.yaml");
  CHECK_FALSE(r.ok);
  CHECK(r.error.find("/nonexistent/graydebug.yaml") != std::string::npos);
}
