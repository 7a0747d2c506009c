// The pure core of kubectl-graydebug: targets, names, session objects, progress, tables, breakers.
#include "cli/plugin.h"

#include <doctest/doctest.h>
#include <yaml-cpp/yaml.h>

#include <set>
#include <sstream>

#include "graydebug/kube/time.h"

using namespace graydebug::cli;
using graydebug::Clock;
using graydebug::kube::ParseTime;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

const Clock::Wall kNow = *ParseTime("2026-11-26T10:00:00Z");

// A deterministic "random" source for names.
std::function<uint32_t()> Counter(uint32_t start = 0) {
  auto n = std::make_shared<uint32_t>(start);
  return [n] { return (*n)++ * 2654435761u; };
}

std::vector<std::string> Lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

json SessionWith(const json& status) {
  return {
      {"metadata", {{"name", "order-1-bc2df"}, {"namespace", "shop"}, {"creationTimestamp", "2026-11-26T09:58:00Z"}}},
      {"spec", {{"target", {{"pod", "order-1"}}}, {"ttl", "15m"}}},
      {"status", status}};
}

json Cond(const std::string& type, const std::string& status, const std::string& reason, const std::string& message) {
  return {{"type", type}, {"status", status}, {"reason", reason}, {"message", message}};
}

}  // namespace

TEST_CASE("cli: targets") {
  auto pod = ParseTarget("order-v2-alpha-7d9f-x2x");
  REQUIRE(pod.target);
  CHECK(pod.target->kind == Target::Kind::kPod);
  CHECK(pod.target->name == "order-v2-alpha-7d9f-x2x");
  for (const char* form :
       {"deploy/order", "deployment/order", "deployments/order", "deployment.apps/order", "Deploy/order"}) {
    auto d = ParseTarget(form);
    REQUIRE_MESSAGE(d.target, form);
    CHECK(d.target->kind == Target::Kind::kDeployment);
    CHECK(d.target->name == "order");
  }
  for (const char* form : {"pod/order-1", "po/order-1", "pods/order-1"}) {
    auto p = ParseTarget(form);
    REQUIRE_MESSAGE(p.target, form);
    CHECK(p.target->kind == Target::Kind::kPod);
    CHECK(p.target->name == "order-1");
  }
  CHECK(ParseTarget("order.v2").target);  // dots are fine in object names

  SUBCASE("hostile or wrong inputs are one-line errors") {
    const std::string long_name(254, 'a');
    for (const std::string& bad :
         {std::string(""), std::string("deploy/"), std::string("/order"), std::string("svc/order"),
          std::string("deploy/a/b"), std::string("Order"), std::string("-order"), std::string("order-"),
          std::string("../etc/passwd"), std::string("or der"), std::string("order\n"), std::string("order\x1b[31m"),
          std::string("a..b"), std::string("deploy/x?y=1"), std::string("\xff\xfe"), std::string("pod/%2e%2e"),
          long_name, "deploy/" + long_name}) {
      auto r = ParseTarget(bad);
      CHECK_MESSAGE(!r.target, bad);
      CHECK(!r.error.empty());
      CHECK(r.error.find('\n') == std::string::npos);
      CHECK(r.error.find('\x1b') == std::string::npos);
      CHECK(r.error.size() < 300);
    }
    CHECK(ParseTarget("svc/order").error.find("unsupported kind \"svc\"") != std::string::npos);
    CHECK(ParseTarget(std::string(253, 'a')).target);
  }
}

TEST_CASE("cli: DNS-1123 checks") {
  CHECK(IsDns1123Label("a"));
  CHECK(IsDns1123Label("order-1"));
  CHECK(IsDns1123Label(std::string(63, 'a')));
  CHECK_FALSE(IsDns1123Label(std::string(64, 'a')));
  CHECK_FALSE(IsDns1123Label(""));
  CHECK_FALSE(IsDns1123Label("a.b"));
  CHECK_FALSE(IsDns1123Label("A"));
  CHECK_FALSE(IsDns1123Label("a-"));
  CHECK(IsDns1123Subdomain("a.b-c.d"));
  CHECK_FALSE(IsDns1123Subdomain("a..b"));
  CHECK_FALSE(IsDns1123Subdomain(".a"));
  CHECK_FALSE(IsDns1123Subdomain("a_b"));
}

TEST_CASE("cli: session names are DNS-1123 labels of at most 63 characters") {
  auto random = Counter();
  const std::string long_pod = std::string(240, 'x') + ".y";
  for (const std::string& base : {std::string("order-v2-alpha-7d9f-x2x"), std::string("order.v2"), long_pod,
                                  std::string(57, 'a') + "-b", std::string(""), std::string("---"), std::string("ÄÖÜ"),
                                  std::string("Order_V2"), std::string("a"), std::string(58, 'z')}) {
    std::string name = SessionName(base, random);
    CHECK_MESSAGE(IsDns1123Label(name), name);
    CHECK(name.size() <= kMaxSessionName);
    CHECK(name.size() >= 7);
  }
  CHECK(SessionName("order-1", Counter()).rfind("order-1-", 0) == 0);
  CHECK(SessionName("order-1", Counter()).size() == std::string("order-1-").size() + 5);
  CHECK(SessionName("Order.V2", Counter()).rfind("order-v2-", 0) == 0);
  CHECK(SessionName("", Counter()).rfind("session-", 0) == 0);
  CHECK(SessionName(long_pod, Counter()).size() == 63);
  // A cut that ends on '-' drops it rather than producing "--".
  std::string cut = SessionName(std::string(56, 'a') + "-b", Counter());
  CHECK(cut.find("--") == std::string::npos);
  // Different random draws, different names.
  std::set<std::string> names;
  auto r = Counter(7);
  for (int i = 0; i < 50; ++i) names.insert(SessionName("order", r));
  CHECK(names.size() == 50);
}

TEST_CASE("cli: deployment selectors and the session object") {
  json deploy = {{"metadata", {{"name", "order"}}},
                 {"spec", {{"selector", {{"matchLabels", {{"app", "order"}, {"version", "v2-alpha"}}}}}}}};
  SelectorResult s = DeploymentSelector(deploy);
  REQUIRE(s.error.empty());
  CHECK(s.selector == json{{"matchLabels", {{"app", "order"}, {"version", "v2-alpha"}}}});

  json with_expr = deploy;
  with_expr["spec"]["selector"]["matchExpressions"] = {{{"key", "tier"}, {"operator", "Exists"}}};
  CHECK(DeploymentSelector(with_expr).selector.contains("matchExpressions"));

  CHECK_FALSE(DeploymentSelector(json{{"metadata", {{"name", "x"}}}}).error.empty());
  CHECK_FALSE(DeploymentSelector(json{{"spec", {{"selector", {{"matchLabels", json::object()}}}}}}).error.empty());
  CHECK_FALSE(DeploymentSelector(json{{"spec", {{"selector", {{"matchLabels", {{"a", 1}}}}}}}}).error.empty());
  CHECK_FALSE(DeploymentSelector(json("garbage")).error.empty());
  CHECK_FALSE(DeploymentSelector(json{{"spec", "x"}}).error.empty());

  SessionRequest req;
  req.name = "order-1-bc2df";
  req.namespace_ = "shop";
  req.target = {Target::Kind::kPod, "order-1"};
  req.ttl = 15min;
  req.reason = "heap grows";
  json pod_session = BuildSession(req);
  CHECK(pod_session["apiVersion"] == "graydebug.io/v1alpha1");
  CHECK(pod_session["kind"] == "DebugSession");
  CHECK(pod_session["metadata"] == json{{"name", "order-1-bc2df"}, {"namespace", "shop"}});
  CHECK(pod_session["spec"] == json{{"target", {{"pod", "order-1"}}}, {"ttl", "15m"}, {"reason", "heap grows"}});
  CHECK_FALSE(pod_session["spec"].contains("requestedBy"));  // the webhook's job

  req.target = {Target::Kind::kDeployment, "order"};
  req.selector = s.selector;
  req.reason.clear();
  req.ttl = 90min;
  json deploy_session = BuildSession(req);
  CHECK(deploy_session["spec"]["target"] == json{{"selector", s.selector}});
  CHECK(deploy_session["spec"]["ttl"] == "1h30m");
  CHECK_FALSE(deploy_session["spec"].contains("reason"));
}

TEST_CASE("cli: progress lines and outcomes") {
  CHECK(SessionOutcome(json::object()) == Outcome::kWaiting);
  CHECK(ProgressLine(json::object()).find("Waiting for graydebug-controller") == 0);
  CHECK(ProgressLine(json("garbage")).find("Waiting") == 0);

  json pending =
      SessionWith({{"phase", "Pending"},
                   {"conditions", {Cond("Attached", "False", "PodNotFound", "no injected pod x in namespace shop")}}});
  CHECK(SessionOutcome(pending) == Outcome::kWaiting);
  CHECK(ProgressLine(pending) == "Pending: PodNotFound: no injected pod x in namespace shop");
  CHECK(ProgressLine(SessionWith({{"phase", "Pending"}})) == "Pending…");

  CHECK(ProgressLine(SessionWith({{"phase", "Attaching"}})) == "Attaching…");
  json retrying = SessionWith({{"phase", "Attaching"},
                               {"attach", {{"attempts", 1}}},
                               {"conditions", {Cond("Attached", "False", "AttachRetrying", "connection refused")}}});
  CHECK(ProgressLine(retrying) == "Attaching: attempt 1 failed: connection refused; retrying…");

  json active = SessionWith({{"phase", "Active"}, {"attach", {{"latencySeconds", 0.012}, {"attempts", 1}}}});
  CHECK(SessionOutcome(active) == Outcome::kActive);
  CHECK(ProgressLine(active) == "Active: attached in 12ms");
  CHECK(ProgressLine(SessionWith({{"phase", "Active"}, {"attach", {{"latencySeconds", 0.0004}}}})) ==
        "Active: attached in 0.4ms");

  json failed = SessionWith({{"phase", "Failed"},
                             {"attach", {{"attempts", 3}, {"lastError", "connection refused"}}},
                             {"conditions",
                              {Cond("Attached", "False", "AttachFailed", "dial 127.0.0.1:1: connection refused"),
                               Cond("Ready", "False", "AttachFailed", "dial 127.0.0.1:1: connection refused")}}});
  CHECK(SessionOutcome(failed) == Outcome::kFailed);
  CHECK(FailureLine(failed) == "Failed: AttachFailed: dial 127.0.0.1:1: connection refused (3 attempts)");
  json rejected = SessionWith(
      {{"phase", "Rejected"},
       {"conditions", {Cond("Ready", "False", "CircuitOpen", "the circuit breaker of release shop/v2 is open")}}});
  CHECK(SessionOutcome(rejected) == Outcome::kFailed);
  CHECK(FailureLine(rejected) == "Rejected: CircuitOpen: the circuit breaker of release shop/v2 is open");
  CHECK(SessionOutcome(SessionWith({{"phase", "Expired"}})) == Outcome::kEnded);
  CHECK(SessionOutcome(SessionWith({{"phase", "Terminated"}})) == Outcome::kEnded);
  CHECK(FailureLine(SessionWith({{"phase", "Terminated"}})) == "Terminated: no reason given");

  // Hostile status text stays on one line.
  json hostile = SessionWith(
      {{"phase", "Failed"}, {"conditions", {Cond("Ready", "False", "X", "line1\nline2\x1b[2J\r\xc2\x9b")}}});
  CHECK(FailureLine(hostile).find_first_of("\n\r\x1b") == std::string::npos);
  CHECK(FailureLine(hostile).find("\xc2\x9b") == std::string::npos);
  json wrong_types = SessionWith({{"phase", 5}, {"conditions", "x"}, {"attach", {{"latencySeconds", "fast"}}}});
  CHECK_NOTHROW(ProgressLine(wrong_types));
  CHECK_NOTHROW(FailureLine(wrong_types));
}

TEST_CASE("cli: dlv port, launch.json, port-forward argv, summary") {
  json pod = {{"metadata", {{"annotations", {{"graydebug.io/status", R"({"dlvPort":40000,"agentPort":9102})"}}}}}};
  CHECK(DlvPortOfPod(pod) == 40000);
  CHECK(DlvPortOfPod(json::object()) == 2345);
  CHECK(DlvPortOfPod(json{{"metadata", {{"annotations", {{"graydebug.io/status", "not json"}}}}}}) == 2345);
  CHECK(DlvPortOfPod(json{{"metadata", {{"annotations", {{"graydebug.io/status", R"({"dlvPort":70000})"}}}}}}) == 2345);
  CHECK(DlvPortOfPod(json{{"metadata", {{"annotations", {{"graydebug.io/status", R"({"dlvPort":"1"})"}}}}}}) == 2345);

  CHECK(LaunchJson("order-1-bc2df", 2345) ==
        json::parse(R"({"name":"graydebug order-1-bc2df","type":"go","request":"attach",
                                                            "mode":"remote","port":2345,"host":"127.0.0.1"})"));

  PortForward pf;
  pf.kubectl = "/usr/bin/kubectl";
  pf.namespace_ = "shop";
  pf.pod = "order-1";
  pf.local_port = 12345;
  pf.remote_port = 2345;
  CHECK(PortForwardArgs(pf) ==
        std::vector<std::string>{"/usr/bin/kubectl", "port-forward", "-n", "shop", "pod/order-1", "12345:2345"});
  pf.kubeconfig = "/tmp/kc";
  pf.context = "prod";
  CHECK(PortForwardArgs(pf).back() == "--context=prod");
  CHECK(PortForwardArgs(pf)[6] == "--kubeconfig=/tmp/kc");

  json active =
      SessionWith({{"phase", "Active"},
                   {"pod", "order-1"},
                   {"release", "v2-alpha"},
                   {"expiresAt", "2026-11-26T10:13:00Z"},
                   {"connect", "kubectl port-forward -n shop pod/order-1 2345:2345 && dlv connect 127.0.0.1:2345"},
                   {"attach", {{"latencySeconds", 0.012}, {"attempts", 1}}}});
  std::string summary = ActiveSummary(active, 12345, kNow);
  CHECK(summary.find("debugsession shop/order-1-bc2df is Active on pod order-1 (release v2-alpha)") !=
        std::string::npos);
  CHECK(summary.find("attached in 12ms (1 attempt); expires at 2026-11-26T10:13:00Z (in 13m)") != std::string::npos);
  CHECK(summary.find("connect: kubectl port-forward -n shop pod/order-1 2345:2345 && dlv connect 127.0.0.1:2345") !=
        std::string::npos);
  auto brace = summary.find('{');
  REQUIRE(brace != std::string::npos);
  CHECK(json::parse(summary.substr(brace)) == LaunchJson("order-1-bc2df", 12345));
}

TEST_CASE("cli: human durations like kubectl") {
  CHECK(HumanDuration(-5s) == "<invalid>");
  CHECK(HumanDuration(-1s) == "0s");
  CHECK(HumanDuration(0s) == "0s");
  CHECK(HumanDuration(119s) == "119s");
  CHECK(HumanDuration(150s) == "2m30s");
  CHECK(HumanDuration(180s) == "3m");
  CHECK(HumanDuration(15min) == "15m");
  CHECK(HumanDuration(179min) == "179m");
  CHECK(HumanDuration(200min) == "3h20m");
  CHECK(HumanDuration(3h) == "3h");
  CHECK(HumanDuration(47h) == "47h");
  CHECK(HumanDuration(52h) == "2d4h");
  CHECK(HumanDuration(24h * 10) == "10d");
  CHECK(HumanDuration(24h * 365 * 3) == "3y");
  CHECK(HumanDuration(24h * (365 * 3 + 5)) == "3y5d");
  CHECK(HumanDuration(24h * 365 * 9) == "9y");
}

TEST_CASE("cli: tables are aligned") {
  std::string t =
      FormatTable({"NAME", "PHASE"}, {{"a", "Active"}, {"longer-name", ""}, {"ü", "Pending"}, {"x\ny", "\t"}});
  auto lines = Lines(t);
  REQUIRE(lines.size() == 5);
  CHECK(lines[0] == "NAME          PHASE");
  CHECK(lines[1] == "a             Active");
  CHECK(lines[2] == "longer-name   <none>");
  CHECK(lines[3] == "ü             Pending");  // width counts characters, not bytes
  CHECK(lines[4] == "x y           <none>");   // control characters blanked; a blank cell is <none>
  for (const auto& l : lines) CHECK((l.empty() || l.back() != ' '));

  CHECK(OneLine("a\nb\x1b"
                "c") == "a b c");
  CHECK(OneLine(std::string(600, 'x')).size() == 512 + std::string("…").size());
  std::string cut = OneLine("ééééé", 3);  // never cuts inside a UTF-8 sequence
  CHECK(cut == "é…");
}

TEST_CASE("cli: the session table") {
  json list = {
      {"items",
       {{{"metadata", {{"name", "zeta"}, {"namespace", "shop"}, {"creationTimestamp", "2026-11-26T09:58:00Z"}}},
         {"spec", {{"target", {{"pod", "order-1"}}}}},
         {"status",
          {{"phase", "Active"},
           {"pod", "order-1"},
           {"release", "v2-alpha"},
           {"startedAt", "2026-11-26T09:58:01Z"},
           {"expiresAt", "2026-11-26T10:13:00Z"},
           {"attach", {{"latencySeconds", 0.012}}}}}},
        {{"metadata", {{"name", "alpha"}, {"namespace", "shop"}, {"creationTimestamp", "2026-11-26T07:00:00Z"}}},
         {"spec", {{"target", {{"pod", "order-2"}}}}},
         {"status", {{"phase", "Failed"}, {"expiresAt", "2026-11-26T07:15:00Z"}, {"attach", {{"attempts", 3}}}}}},
        {{"metadata", {{"name", "new"}, {"namespace", "api"}, {"creationTimestamp", "2026-11-26T09:59:58Z"}}},
         {"spec", {{"target", {{"selector", {{"matchLabels", {{"app", "x"}}}}}}}}}},
        "not an object",
        {{"metadata", 5}}}}};
  auto lines = Lines(SessionTable(list, false, kNow));
  REQUIRE(lines.size() == 5);
  CHECK(lines[0].rfind("NAME ", 0) == 0);
  CHECK(lines[0].find("PHASE") != std::string::npos);
  // Sorted by namespace, then name; columns start at the same offset on every line.
  CHECK(lines[1].find("<none>") == 0);  // the item without metadata
  CHECK(lines[2].rfind("new ", 0) == 0);
  CHECK(lines[3].rfind("alpha ", 0) == 0);
  CHECK(lines[4].rfind("zeta ", 0) == 0);
  const auto phase_col = lines[0].find("PHASE");
  CHECK(lines[4].substr(phase_col, 6) == "Active");
  CHECK(lines[3].substr(phase_col, 6) == "Failed");
  const auto exp_col = lines[0].find("EXPIRES");
  CHECK(lines[4].substr(exp_col, 6) == "in 13m");
  CHECK(lines[3].substr(exp_col, 2) == "- ");  // over: no expiry shown
  const auto lat_col = lines[0].find("LATENCY");
  CHECK(lines[4].substr(lat_col, 4) == "12ms");
  const auto age_col = lines[0].find("AGE");
  CHECK(lines[4].substr(age_col) == "2m");
  CHECK(lines[3].substr(age_col) == "3h");
  CHECK(lines[2].substr(age_col) == "2s");

  auto wide = Lines(SessionTable(list, true, kNow));
  CHECK(wide[0].rfind("NAMESPACE   NAME", 0) == 0);
  CHECK(wide[2].rfind("api ", 0) == 0);
  CHECK(Lines(SessionTable(json::object(), false, kNow)).size() == 1);
  CHECK(Lines(SessionTable(json("x"), false, kNow)).size() == 1);
}

TEST_CASE("cli: breakers from the ConfigMap") {
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(kNow.time_since_epoch()).count();
  json window = json::array();
  for (int i = 0; i < 20; ++i) window.push_back({now_ms - 1000 * i, i < 2 ? 0 : 1});
  json cm = {{"data",
              {{"shop.v2-alpha",
                json{{"state", "open"}, {"retryAt", now_ms + 45000}, {"trips", 1}, {"window", window}}.dump()},
               {"shop.v1", json{{"state", "closed"}, {"retryAt", 0}, {"trips", 0}, {"window", {{now_ms, 1}}}}.dump()},
               {"api.v3.1", json{{"state", "half-open"}, {"trips", 2}, {"window", json::array()}}.dump()},
               {"bad.json", "{not json"},
               {"bad.state", R"({"state":"melted"})"},
               {"bad.window", R"({"state":"closed","trips":"x","window":[[1,0],"x",[1],[1,"0"],null,[2,0]]})"},
               {"nodot", R"({"state":"closed"})"}}}};
  auto rows = BreakerRows(cm);
  REQUIRE(rows.size() == 7);
  // Sorted by key.
  CHECK(rows[0].release == "api/v3.1");
  CHECK(rows[0].state == "half-open");
  CHECK(rows[0].trips == 2);
  CHECK(rows[1].release == "bad/json");
  CHECK(rows[1].state == "unreadable");
  CHECK(rows[1].problem == "not a JSON object");
  CHECK(rows[2].problem.find("unknown state \"melted\"") != std::string::npos);
  CHECK(rows[3].state == "closed");
  CHECK(rows[3].attempts == 2);  // only the well-formed entries count
  CHECK(rows[3].failures == 2);
  CHECK(rows[3].trips == 0);
  CHECK(rows[4].release == "nodot");
  CHECK(rows[5].release == "shop/v1");
  CHECK(rows[5].attempts == 1);
  CHECK(rows[5].failures == 0);
  CHECK_FALSE(rows[5].retry_at);
  CHECK(rows[6].release == "shop/v2-alpha");
  CHECK(rows[6].attempts == 20);
  CHECK(rows[6].failures == 2);
  REQUIRE(rows[6].retry_at);

  auto lines = Lines(BreakerTable(rows, kNow));
  REQUIRE(lines.size() == 8);
  CHECK(lines[0] == "RELEASE         STATE        ATTEMPTS   FAILURES   TRIPS   RETRY AT");
  CHECK(lines[2] == "bad/json        unreadable   -          -          -       -");
  CHECK(lines[7] == "shop/v2-alpha   open         20         2          1       2026-11-26T10:00:45Z (in 45s)");
  CHECK(lines[6] == "shop/v1         closed       1          0          0       -");

  json j = BreakerJson(rows);
  CHECK(j["shop/v2-alpha"]["state"] == "open");
  CHECK(j["shop/v2-alpha"]["failures"] == 2);
  CHECK(j["shop/v2-alpha"]["retryAt"] == "2026-11-26T10:00:45Z");
  CHECK(j["bad/json"]["problem"] == "not a JSON object");

  CHECK(BreakerRows(json::object()).empty());
  CHECK(BreakerRows(json{{"data", "x"}}).empty());
  CHECK(BreakerRows(json{{"data", {{"a.b", 5}}}})[0].state == "unreadable");
  CHECK(BreakerTable({}, kNow).empty());
}

TEST_CASE("cli: YAML output reads back as the same JSON") {
  json v = {{"items",
             {{{"name", "x"},
               {"n", 5},
               {"f", 0.25},
               {"t", true},
               {"s", "true"},
               {"num", "0123"},
               {"e", ""},
               {"z", nullptr},
               {"list", {1, "2", "-"}},
               {"multi", "a\nb"}}}}};
  YAML::Node back = YAML::Load(ToYaml(v));
  const YAML::Node item = back["items"][0];
  CHECK(item["name"].as<std::string>() == "x");
  CHECK(item["n"].as<int>() == 5);
  CHECK(item["f"].as<double>() == 0.25);
  CHECK(item["t"].as<bool>() == true);
  CHECK(item["s"].as<std::string>() == "true");
  CHECK(item["s"].Tag() == "!");  // quoted: a string, not a bool
  CHECK(item["num"].Tag() == "!");
  CHECK(item["e"].as<std::string>() == "");
  CHECK(item["z"].IsNull());
  CHECK(item["list"][1].Tag() == "!");
  CHECK(item["multi"].as<std::string>() == "a\nb");
}

TEST_CASE("cli: label selectors like kubectl's, hostile ones refused") {
  auto r = ParseLabelSelector("app=order, version==v2,tier!=db,canary,!debug");
  REQUIRE_MESSAGE(r.error.empty(), r.error);
  CHECK(r.selector["matchLabels"] == nlohmann::json{{"app", "order"}, {"version", "v2"}});
  CHECK(r.selector["matchExpressions"].size() == 3);
  CHECK(r.selector["matchExpressions"][0] ==
        nlohmann::json{{"key", "tier"}, {"operator", "NotIn"}, {"values", {"db"}}});
  CHECK(r.selector["matchExpressions"][1]["operator"] == "Exists");
  CHECK(r.selector["matchExpressions"][2]["operator"] == "DoesNotExist");
  for (const char* bad : {"", ",", "app=", "=x", "app in (a,b)", "a=b c", "a=$(rm -rf /)", "a,,b"}) {
    CAPTURE(bad);
    auto e = ParseLabelSelector(bad);
    if (std::string(bad) == "app=") {
      CHECK(e.error.empty());  // an empty value is a valid label value
      continue;
    }
    CHECK_FALSE(e.error.empty());
    CHECK(e.error.find('\n') == std::string::npos);
  }
}

TEST_CASE("cli: completion scripts name every command") {
  for (const char* shell : {"bash", "zsh"}) {
    std::string script = CompletionScript(shell);
    for (const char* word : {"attach", "list", "end", "status", "--keep", "--selector"}) {
      CHECK_MESSAGE(script.find(word) != std::string::npos, shell, " ", word);
    }
  }
}
