#include "webhook/config_reload.h"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "graydebug/kube/config.h"

using json = nlohmann::json;
using namespace graydebug::webhook;
namespace fs = std::filesystem;

namespace {

std::string Read(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void Write(const fs::path& p, const std::string& text) {
  // As a ConfigMap volume does: a new file renamed over the old one.
  fs::path tmp = p.string() + ".new";
  std::ofstream(tmp) << text;
  fs::rename(tmp, p);
}

std::string Review() {
  json pod = json::parse(Read(fs::path(GRAYDEBUG_SOURCE_DIR) / "tests/fixtures/injector/simple-gray.pod.json"));
  return json{{"apiVersion", "admission.k8s.io/v1"},
              {"kind", "AdmissionReview"},
              {"request",
               {{"uid", "u1"},
                {"kind", {{"group", ""}, {"version", "v1"}, {"kind", "Pod"}}},
                {"resource", {{"group", ""}, {"version", "v1"}, {"resource", "pods"}}},
                {"namespace", "shop"},
                {"operation", "CREATE"},
                {"object", pod}}}}
      .dump();
}

// The dlv --listen argument the handler injects.
std::string DlvListen(const AdmissionHandler& h) {
  AdmissionReply r = h.MutatePods("application/json", Review());
  REQUIRE(r.status == 200);
  json body = json::parse(r.body);
  std::string raw;
  REQUIRE(graydebug::kube::DecodeBase64(body["response"]["patch"].get<std::string>(), &raw));
  for (const auto& op : json::parse(raw)) {
    if (op["value"].is_object() && op["value"].value("name", "") == "dlv-server") {
      for (const auto& a : op["value"]["args"]) {
        if (a.get<std::string>().rfind("--listen=", 0) == 0) return a.get<std::string>();
      }
    }
  }
  return "";
}

struct TempConfig {
  fs::path dir = fs::temp_directory_path() / ("graydebug-reload-" + std::to_string(::getpid()));
  fs::path file = dir / "config.yaml";
  TempConfig() { fs::create_directories(dir); }
  ~TempConfig() { fs::remove_all(dir); }
};

ReloadingAdmission Start(const TempConfig& t, const std::string& text) {
  Write(t.file, text);
  ConfigLoadResult c = ParseInjectionConfig(text);
  REQUIRE(c.ok);
  return ReloadingAdmission(t.file.string(), text, c.config, {}, "0.0.0-test");
}

}  // namespace

TEST_CASE("config reload: a changed file takes effect; an unchanged one is not rebuilt") {
  TempConfig t;
  ReloadingAdmission a = Start(t, "dlv: {port: 2345}\n");
  std::string error;
  CHECK(DlvListen(*a.Current()) == "--listen=127.0.0.1:2345");
  CHECK(a.Check(&error) == ReloadingAdmission::Outcome::kUnchanged);
  auto before = a.Current();

  Write(t.file, "dlv: {port: 40000}\n");
  CHECK(a.Check(&error) == ReloadingAdmission::Outcome::kApplied);
  CHECK(DlvListen(*a.Current()) == "--listen=127.0.0.1:40000");
  CHECK(a.Check(&error) == ReloadingAdmission::Outcome::kUnchanged);
  // A request that started before the reload finishes with the config it started with.
  CHECK(DlvListen(*before) == "--listen=127.0.0.1:2345");
}

TEST_CASE("config reload: an invalid change is refused once, naming the field; the config in force stays") {
  TempConfig t;
  ReloadingAdmission a = Start(t, "dlv: {port: 2345}\n");
  std::string error;
  Write(t.file, "dlv: {port: 70000}\n");
  CHECK(a.Check(&error) == ReloadingAdmission::Outcome::kRefused);
  CHECK(error.find("dlv.port") != std::string::npos);
  CHECK(error.find(t.file.string()) != std::string::npos);
  CHECK(DlvListen(*a.Current()) == "--listen=127.0.0.1:2345");
  error.clear();
  CHECK(a.Check(&error) == ReloadingAdmission::Outcome::kUnchanged);  // not reported again

  // A non-loopback dlv address without the opt-in is refused like at start-up.
  Write(t.file, "dlv: {listenHost: 0.0.0.0}\n");
  CHECK(a.Check(&error) == ReloadingAdmission::Outcome::kRefused);
  CHECK(DlvListen(*a.Current()) == "--listen=127.0.0.1:2345");

  Write(t.file, "dlv: {port: 2400}\n");
  CHECK(a.Check(&error) == ReloadingAdmission::Outcome::kApplied);
  CHECK(DlvListen(*a.Current()) == "--listen=127.0.0.1:2400");
}

TEST_CASE("config reload: a missing or oversized file keeps the config in force and is reported once") {
  TempConfig t;
  ReloadingAdmission a = Start(t, "dlv: {port: 2345}\n");
  std::string error;
  fs::remove(t.file);
  CHECK(a.Check(&error) == ReloadingAdmission::Outcome::kRefused);
  CHECK(!error.empty());
  CHECK(a.Check(&error) == ReloadingAdmission::Outcome::kUnchanged);
  CHECK(DlvListen(*a.Current()) == "--listen=127.0.0.1:2345");

  Write(t.file, "# " + std::string(2 << 20, 'x') + "\n");  // past the 1 MiB limit
  error.clear();
  CHECK(a.Check(&error) == ReloadingAdmission::Outcome::kRefused);
  CHECK(DlvListen(*a.Current()) == "--listen=127.0.0.1:2345");

  // The same text as the one in force, put back after the file went missing: nothing to rebuild.
  Write(t.file, "dlv: {port: 2345}\n");
  CHECK(a.Check(&error) == ReloadingAdmission::Outcome::kUnchanged);
}

TEST_CASE("config reload: built-in defaults (no file) never reload") {
  ReloadingAdmission a("", "", InjectionConfig{}, {}, "0.0.0-test");
  std::string error;
  CHECK(a.Check(&error) == ReloadingAdmission::Outcome::kUnchanged);
  CHECK(DlvListen(*a.Current()) == "--listen=127.0.0.1:2345");
}
