#include "webhook/sidecar_injector.h"

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace graydebug::webhook;
namespace api = graydebug::api;

namespace {

const fs::path kFixtures = fs::path(GRAYDEBUG_SOURCE_DIR) / "tests/fixtures/injector";
constexpr const char* kVersion = "0.0.0-test";  // fixed so goldens do not change with releases

std::string Slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

InjectionConfig ConfigFor(const fs::path& pod_file) {
  fs::path cfg = pod_file;
  cfg.replace_extension().replace_extension(".config.yaml");
  if (!fs::exists(cfg)) return {};
  auto r = ParseInjectionConfig(Slurp(cfg));
  REQUIRE_MESSAGE(r.ok, r.error);
  return r.config;
}

std::vector<fs::path> PodFixtures() {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(kFixtures)) {
    if (e.path().string().ends_with(".pod.json")) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

InjectionContext Ctx(std::string ns = "shop") {
  InjectionContext c;
  c.namespace_name = std::move(ns);
  return c;
}

// Properties every decision must have (issue #4): a valid pod that keeps every original container,
// label and annotation; a second injection changes nothing; a skip changes nothing.
void CheckProperties(const SidecarInjector& inj, const json& pod, const InjectionResult& r, const std::string& name) {
  CAPTURE(name);
  if (!r.inject) {
    CHECK(r.patch.empty());
    CHECK_FALSE(r.reason.empty());
    return;
  }
  CHECK(r.reason.empty());
  json out = pod.patch(r.PatchJson());
  const json& spec = out["spec"];
  CHECK(spec["shareProcessNamespace"] == true);
  std::set<std::string> names;
  for (const char* list : {"containers", "initContainers"}) {
    if (!spec.contains(list)) continue;
    for (const json& c : spec[list]) {
      CHECK(c["name"].is_string());
      CHECK_MESSAGE(names.insert(c["name"].get<std::string>()).second, "duplicate container ", c["name"]);
      if (c.contains("restartPolicy") || list == std::string("containers")) {
        if (c["name"] == api::kDlvContainer || c["name"] == api::kAgentContainer) {
          CHECK(c["resources"]["requests"].contains("memory"));
          CHECK(c["resources"]["limits"].contains("memory"));
        }
      }
    }
  }
  CHECK(names.count(api::kDlvContainer) == 1);
  CHECK(names.count(api::kAgentContainer) == 1);
  // Every original container is kept, unchanged and in place.
  for (const char* list : {"containers", "initContainers"}) {
    if (!pod["spec"].contains(list)) continue;
    for (std::size_t i = 0; i < pod["spec"][list].size(); ++i) CHECK(spec[list][i] == pod["spec"][list][i]);
  }
  for (const char* map : {"labels", "annotations"}) {
    if (!pod["metadata"].contains(map)) continue;
    for (const auto& [k, v] : pod["metadata"][map].items()) CHECK(out["metadata"][map][k] == v);
  }
  CHECK(out["metadata"]["labels"][api::kInjectedLabel] == "true");
  json status = json::parse(out["metadata"]["annotations"][api::kStatusAnnotation].get<std::string>());
  CHECK(status["containers"] == json{api::kDlvContainer, api::kAgentContainer});
  // dlv: SYS_PTRACE and loopback; the agent: no added capability, non-root.
  for (const char* list : {"containers", "initContainers"}) {
    if (!spec.contains(list)) continue;
    for (const json& c : spec[list]) {
      if (c["name"] == api::kDlvContainer) {
        CHECK(c["securityContext"]["capabilities"]["add"] == json{"SYS_PTRACE"});
        CHECK(c["args"][1].get<std::string>().rfind("--listen=127.0.0.1:", 0) == 0);
      } else if (c["name"] == api::kAgentContainer) {
        CHECK_FALSE(c["securityContext"]["capabilities"].contains("add"));
        CHECK(c["securityContext"]["runAsNonRoot"] == true);
        CHECK(c["securityContext"]["allowPrivilegeEscalation"] == false);
      } else if (c.contains("securityContext") && c["securityContext"].contains("capabilities")) {
        CHECK_FALSE(c["securityContext"]["capabilities"].contains("add"));  // untouched apps
      }
    }
  }
  // Idempotent.
  InjectionResult again = inj.Inject(out, Ctx());
  CHECK_FALSE(again.inject);
  CHECK(again.reason == "already-injected");
  CHECK(again.patch.empty());
}

}  // namespace

TEST_CASE("golden: injector decisions and patched pods match tests/fixtures/injector") {
  bool update = std::getenv("GRAYDEBUG_UPDATE_GOLDEN") != nullptr;
  auto fixtures = PodFixtures();
  REQUIRE(fixtures.size() >= 10);
  for (const fs::path& pod_file : fixtures) {
    CAPTURE(pod_file.filename().string());
    SidecarInjector inj(ConfigFor(pod_file), kVersion);
    json pod = json::parse(Slurp(pod_file));
    InjectionResult r = inj.Inject(pod, Ctx());
    json got = {{"inject", r.inject},     {"reason", r.reason},
                {"message", r.message},   {"release", r.release_key},
                {"patch", r.PatchJson()}, {"patched", r.inject ? pod.patch(r.PatchJson()) : pod}};
    fs::path golden = pod_file;
    golden.replace_extension().replace_extension(".golden.json");
    if (update) {
      std::ofstream(golden) << got.dump(2) << "\n";
      continue;
    }
    REQUIRE_MESSAGE(fs::exists(golden), golden.string(), " is missing: run `make golden`");
    json want = json::parse(Slurp(golden));
    CHECK_MESSAGE(got == want, golden.string(), " is stale: run `make golden` and review the diff");
    CheckProperties(inj, pod, r, pod_file.filename().string());
  }
}

TEST_CASE("no golden file is left without its input") {
  for (const auto& e : fs::directory_iterator(kFixtures)) {
    std::string n = e.path().filename().string();
    if (!n.ends_with(".golden.json")) continue;
    CHECK_MESSAGE(fs::exists(kFixtures / (n.substr(0, n.size() - 12) + ".pod.json")), n, " has no .pod.json");
  }
}

TEST_CASE("skip reasons") {
  SidecarInjector inj({}, kVersion);
  json pod = json::parse(Slurp(kFixtures / "simple-gray.pod.json"));
  auto reason = [&](const json& p, InjectionContext ctx) { return inj.Inject(p, ctx).reason; };
  CHECK(reason(pod, Ctx()).empty());
  InjectionContext update = Ctx();
  update.operation = "UPDATE";
  CHECK(reason(pod, update) == "not-create");
  InjectionContext psa = Ctx();
  for (const char* level : {"baseline", "restricted"}) {
    psa.pod_security_enforce = level;
    CHECK(reason(pod, psa) == "pod-security");
  }
  psa.pod_security_enforce = "privileged";
  CHECK(reason(pod, psa).empty());

  struct OpenFor : BreakerView {
    BreakerGate Admit(const std::string& key, int, bool) override {
      return key == "shop/v2-alpha" ? BreakerGate::kOpen : BreakerGate::kClosed;
    }
  } breakers;
  InjectionContext open = Ctx();
  open.breakers = &breakers;
  CHECK(reason(pod, open) == "circuit-open");
  CHECK(inj.Inject(pod, open).release_key == "shop/v2-alpha");
  InjectionContext other_ns = Ctx("other");
  other_ns.breakers = &breakers;
  CHECK(reason(pod, other_ns).empty());

  json named = pod;
  named["spec"]["containers"].push_back({{"name", "dlv-server"}, {"image", "x"}});
  CHECK(reason(named, Ctx()) == "already-injected");
}

TEST_CASE("release falls back to the controller owner's name") {
  json pod = json::parse(Slurp(kFixtures / "simple-gray.pod.json"));
  CHECK(api::ReleaseOf(pod, "version") == "v2-alpha");
  CHECK(api::ReleaseOf(pod, "track") == "order-v2-alpha-7d9f8c6b5");
  pod["metadata"].erase("ownerReferences");
  CHECK(api::ReleaseOf(pod, "track").empty());
}

TEST_CASE("hostile values never throw and never inject a broken pod") {
  SidecarInjector inj({}, kVersion);
  json base = json::parse(Slurp(kFixtures / "simple-gray.pod.json"));
  std::vector<json> weird = {json(), json(42), json::array(), json::object(), json("pod")};
  // Wrong types at every interesting path.
  std::vector<std::vector<std::string>> paths = {{"metadata"},
                                                 {"metadata", "labels"},
                                                 {"metadata", "annotations"},
                                                 {"metadata", "ownerReferences"},
                                                 {"spec"},
                                                 {"spec", "containers"},
                                                 {"spec", "initContainers"},
                                                 {"spec", "shareProcessNamespace"},
                                                 {"spec", "hostNetwork"},
                                                 {"spec", "containers", "0"},
                                                 {"spec", "containers", "0", "name"},
                                                 {"spec", "containers", "0", "ports"}};
  int injected = 0, skipped = 0;
  for (const json& v : weird) {
    CHECK_NOTHROW(inj.Inject(v, Ctx()));
    for (const auto& path : paths) {
      json pod = base;
      json* at = &pod;
      for (std::size_t i = 0; i + 1 < path.size(); ++i) {
        at = at->is_array() ? &(*at)[std::stoul(path[i])] : &(*at)[path[i]];
      }
      if (at->is_array()) {
        (*at)[std::stoul(path.back())] = v;
      } else {
        (*at)[path.back()] = v;
      }
      InjectionResult r;
      REQUIRE_NOTHROW(r = inj.Inject(pod, Ctx()));
      if (!r.inject) {
        ++skipped;
        CHECK(r.patch.empty());
        continue;
      }
      ++injected;
      json out;
      REQUIRE_NOTHROW(out = pod.patch(r.PatchJson()));  // the patch applies to the very input
      CHECK(out["spec"]["shareProcessNamespace"] == true);
    }
  }
  CHECK(injected > 0);
  CHECK(skipped > 0);
}

TEST_CASE("random annotation maps: patch keeps every key, escaping included") {
  SidecarInjector inj({}, kVersion);
  json base = json::parse(Slurp(kFixtures / "simple-gray.pod.json"));
  std::mt19937 rng(12345);
  const std::string alphabet = "ab/~.-_01";
  for (int round = 0; round < 200; ++round) {
    json pod = base;
    json ann = json::object();
    int n = static_cast<int>(rng() % 6);
    for (int i = 0; i < n; ++i) {
      std::string key;
      int len = 1 + static_cast<int>(rng() % 8);
      for (int j = 0; j < len; ++j) key += alphabet[rng() % alphabet.size()];
      ann[key] = "v" + std::to_string(i);
    }
    if (rng() % 3 == 0) ann["prometheus.io/scrape"] = "false";
    if (!ann.empty()) pod["metadata"]["annotations"] = ann;
    InjectionResult r = inj.Inject(pod, Ctx());
    CheckProperties(inj, pod, r, ann.dump());
  }
}

TEST_CASE(
    "dlv-server's identity: the target's uid and gid, else root with only SYS_PTRACE, unless the pod demands "
    "non-root") {
  json pod = json::parse(Slurp(kFixtures / "simple-gray.pod.json"));
  auto id = [&](const json& p) { return DlvIdentityFor(p, "order", 65532, 65532); };
  // An image that runs as root (nothing in the pod says otherwise): root, so SYS_PTRACE is effective.
  DlvIdentity root = id(pod);
  CHECK(root.run_as_user == 0);
  CHECK(root.run_as_group == 0);
  CHECK_FALSE(root.run_as_non_root);
  CHECK(root.source == "root-ptrace");
  // The target container's ids win over the pod's; the other containers' do not count.
  json p = pod;
  p["spec"]["securityContext"] = {{"runAsUser", 2000}, {"runAsGroup", 2001}};
  CHECK(id(p).run_as_user == 2000);
  CHECK(id(p).run_as_group == 2001);
  CHECK(id(p).run_as_non_root);
  p["spec"]["containers"][0]["securityContext"] = {{"runAsUser", 1000}};
  CHECK(id(p).run_as_user == 1000);
  CHECK(id(p).run_as_group == 2001);  // the pod's group
  p["spec"]["containers"].push_back({{"name", "other"}, {"securityContext", {{"runAsUser", 7}, {"runAsGroup", 7}}}});
  CHECK(id(p).run_as_user == 1000);
  // A uid without a gid: ptrace needs both to match, so root with SYS_PTRACE.
  json uid_only = pod;
  uid_only["spec"]["securityContext"] = {{"runAsUser", 1000}};
  CHECK(id(uid_only).source == "root-ptrace");
  // The pod demands non-root: never root; the known uid (and gid) or the agent's.
  uid_only["spec"]["securityContext"]["runAsNonRoot"] = true;
  CHECK(id(uid_only).run_as_user == 1000);
  CHECK(id(uid_only).run_as_group == 1000);
  CHECK(id(uid_only).run_as_non_root);
  CHECK(id(uid_only).source == "non-root-fallback");
  json non_root = pod;
  non_root["spec"]["securityContext"] = {{"runAsNonRoot", true}};
  CHECK(id(non_root).run_as_user == 65532);
  CHECK(id(non_root).run_as_group == 65532);
  // The target container's own runAsNonRoot binds only that container: dlv-server may be root.
  json target_non_root = pod;
  target_non_root["spec"]["containers"][0]["securityContext"] = {{"runAsNonRoot", true}};
  CHECK(id(target_non_root).source == "root-ptrace");
  // Hostile values count as absent.
  json hostile = pod;
  hostile["spec"]["securityContext"] = {{"runAsUser", -1}, {"runAsGroup", "0"}, {"runAsNonRoot", "true"}};
  CHECK(id(hostile).source == "root-ptrace");
  hostile["spec"]["securityContext"] = json::array();
  CHECK(id(hostile).source == "root-ptrace");

  // The patch carries it.
  SidecarInjector inj({}, kVersion);
  json nonroot_pod = json::parse(Slurp(kFixtures / "nonroot-target.pod.json"));
  InjectionResult r = inj.Inject(nonroot_pod, InjectionContext{"CREATE", "shop", "", nullptr, false});
  REQUIRE(r.inject);
  for (const json& op : r.PatchJson()) {
    if (op["value"].is_object() && op["value"].value("name", "") == "dlv-server") {
      CHECK(op["value"]["securityContext"]["runAsUser"] == 1000);
      CHECK(op["value"]["securityContext"]["runAsGroup"] == 3000);
    }
  }
}

TEST_CASE("half-open breakers: trial pods are injected and say so; a full budget is circuit-open") {
  struct Gate : BreakerView {
    BreakerGate next = BreakerGate::kHalfOpenTrial;
    int limit = -1;
    bool consumed = false;
    BreakerGate Admit(const std::string&, int half_open_injections, bool consume) override {
      limit = half_open_injections;
      consumed = consume;
      return next;
    }
  } gate;
  InjectionConfig cfg;
  cfg.half_open_injections = 3;
  SidecarInjector inj(cfg, kVersion);
  json pod = json::parse(Slurp(kFixtures / "simple-gray.pod.json"));
  InjectionContext ctx{"CREATE", "shop", "", &gate, false};
  InjectionResult r = inj.Inject(pod, ctx);
  CHECK(r.inject);
  CHECK(r.half_open_trial);
  CHECK(gate.limit == 3);
  CHECK(gate.consumed);
  CHECK(r.message.find("a trial pod of the half-open circuit breaker of release shop/v2-alpha") != std::string::npos);
  ctx.dry_run = true;
  inj.Inject(pod, ctx);
  CHECK_FALSE(gate.consumed);
  gate.next = BreakerGate::kHalfOpenFull;
  r = inj.Inject(pod, ctx);
  CHECK(r.reason == "circuit-open");
  CHECK(r.message.find("already injected its 3 trial pods") != std::string::npos);
  // Pods that are skipped for another reason never use a trial.
  gate.limit = -1;
  json opted = pod;
  opted["metadata"]["annotations"] = {{"graydebug.io/inject", "false"}};
  CHECK(inj.Inject(opted, ctx).reason == "opted-out");
  CHECK(gate.limit == -1);
}
