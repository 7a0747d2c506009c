// graydebug-agent launch-dlv and the dlv client with a real dlv attached to the real leaky app.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "graydebug/dlv_client.h"
#include "support/gray_pod.h"
#include "support/local_cluster.h"
#include "support/process.h"

using graydebug::dlv::Client;
using graydebug::dlv::ErrorKind;
using graydebug::testing::Child;
using graydebug::testing::DlvPath;
using graydebug::testing::Eventually;
using graydebug::testing::FreePort;
using graydebug::testing::Run;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// A listener that accepts and then does `behaviour` with each connection, on its own thread.
struct FakeServer {
  int fd = -1, port = 0;
  std::thread thread;
  std::atomic<bool> done{false};
  std::atomic<int> accepted{0};
  explicit FakeServer(std::string reply) {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    listen(fd, 64);
    socklen_t len = sizeof(a);
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    thread = std::thread([this, reply] {
      std::vector<int> conns;
      while (!done) {
        int c = accept(fd, nullptr, nullptr);
        if (c < 0) break;
        accepted++;
        if (!reply.empty()) {
          char buf[4096];
          (void)!recv(c, buf, sizeof(buf), 0);
          (void)!send(c, reply.data(), reply.size(), MSG_NOSIGNAL);
        }
        conns.push_back(c);  // kept open: a server that never answers
      }
      for (int c : conns) close(c);
    });
  }
  ~FakeServer() {
    done = true;
    shutdown(fd, SHUT_RDWR);
    close(fd);
    thread.join();
  }
};

struct App {
  std::unique_ptr<Child> child;
  int port = 0;
  App(const std::string& binary, const std::string& log) {
    child = Child::Spawn({binary, "--listen", "127.0.0.1:0"}, log);
    if (child) port = graydebug::testing::PortPrinted(*child, graydebug::testing::LeakyAppServing());
  }
  bool Serves() const {
    return Run({"curl", "-sf", "-m", "5", "http://127.0.0.1:" + std::to_string(port) + "/order"}).exit_code == 0;
  }
};

int DlvPid(pid_t launcher) {
  auto r = Run({"pgrep", "-P", std::to_string(launcher), "dlv"});
  return r.exit_code == 0 ? std::atoi(r.out.c_str()) : 0;
}

}  // namespace

TEST_CASE("dlv client: typed errors for refused, silent, garbage and dlv-error replies") {
  graydebug::dlv::Options o;
  o.connect_timeout = 500ms;
  o.reply_timeout = 500ms;
  CHECK(Client("127.0.0.1:" + std::to_string(graydebug::testing::NothingListens()), o).GetVersion().error_kind ==
        ErrorKind::kRefused);
  {
    FakeServer silent("");
    auto r = Client("127.0.0.1:" + std::to_string(silent.port), o).GetVersion();
    CHECK(r.error_kind == ErrorKind::kTimeout);
    CHECK(r.error.find("no reply within 500 ms") != std::string::npos);
  }
  {
    FakeServer garbage("HTTP/1.1 400 Bad Request\r\n\r\n");
    CHECK(Client("127.0.0.1:" + std::to_string(garbage.port), o).GetVersion().error_kind == ErrorKind::kBadReply);
  }
  {
    FakeServer wrong_id("{\"id\":999999999,\"result\":{},\"error\":null}\n");
    CHECK(Client("127.0.0.1:" + std::to_string(wrong_id.port), o).GetVersion().error_kind == ErrorKind::kBadReply);
  }
  CHECK(Client("not-an-address", o).GetVersion().error_kind == ErrorKind::kConnection);
  CHECK(Client("127.0.0.1:1", o).Call("RPCServer.Detach", {{"Kill", false}}).error.find("not allowed") !=
        std::string::npos);
}

TEST_CASE("launch-dlv: attaches a real dlv, survives dlv dying and the app restarting, leaves the app running") {
  std::string dlv = DlvPath();
  REQUIRE_MESSAGE(access(dlv.c_str(), X_OK) == 0, "dlv is not built at ", dlv, " (run: make deps)");
  std::string dir = (fs::temp_directory_path() / ("graydebug-launch-" + std::to_string(getpid()))).string();
  fs::create_directories(dir);
  // A copy under a unique name, so --target-process cannot pick some other leaky-app on the machine.
  std::string name = "leaky-" + std::to_string(getpid() % 100000);
  std::string app_bin = dir + "/" + name;
  fs::copy_file(std::string(GRAYDEBUG_BIN_DIR) + "/leaky-app", app_bin, fs::copy_options::overwrite_existing);

  App app(app_bin, dir + "/app1.log");
  REQUIRE(Eventually([&] { return app.Serves(); }));
  int dlv_port = FreePort();
  std::string addr = "127.0.0.1:" + std::to_string(dlv_port);
  auto launcher = Child::Spawn({std::string(GRAYDEBUG_BIN_DIR) + "/graydebug-agent", "launch-dlv", "--dlv-path=" + dlv,
                                "--target-process=" + name, "--listen=" + addr, "--wait-timeout=60s"},
                               dir + "/launcher.log");
  REQUIRE(launcher);
  Client client(addr);
  REQUIRE_MESSAGE(Eventually([&] { return client.GetVersion().ok(); }), launcher->Output());
  auto version = client.GetVersion();
  CHECK(version.result["DelveVersion"].get<std::string>().find("1.27") != std::string::npos);
  CHECK(version.result["APIVersion"] == 2);
  // --continue: the app runs while attached. dlv serves its API before it has resumed the target,
  // so the first State can still say stopped.
  auto state = client.State();
  CHECK_MESSAGE(Eventually([&] {
                  state = client.State();
                  return state.ok() && state.result["State"]["Running"] == true;
                }),
                state.error, state.result.dump());
  CHECK(app.Serves());
  auto unknown = client.Call("RPCServer.NoSuchMethod", nlohmann::json::object());
  CHECK(unknown.error_kind == ErrorKind::kDlvError);

  // dlv killed: the probe fails clearly, then the launcher restarts it.
  int first_dlv = DlvPid(launcher->pid());
  REQUIRE(first_dlv > 0);
  kill(first_dlv, SIGKILL);
  CHECK(Eventually([&] { return !client.GetVersion().ok(); }, 10s));
  CHECK_MESSAGE(Eventually([&] { return client.GetVersion().ok(); }), launcher->Output());
  CHECK(DlvPid(launcher->pid()) != first_dlv);
  CHECK(launcher->Output().find("dlv exited; restarting with backoff") != std::string::npos);
  CHECK(app.Serves());

  // The app restarted: dlv follows it to the new process.
  int old_pid = app.child->pid();
  app.child->Signal(SIGKILL);
  app.child->Wait(10s);
  App app2(app_bin, dir + "/app2.log");
  REQUIRE(Eventually([&] { return app2.Serves(); }));
  CHECK_MESSAGE(Eventually([&] {
                  std::string out = launcher->Output();
                  return out.find("\"pid\":\"" + std::to_string(app2.child->pid()) + "\"") != std::string::npos &&
                         client.GetVersion().ok();
                }),
                launcher->Output());
  CHECK(launcher->Output().find("\"pid\":\"" + std::to_string(old_pid) + "\"") != std::string::npos);
  CHECK(app2.Serves());

  // SIGTERM: dlv is stopped, the app keeps running (never killed, never left halted).
  launcher->Signal(SIGTERM);
  CHECK(launcher->Wait(20s) == 0);
  CHECK(Eventually([&] { return !client.GetVersion().ok(); }, 10s));
  CHECK(app2.Serves());
  CHECK(Run({"curl", "-sf", "-m", "5", "http://127.0.0.1:" + std::to_string(app2.port) + "/order"}).out.find("ok") !=
        std::string::npos);
  app2.child->Signal(SIGKILL);
  fs::remove_all(dir);
}

TEST_CASE("launch-dlv --target-pid: follows the process when it execs the app, exits 1 when it ends") {
  std::string dlv = DlvPath();
  REQUIRE_MESSAGE(access(dlv.c_str(), X_OK) == 0, "dlv is not built at ", dlv, " (run: make deps)");
  std::string dir = (fs::temp_directory_path() / ("graydebug-launch-exec-" + std::to_string(getpid()))).string();
  fs::create_directories(dir);
  // The launcher is given the PID while it is still a shell: a wrapper script, or a PID read
  // between fork and exec. The shell then becomes the app, keeping its PID and start time.
  auto wrapper = Child::Spawn(
      {"/bin/sh", "-c", "sleep 2; exec " + std::string(GRAYDEBUG_BIN_DIR) + "/leaky-app --listen 127.0.0.1:0"},
      dir + "/app.log");
  REQUIRE(wrapper);
  int dlv_port = FreePort();
  std::string addr = "127.0.0.1:" + std::to_string(dlv_port);
  auto launcher = Child::Spawn({std::string(GRAYDEBUG_BIN_DIR) + "/graydebug-agent", "launch-dlv", "--dlv-path=" + dlv,
                                "--target-pid=" + std::to_string(wrapper->pid()), "--listen=" + addr},
                               dir + "/launcher.log");
  REQUIRE(launcher);
  int port = graydebug::testing::PortPrinted(*wrapper, graydebug::testing::LeakyAppServing());
  REQUIRE(port > 0);
  Client client(addr);
  CHECK_MESSAGE(Eventually([&] { return client.GetVersion().ok(); }), launcher->Output());
  CHECK(launcher->Output().find("exec'd another program; attaching to that") != std::string::npos);
  CHECK(Eventually([&] {
    auto state = client.State();
    return state.ok() && state.result["State"]["Running"] == true;
  }));
  CHECK(Run({"curl", "-sf", "-m", "5", "http://127.0.0.1:" + std::to_string(port) + "/order"}).exit_code == 0);

  // The named process ends: nothing to re-find, one clear line, exit 1.
  wrapper->Signal(SIGKILL);
  wrapper->Wait(10s);
  CHECK(launcher->Wait(30s) == 1);
  CHECK(launcher->Output().find("the target given by --target-pid exited") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("launch-dlv: gives up with one clear line when no target appears") {
  auto r = Run({std::string(GRAYDEBUG_BIN_DIR) + "/graydebug-agent", "launch-dlv", "--dlv-path=" + DlvPath(),
                "--target-process=no-such-proc-x", "--listen=127.0.0.1:0", "--wait-timeout=1s"},
               "", 30s);
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("no target process appeared") != std::string::npos);
}
