// `make reliability`: soaks of SOAK_MINUTES (default 10) each.
//  - webhook: steady admission load (direct HTTPS AdmissionReviews and real pod creations through
//    the kube-apiserver), its serving certificate rotated every 30 s and its config changed every
//    minute (each change must be reloaded and the last one in force): zero failed admissions,
//    resident memory flat.
//  - controller: 500 sessions churning through every final phase (Expired, Failed, Terminated):
//    each reaches the phase it should, nothing stays behind, resident memory flat.
// "Flat": the resident set at the end is at most the one after the warm-up (the first fifth of
// the run) plus kRssSlackKiB.
#include <doctest/doctest.h>
#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "support/gray_pod.h"
#include "support/webhook_process.h"

using namespace graydebug::testing;
namespace fs = std::filesystem;

namespace {

constexpr long kRssSlackKiB = 16 * 1024;

std::chrono::seconds SoakDuration() {
  const char* m = std::getenv("SOAK_MINUTES");
  double minutes = m != nullptr ? std::atof(m) : 10.0;
  if (minutes <= 0) minutes = 10.0;
  return std::chrono::seconds(static_cast<long>(minutes * 60));
}

long RssKiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

json GrayPodSpec(const std::string& name) {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata",
           {{"name", name}, {"labels", {{"app", "order"}, {"version", "v2"}, {"graydebug.io/inject", "true"}}}}},
          {"spec", {{"containers", {{{"name", "order"}, {"image", "registry.example.com/order:v2"}}}}}}};
}

// Samples a process' RSS every few seconds; remembers the sample at the end of the warm-up.
struct RssWatch {
  pid_t pid;
  std::chrono::steady_clock::time_point warm_at;
  long warm = -1, peak = 0, last = 0;
  void Sample() {
    long kib = RssKiB(pid);
    if (kib <= 0) return;
    last = kib;
    peak = std::max(peak, kib);
    if (warm < 0 && std::chrono::steady_clock::now() >= warm_at) warm = kib;
  }
};

}  // namespace

TEST_CASE("soak: webhook under steady load, certificate rotated every 30 s, config changed every minute") {
  LocalCluster& c = LocalCluster::Shared();
  REQUIRE_MESSAGE(c.ok(), c.error());
  const auto duration = SoakDuration();
  std::string ns = "soak-webhook";
  REQUIRE(c.Kubectl({"create", "namespace", ns}).exit_code == 0);
  const std::string config_dir =
      (fs::temp_directory_path() / ("graydebug-soak-config-" + std::to_string(::getpid()))).string();
  fs::create_directories(config_dir);
  const std::string config = config_dir + "/config.yaml";
  // The agent's port tells which config an admission used: 9100 + the number of the change.
  auto write_config = [&](int n) {
    std::ofstream(config + ".tmp") << "agent: {port: " << 9100 + n << "}\n";
    fs::rename(config + ".tmp", config);  // as a ConfigMap volume swaps its files
  };
  write_config(0);
  Webhook w;
  REQUIRE(w.Start(c.kubeconfig(), config, {"--log-level=info"}));
  REQUIRE_MESSAGE(w.WaitReady(), w.child->Output());
  json cfg = json::parse(WebhookConfiguration(w, "graydebug-soak"));
  cfg["webhooks"].erase(1);  // pods only
  REQUIRE(c.Kubectl({"apply", "-f", "-"}, cfg.dump()).exit_code == 0);
  REQUIRE(Eventually(
      [&] {
        auto r = c.Kubectl({"create", "-n", ns, "--dry-run=server", "-o", "json", "-f", "-"}, GrayPodSpec("p").dump());
        return r.exit_code == 0 && json::parse(r.out)["spec"]["containers"].size() == 3;
      },
      30s));

  // Direct load: batches of 200 AdmissionReviews, 20 connections in parallel.
  std::string dir = w.pki.dir();
  json review = {{"apiVersion", "admission.k8s.io/v1"},
                 {"kind", "AdmissionReview"},
                 {"request",
                  {{"uid", "soak"},
                   {"kind", {{"group", ""}, {"version", "v1"}, {"kind", "Pod"}}},
                   {"namespace", ns},
                   {"operation", "CREATE"},
                   {"object", GrayPodSpec("direct")}}}};
  std::ofstream(dir + "/review.json") << review.dump();
  {
    std::ofstream urls(dir + "/urls.txt");
    for (int i = 0; i < 200; ++i) urls << "url = \"" << w.Url("/mutate/pods") << "\"\n-o /dev/null\n";
  }
  std::atomic<bool> done{false};
  std::atomic<long> direct_ok{0}, direct_failed{0}, api_ok{0}, api_failed{0};
  std::mutex err_mu;
  std::string first_error;
  auto note = [&](const std::string& e) {
    std::lock_guard l(err_mu);
    if (first_error.empty()) first_error = e;
  };
  std::thread direct([&] {
    while (!done) {
      auto r = Run({"curl", "-sS", "--parallel", "--parallel-max", "20", "--cacert", w.pki.ca_file(), "-H",
                    "Content-Type: application/json", "--data-binary", "@" + dir + "/review.json", "-w",
                    "%{http_code}\n", "-K", dir + "/urls.txt"},
                   "", 120s);
      std::istringstream codes(r.out);
      long ok = 0, bad = 0;
      for (std::string line; std::getline(codes, line);) (line == "200" ? ok : bad)++;
      bad += 200 - ok - bad;
      direct_ok += ok;
      direct_failed += bad;
      if (bad > 0) note("direct batch: " + std::to_string(bad) + " failed: " + r.err.substr(0, 300));
    }
  });
  // Through the API server: a gray pod that comes back without sidecars is a failed admission
  // (failurePolicy Ignore hides a webhook error as an unmodified pod).
  std::vector<std::thread> api;
  for (int t = 0; t < 2; ++t) {
    api.emplace_back([&, t] {
      for (int i = 0; !done; ++i) {
        auto r = c.Kubectl({"create", "-n", ns, "--dry-run=server", "-o", "json", "-f", "-"},
                           GrayPodSpec("api-" + std::to_string(t) + "-" + std::to_string(i)).dump());
        json pod = json::parse(r.out, nullptr, false);
        if (r.exit_code == 0 && pod.is_object() && pod["spec"]["containers"].size() == 3) {
          api_ok++;
        } else {
          api_failed++;
          note("through the API server: " + r.err + r.out.substr(0, 300));
        }
      }
    });
  }

  RssWatch rss{w.child->pid(), std::chrono::steady_clock::now() + duration / 5};
  const auto start = std::chrono::steady_clock::now();
  auto next_rotation = start + 30s;
  auto next_config = start + 45s;  // every minute, between two rotations
  int rotations = 0, config_changes = 0;
  while (std::chrono::steady_clock::now() - start < duration) {
    std::this_thread::sleep_for(2s);  // sampling period of the soak, not a wait for a result
    rss.Sample();
    if (std::chrono::steady_clock::now() >= next_rotation) {
      next_rotation += 30s;
      std::string cn = "graydebug-webhook-r" + std::to_string(++rotations);
      REQUIRE(w.pki.Issue("next", cn));
      fs::rename(dir + "/next.key", dir + "/serving.key.tmp");
      fs::rename(dir + "/next.crt", dir + "/serving.crt.tmp");
      fs::rename(dir + "/serving.key.tmp", dir + "/serving.key");
      fs::rename(dir + "/serving.crt.tmp", dir + "/serving.crt");
    }
    if (std::chrono::steady_clock::now() >= next_config) {
      next_config += 60s;
      write_config(++config_changes);
    }
  }
  done = true;
  direct.join();
  for (auto& t : api) t.join();
  rss.Sample();

  // The last rotation may be a moment old: the webhook checks its files every second.
  long reloads = 0;
  auto count_reloads = [&] {
    const std::string out = w.child->Output();
    reloads = 0;
    for (std::size_t at = 0; (at = out.find("tls certificate reloaded", at)) != std::string::npos; ++at) ++reloads;
    return reloads == rotations;
  };
  CHECK(Eventually(count_reloads, 10s));
  long config_reloads = 0;
  auto count_config_reloads = [&] {
    const std::string out = w.child->Output();
    config_reloads = 0;
    for (std::size_t at = 0; (at = out.find("injection config reloaded", at)) != std::string::npos; ++at) {
      ++config_reloads;
    }
    return config_reloads == config_changes;
  };
  CHECK(Eventually(count_config_reloads, 10s));
  // The last config is the one in force: a gray pod through the API server gets its agent port.
  CHECK(Eventually(
      [&] {
        auto r =
            c.Kubectl({"create", "-n", ns, "--dry-run=server", "-o", "json", "-f", "-"}, GrayPodSpec("last").dump());
        json pod = json::parse(r.out, nullptr, false);
        if (r.exit_code != 0 || !pod.is_object()) return false;
        for (const auto& ctr : pod["spec"]["containers"]) {
          if (ctr.value("name", "") == "graydebug-agent") {
            return ctr["ports"][0]["containerPort"] == 9100 + config_changes;
          }
        }
        return false;
      },
      10s));
  MESSAGE("webhook soak " << duration.count() << " s: " << direct_ok.load() << " direct + " << api_ok.load()
                          << " through the API server admitted with injection; failed " << direct_failed.load() << " + "
                          << api_failed.load() << "; certificate rotations " << rotations << " (reloads logged "
                          << reloads << "); config changes " << config_changes << " (reloads logged " << config_reloads
                          << "); RSS KiB after warm-up " << rss.warm << ", peak " << rss.peak << ", end " << rss.last);
  CHECK_MESSAGE(direct_failed == 0, first_error);
  CHECK_MESSAGE(api_failed == 0, first_error);
  CHECK(direct_ok > 0);
  CHECK(api_ok > 0);
  CHECK(rss.warm > 0);
  CHECK(rss.last <= rss.warm + kRssSlackKiB);
  CHECK(Run({"sh", "-c",
             "openssl s_client -connect 127.0.0.1:" + std::to_string(w.port) +
                 " </dev/null 2>/dev/null | openssl x509 -noout -subject"})
            .out.find("graydebug-webhook-r" + std::to_string(rotations)) != std::string::npos);

  w.child->Signal(SIGTERM);
  const int code = w.child->Wait(20s);
  const std::string log = w.child->Output();
  CHECK_MESSAGE(code == 0, log.substr(log.size() > 3000 ? log.size() - 3000 : 0));
  c.Kubectl({"delete", "mutatingwebhookconfiguration", "graydebug-soak", "--ignore-not-found"});
  c.Kubectl({"delete", "namespace", ns, "--wait=false"});
  fs::remove_all(config_dir);
}

TEST_CASE("soak: controller with 500 sessions churning through every final phase") {
  LocalCluster& c = LocalCluster::Shared();
  REQUIRE_MESSAGE(c.ok(), c.error());
  REQUIRE(InstallCrd(c));
  const auto duration = SoakDuration();
  std::string ns = "soak-ctl";
  REQUIRE(c.Kubectl({"create", "namespace", ns}).exit_code == 0);
  std::string dir = (fs::temp_directory_path() / ("graydebug-soak-ctl-" + std::to_string(getpid()))).string();
  fs::create_directories(dir);
  GrayPod live(dir, "order-v2-live");
  REQUIRE_MESSAGE(live.StartProcesses(), (live.agent ? live.agent->Output() : ""));
  REQUIRE(CreateRunningPod(c, live, ns));
  GrayPod dead(dir, "order-v2-dead");  // its agent port refuses: attaches fail
  REQUIRE(CreateRunningPod(c, dead, ns));

  // Failures must end sessions as Failed, not trip the breaker (that path has its own test).
  std::string config = dir + "/controller.yaml";
  std::ofstream(config) << "breaker:\n  maxWindowAttempts: 100000\n  minAttempts: 100000\n";
  auto controller = Child::Spawn({Bin("graydebug-controller"), "--kubeconfig=" + c.kubeconfig(),
                                  "--metrics-addr=127.0.0.1:0", "--health-addr=127.0.0.1:0", "--namespace=" + ns,
                                  "--lease-namespace=" + ns, "--probe-interval=5s", "--config=" + config},
                                 dir + "/controller.log");
  REQUIRE(controller);

  // Session i: i%5 in {0,1,2} ttl 1m on the live pod -> Expired; 3 on the dead pod -> Failed;
  // 4 on a pod of its own (the live pod's processes) that is deleted once the session is Active
  // -> Terminated.
  constexpr int kSessions = 500;
  auto expected = [](int i) {
    int k = i % 5;
    return k <= 2 ? "Expired" : k == 3 ? "Failed" : "Terminated";
  };
  std::mutex mu;
  std::map<std::string, int> pending;  // session name -> index, not yet final
  std::map<std::string, std::string> wrong;
  std::map<std::string, int> reached;  // final phase -> count
  std::set<std::string> deleting_pod;
  std::atomic<bool> creating_done{false};
  const auto interval = std::chrono::duration_cast<std::chrono::milliseconds>(duration) / kSessions;

  std::thread creator([&] {
    auto next = std::chrono::steady_clock::now();
    for (int i = 0; i < kSessions; ++i) {
      std::string name = "soak-" + std::to_string(i);
      std::string target = live.name;
      if (i % 5 == 3) target = dead.name;
      if (i % 5 == 4) {
        GrayPod own(dir, "order-v2-own-" + std::to_string(i));
        own.dlv_port = live.dlv_port;
        own.agent_port = live.agent_port;
        Eventually([&] { return CreateRunningPod(c, own, ns); }, 30s);
        target = own.name;
      }
      json s = Session(name, target);
      s["spec"]["ttl"] = "1m";
      Eventually([&] { return c.Kubectl({"create", "-n", ns, "-f", "-"}, s.dump()).exit_code == 0; }, 30s);
      {
        std::lock_guard l(mu);
        pending[name] = i;
      }
      next += interval;
      std::this_thread::sleep_until(next);  // the pace of the load
    }
    creating_done = true;
  });

  RssWatch rss{controller->pid(), std::chrono::steady_clock::now() + duration / 5};
  // Checker: ends each session once final (deleting it), deletes the pod of a "Terminated" one
  // once it is Active.
  auto check_once = [&] {
    auto r = c.Kubectl({"get", "debugsessions", "-n", ns, "-o", "json"});
    json all = json::parse(r.out, nullptr, false);
    if (r.exit_code != 0 || !all.is_object()) return;
    std::vector<std::string> to_delete;
    for (const auto& s : all["items"]) {
      std::string name = s["metadata"]["name"], phase = Phase(s);
      std::lock_guard l(mu);
      auto it = pending.find(name);
      if (it == pending.end()) continue;
      int i = it->second;
      if (phase == "Active" && i % 5 == 4 && deleting_pod.insert(name).second) {
        c.Kubectl({"delete", "pod", "-n", ns, "order-v2-own-" + std::to_string(i), "--wait=false"});
      }
      if (phase == "Expired" || phase == "Failed" || phase == "Terminated" || phase == "Rejected") {
        reached[phase]++;
        if (phase != expected(i)) wrong[name] = phase + " (expected " + expected(i) + "): " + s["status"].dump();
        pending.erase(it);
        to_delete.push_back(name);
      }
    }
    for (const auto& n : to_delete) c.Kubectl({"delete", "debugsession", "-n", ns, n, "--wait=false"});
  };
  while (!creating_done) {
    check_once();
    rss.Sample();
    std::this_thread::sleep_for(1s);  // polling period
  }
  creator.join();
  // The last sessions expire a minute after their creation.
  CHECK(Eventually(
      [&] {
        check_once();
        std::lock_guard l(mu);
        return pending.empty();
      },
      180s));
  rss.Sample();
  std::string metrics_port = ControllerMetricsPort(*controller);
  std::string m = Run({"curl", "-sS", "http://127.0.0.1:" + metrics_port + "/metrics"}).out;

  int final_count = 0;
  for (const auto& [p, n] : reached) final_count += n;
  MESSAGE("controller soak " << duration.count() << " s: " << final_count << " sessions final (Expired "
                             << reached["Expired"] << ", Failed " << reached["Failed"] << ", Terminated "
                             << reached["Terminated"] << ", Rejected " << reached["Rejected"] << "), wrong "
                             << wrong.size() << "; RSS KiB after warm-up " << rss.warm << ", peak " << rss.peak
                             << ", end " << rss.last);
  CHECK_MESSAGE(pending.empty(), json(pending).dump());
  CHECK_MESSAGE(wrong.empty(), json(wrong).dump());
  CHECK(final_count == kSessions);
  CHECK(reached["Expired"] == kSessions * 3 / 5);
  CHECK(reached["Failed"] == kSessions / 5);
  CHECK(reached["Terminated"] == kSessions / 5);
  CHECK(rss.warm > 0);
  CHECK(rss.last <= rss.warm + kRssSlackKiB);
  // Every session's series went with it.
  CHECK(Eventually(
      [&] {
        m = Run({"curl", "-sS", "http://127.0.0.1:" + metrics_port + "/metrics"}).out;
        return m.find("debug_session_active{") == std::string::npos;
      },
      30s));
  CHECK(Eventually(
      [&] {
        json all = json::parse(c.Kubectl({"get", "debugsessions", "-n", ns, "-o", "json"}).out, nullptr, false);
        return all.is_object() && all["items"].empty();
      },
      60s));
  CHECK(controller->Wait(std::chrono::milliseconds(0)) == -2);
  controller->Signal(SIGTERM);
  CHECK(controller->Wait(30s) == 0);
  for (auto* ch : {live.agent.get(), live.launcher.get(), live.app.get()}) ch->Signal(SIGTERM);
  c.Kubectl({"delete", "namespace", ns, "--wait=false"});
  fs::remove_all(dir);
}
