// Informer benchmark: N pods on the local control plane; list+watch sync time, watch events/s,
// resident memory per cached object. Prints one JSON line. Run by bench/informer.bench.sh.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <sstream>
#include <iostream>
#include <thread>

#include "graydebug/cli_app.h"
#include "graydebug/kube/informer.h"
#include "graydebug/memory.h"
#include "kube/packed_page.h"

using namespace graydebug;
using nlohmann::json;

namespace {

long RssKiB() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return 0;
}

json Pod(const std::string& name) {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata",
           {{"name", name},
            {"labels", {{"app", "order"}, {"version", "v2-alpha"}, {"graydebug.io/injected", "true"}}},
            {"annotations", {{"graydebug.io/status", R"({"containers":["dlv-server","graydebug-agent"]})"}}}}},
          {"spec",
           {{"shareProcessNamespace", true},
            {"containers",
             {{{"name", "order"}, {"image", "shop/order:v2-alpha"}, {"ports", {{{"containerPort", 8080}}}}},
              {{"name", "dlv-server"}, {"image", "graydebug/graydebug:0.1.0"}, {"args", {"launch-dlv"}}},
              {{"name", "graydebug-agent"},
               {"image", "graydebug/graydebug:0.1.0"},
               {"ports", {{{"containerPort", 9102}}}}}}}}}};
}

}  // namespace

int main(int argc, char** argv) {
  std::string kubeconfig, ns = "bench";
  int64_t count = 10000, updates = 2000, create = 1, page_size = kube::InformerOptions{}.page_size, protobuf = 1;
  CommonFlags common{"warn", "json"};
  FlagSet flags("informer_bench", "informer_bench --kubeconfig F", "informer benchmark");
  flags.String("kubeconfig", &kubeconfig, "kubeconfig");
  flags.String("namespace", &ns, "namespace");
  flags.Int("count", &count, 1, 1000000, "pods");
  flags.Int("updates", &updates, 0, 1000000, "updates to time through the watch");
  flags.Int("create", &create, 0, 1, "create the pods first");
  flags.Int("page-size", &page_size, 0, 1000000, "list page size (0: the whole list in one response)");
  flags.Int("protobuf", &protobuf, 0, 1, "list as protobuf (the informer's default; 0: as JSON)");
  std::string decode;
  flags.String("decode", &decode, "only time the informer's decoder on this saved list body (JSON or protobuf)");
  common.Register(flags);
  if (auto code = ParseCommandLine(flags, common, "bench", ArgsOf(argc, argv), nullptr)) return *code;
  if (!decode.empty()) {
    // The list's decode alone, in this process: what the informer adds to the API server's time.
    std::ifstream in(decode, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string body = ss.str();
    std::vector<double> times;
    std::size_t items = 0, packed_bytes = 0;
    for (int run = 0; run < 7; ++run) {
      kube::PagePacker packer;
      std::string cont, rv;
      items = packed_bytes = 0;
      auto t = std::chrono::steady_clock::now();
      std::string why = packer.Pack(
          body,
          [&](std::string_view, std::string_view, std::string, std::vector<std::uint8_t> p) {
            ++items;
            packed_bytes += p.size();
          },
          &cont, &rv);
      times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count());
      if (!why.empty()) return std::cerr << "informer_bench: " << why << "\n", 1;
    }
    std::sort(times.begin(), times.end());
    std::cout << json{{"impl", "decode"},        {"protobuf", kube::IsProtobuf(body)}, {"bytes", body.size()},
                      {"items", items},          {"packed_bytes", packed_bytes},        {"median_seconds", times[3]},
                      {"min_seconds", times[0]}, {"max_seconds", times.back()}}
                     .dump()
              << std::endl;
    return 0;
  }
  kube::ConfigOptions co;
  co.kubeconfig = kubeconfig;
  auto cfg = kube::LoadConfig(co);
  if (!cfg.ok) return std::cerr << cfg.error << "\n", 1;
  kube::ClientOptions opts;
  opts.qps = 0;
  auto client = kube::Client::Create(cfg.config, opts).value();
  if (create != 0) {
    (void)client->Create(kube::Resource::Namespaces(), "",
                         {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}});
    std::vector<std::thread> workers;
    std::atomic<int64_t> next{0};
    for (int w = 0; w < 8; ++w) {
      workers.emplace_back([&] {
        for (int64_t i = next++; i < count; i = next++) {
          auto r = client->Create(kube::Resource::Pods(), ns, Pod("pod-" + std::to_string(i)));
          if (!r.ok() && r.error().kind != kube::ErrorKind::kAlreadyExists) std::cerr << r.error().ToString() << "\n";
        }
      });
    }
    for (auto& t : workers) t.join();
    return 0;
  }
  KeepLargeAllocationsMapped();  // as the manager does in graydebug's servers
  long rss_before = RssKiB();
  std::atomic<int64_t> modified{0};
  kube::InformerOptions io;
  io.label_selector = "graydebug.io/injected=true";
  io.page_size = page_size;
  io.protobuf = protobuf != 0;
  kube::Informer informer(client, kube::Resource::Pods(), ns, io);
  informer.AddHandlers({nullptr, [&](const json&, const json&) { modified++; }, nullptr});
  auto t0 = std::chrono::steady_clock::now();
  informer.Start();
  while (!informer.HasSynced()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  double sync_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  long rss_after = RssKiB();
  // Updates made by another client; timed until the informer has seen them all. Each side writes
  // its own values: a patch that changes nothing makes no watch event.
  auto writer = kube::Client::Create(cfg.config, opts).value();
  auto t1 = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  std::atomic<int64_t> next{0};
  for (int w = 0; w < 8; ++w) {
    workers.emplace_back([&] {
      for (int64_t i = next++; i < updates; i = next++) {
        (void)writer->Patch(kube::Resource::Pods(), ns, "pod-" + std::to_string(i % count), kube::PatchType::kMerge,
                            R"({"metadata":{"annotations":{"bench":")" + std::string(protobuf != 0 ? "pb-" : "json-") +
                                std::to_string(i) + R"("}}})");
      }
    });
  }
  for (auto& t : workers) t.join();
  while (modified.load() < updates) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  double upd_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  json out = {{"impl", protobuf != 0 ? "graydebug" : "graydebug-json"},
              {"protobuf_pages", informer.ProtobufPages()},
              {"objects", informer.Size()},
              {"sync_seconds", sync_s},
              {"rss_kib_before", rss_before},
              {"rss_kib_after_sync", rss_after},
              {"kib_per_object", static_cast<double>(rss_after - rss_before) / static_cast<double>(informer.Size())},
              {"updates", updates},
              {"update_events_per_second", static_cast<double>(updates) / upd_s}};
  informer.Stop();
  std::cout << out.dump() << std::endl;
  return 0;
}
