#include "cli/commands.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "cli/plugin.h"
#include "graydebug/api/circuits.h"
#include "graydebug/api/pod.h"
#include "graydebug/dlv_client.h"
#include "graydebug/duration.h"
#include "graydebug/json_read.h"
#include "graydebug/kube/client.h"
#include "graydebug/kube/config.h"
#include "graydebug/kube/time.h"
#include "graydebug/stop_signals.h"
#include "graydebug/version.h"

namespace graydebug::cli {

using nlohmann::json;
using namespace std::chrono_literals;

namespace {

const kube::Resource kDeployments{"apps", "v1", "deployments", true};
constexpr auto kPollInterval = 250ms;

int Fail(const Globals& g, const std::string& message) {
  std::cerr << g.program << ": " << OneLine(message, 2048) << "\n";
  return 1;
}

using jsonr::Str;

const json& Field(const json& j, const char* key) {
  return jsonr::Obj(j, key);
}

const json& Status(const json& session) {
  return Field(session, "status");
}

std::string Dump(const json& j) {
  return j.dump(2, ' ', false, json::error_handler_t::replace);
}

struct Connection {
  std::shared_ptr<kube::Client> client;
  std::string ns;
};

// Loads the kubeconfig like kubectl and builds the client; the namespace is -n, else the
// context's. On failure prints the error and sets *code.
std::optional<Connection> Connect(const Globals& g, int* code) {
  if (!g.namespace_.empty() && !IsDns1123Label(g.namespace_)) {
    std::cerr << g.program << ": invalid namespace " << json(OneLine(g.namespace_, 64)).dump() << "\n";
    *code = 2;
    return std::nullopt;
  }
  kube::ConfigOptions co;
  co.kubeconfig = g.kubeconfig;
  co.context = g.context;
  kube::ConfigResult kc = kube::LoadConfig(co);
  if (!kc.ok) {
    *code = Fail(g, kc.error);
    return std::nullopt;
  }
  kube::ClientOptions options;
  options.user_agent = std::string("kubectl-graydebug/") + Version();
  options.max_retries = 3;  // a person is waiting: fail within seconds when the server is unreachable
  auto client = kube::Client::Create(kc.config, options);
  if (!client.ok()) {
    *code = Fail(g, "cannot reach the cluster: " + client.error().ToString());
    return std::nullopt;
  }
  Connection c{client.value(), g.namespace_.empty() ? kc.config.namespace_ : g.namespace_};
  if (c.ns.empty()) c.ns = "default";
  return c;
}

// An API error as one line, with a hint when the CRD is missing.
std::string ApiLine(const kube::ApiError& e) {
  std::string s = e.ToString();
  if (e.NotServed()) {
    s += " (is the DebugSession CRD installed? see manifests/crds)";
  }
  return s;
}

// Waits up to `d` for SIGINT or SIGTERM (blocked by BlockStopSignals); returns it, or 0.
int WaitForStopSignal(std::chrono::milliseconds d) {
  sigset_t set = StopSignals();
  timespec ts{static_cast<time_t>(d.count() / 1000), static_cast<long>((d.count() % 1000) * 1000000)};
  int s = sigtimedwait(&set, nullptr, &ts);
  return s > 0 ? s : 0;
}

std::string ExpiryText(const json& session) {
  auto t = kube::ParseTime(Str(Status(session), "expiresAt"));
  return t ? kube::FormatTime(*t) : std::string("its ttl");
}

// $KUBECTL, else `kubectl` on PATH; "" when there is no such executable.
std::string FindKubectl(std::string* wanted) {
  const char* env = std::getenv("KUBECTL");
  *wanted = env != nullptr && *env != '\0' ? env : "kubectl";
  auto executable = [](const std::string& p) {
    struct stat st {};
    return stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(p.c_str(), X_OK) == 0;
  };
  if (wanted->find('/') != std::string::npos) return executable(*wanted) ? *wanted : "";
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    std::size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(start, end - start);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + *wanted;
    if (executable(candidate)) return candidate;
    start = end + 1;
  }
  return "";
}

// Splits what a pipe delivers into lines.
struct LineReader {
  int fd = -1;
  std::string pending;
  bool open = true;
  // Reads what is there; calls `line` for each complete line (and the rest at EOF).
  template <class F>
  void Read(F&& line) {
    char buf[8192];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
    if (n <= 0) {
      open = false;
      if (!pending.empty()) line(pending);
      pending.clear();
      return;
    }
    pending.append(buf, static_cast<std::size_t>(n));
    for (std::size_t nl; (nl = pending.find('\n')) != std::string::npos;) {
      std::string l = pending.substr(0, nl);
      pending.erase(0, nl + 1);
      if (!l.empty() && l.back() == '\r') l.pop_back();
      line(l);
    }
    if (pending.size() > 65536) pending.erase(0, pending.size() - 65536);  // a line without end
  }
};

// Waits for the child to exit, up to `bound`; then kills its group. Returns the wait status.
int Reap(pid_t pid, std::chrono::milliseconds bound) {
  auto until = std::chrono::steady_clock::now() + bound;
  int status = 0;
  while (true) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) return status;
    if (std::chrono::steady_clock::now() >= until) {
      kill(-pid, SIGKILL);
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      return status;
    }
    std::this_thread::sleep_for(20ms);
  }
}

std::string DescribeExit(int status) {
  if (WIFEXITED(status)) return "kubectl exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("kubectl was killed by signal ") + strsignal(WTERMSIG(status));
  return "kubectl ended";
}

// Deletes the session `attach` created and gave up on; returns what to add to the message.
std::string DeleteAbandoned(const Connection& c, const std::string& name) {
  auto r = c.client->Delete(kube::Resource::DebugSessions(), c.ns, name);
  if (r.ok() || r.error().kind == kube::ErrorKind::kNotFound) return "deleted it";
  return "could not delete it (" + r.error().ToString() + ")";
}

// One GetVersion through the port-forward: what a person's `dlv connect` needs (the connection
// arrives in the pod from the container runtime's user, not from dlv's). "" when dlv answered.
std::string CheckThroughForward(int local_port) {
  dlv::Client client("127.0.0.1:" + std::to_string(local_port), dlv::Options{3000ms, 10000ms, 1u << 20});
  dlv::Reply r = client.GetVersion();
  if (r.ok()) return "";
  std::string why = std::string(dlv::ErrorKindName(r.error_kind)) + ": " + r.error;
  if (r.error_kind == dlv::ErrorKind::kBadReply || r.error_kind == dlv::ErrorKind::kConnection) {
    // A dlv that refuses a user accepts and closes at once: a reset or a reply cut short.
    why +=
        "; dlv closes connections from other users unless it runs with --only-same-user=false: see the "
        "dlv-server container's log";
  }
  return why;
}

// Runs `kubectl port-forward` until SIGINT/SIGTERM (exit 0) or until kubectl ends (exit 1, one
// line with kubectl's last error line). Once kubectl says it forwards, one dlv call goes through
// the forward before "Port-forward ready" is printed. SIGINT/SIGTERM end the session unless
// `keep`; so does a port-forward that never became ready (kubectl failed, or dlv did not answer
// through it): the session would otherwise stay Active with nobody able to attach. A port-forward
// that dies after it was ready leaves the session (it expires by its ttl) so the user can rerun
// the connect line.
int RunPortForward(const Globals& g, const Connection& c, const json& session, int local_port, int dlv_port,
                   bool keep) {
  const std::string name = Str(Field(session, "metadata"), "name");
  const std::string ref = c.ns + "/" + name;
  const std::string stays = "debugsession " + ref + " stays Active until it expires at " + ExpiryText(session) +
                            " (end it now: kubectl graydebug end " + name + " -n " + c.ns + ")";
  std::string wanted;
  std::string kubectl = FindKubectl(&wanted);
  if (kubectl.empty()) {
    return Fail(g, (wanted == "kubectl" ? std::string("kubectl not found on PATH (set $KUBECTL to its path)")
                                        : "$KUBECTL " + wanted + " is not an executable file") +
                       "; " + stays);
  }
  PortForward pf;
  pf.kubectl = kubectl;
  pf.namespace_ = c.ns;
  pf.pod = Str(Status(session), "pod");
  pf.local_port = local_port;
  pf.remote_port = dlv_port;
  pf.kubeconfig = g.kubeconfig;
  pf.context = g.context;
  std::vector<std::string> argv = PortForwardArgs(pf);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);

  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0) return Fail(g, std::string("pipe: ") + std::strerror(errno));
  if (pipe2(err, O_CLOEXEC) != 0) return Fail(g, std::string("pipe: ") + std::strerror(errno));
  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  sigset_t none;
  sigemptyset(&none);
  const pid_t parent = getpid();
  std::cerr << "Starting port-forward: " << OneLine(argv[1] + " -n " + c.ns + " pod/" + pf.pod + " " + argv[5]) << "\n";
  pid_t pid = fork();
  if (pid == 0) {
    // Only async-signal-safe calls between fork and exec (the parent has threads).
    setpgid(0, 0);                     // the terminal's Ctrl-C reaches us; we stop kubectl ourselves
    prctl(PR_SET_PDEATHSIG, SIGTERM);  // and it does not outlive us, even after a SIGKILL
    if (getppid() != parent) _exit(127);
    if (devnull >= 0) dup2(devnull, 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execv(args[0], args.data());
    const char msg[] = "error: cannot execute kubectl\n";
    ssize_t ignored = write(2, msg, sizeof msg - 1);
    (void)ignored;
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  if (devnull >= 0) close(devnull);
  if (pid < 0) {
    close(out[0]);
    close(err[0]);
    return Fail(g, std::string("cannot start kubectl port-forward: ") + std::strerror(errno) + "; " + stays);
  }

  sigset_t stop = StopSignals();
  int sfd = signalfd(-1, &stop, SFD_CLOEXEC);
  LineReader o, e;
  o.fd = out[0];
  e.fd = err[0];
  bool ready = false;
  std::string last_error, unusable;
  int stop_signal = 0;
  while ((o.open || e.open) && stop_signal == 0 && unusable.empty()) {
    pollfd fds[3];
    int n = 0;
    if (o.open) fds[n++] = {o.fd, POLLIN, 0};
    if (e.open) fds[n++] = {e.fd, POLLIN, 0};
    if (sfd >= 0) fds[n++] = {sfd, POLLIN, 0};
    if (poll(fds, static_cast<nfds_t>(n), sfd >= 0 ? -1 : 250) < 0 && errno != EINTR) break;
    if (sfd < 0) stop_signal = WaitForStopSignal(0ms);
    for (int i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      if (fds[i].fd == sfd) {
        signalfd_siginfo info{};
        if (read(sfd, &info, sizeof info) == static_cast<ssize_t>(sizeof info))
          stop_signal = static_cast<int>(info.ssi_signo);
      } else if (fds[i].fd == o.fd) {
        o.Read([&](const std::string& line) {
          if (line.empty()) return;
          std::cerr << OneLine(line) << "\n";
          if (!ready && unusable.empty() && line.find("Forwarding from") != std::string::npos) {
            unusable = CheckThroughForward(local_port);
            if (!unusable.empty()) return;
            ready = true;
            std::cout << "Port-forward ready (dlv answered through it): dlv connect 127.0.0.1:" << local_port
                      << (keep ? "  (Ctrl-C stops it; the session stays until " + ExpiryText(session) + ")"
                               : std::string("  (Ctrl-C stops it and ends the session; --keep would keep it)"))
                      << std::endl;
          }
        });
      } else {
        e.Read([&](const std::string& line) {
          if (line.find_first_not_of(" \t") == std::string::npos) return;
          last_error = OneLine(line, 1024);
          if (ready) std::cerr << last_error << "\n";
        });
      }
    }
  }
  if (sfd >= 0) close(sfd);
  close(out[0]);
  close(err[0]);
  if (!unusable.empty() || (!ready && stop_signal == 0)) {
    std::string what;
    if (unusable.empty()) {
      int status = Reap(pid, 5s);
      what = "port-forward to pod/" + pf.pod + " failed (" + DescribeExit(status) +
             (last_error.empty() ? "" : ": " + last_error) + ")";
    } else {
      kill(-pid, SIGTERM);
      Reap(pid, 5s);
      what = "dlv in pod/" + pf.pod + " did not answer through the port-forward (" + unusable + ")";
    }
    if (keep) return Fail(g, what + "; " + stays);
    auto r = c.client->Delete(kube::Resource::DebugSessions(), c.ns, name);
    if (r.ok() || r.error().kind == kube::ErrorKind::kNotFound) {
      return Fail(g, what + "; ended debugsession " + ref + " (nobody can attach; --keep would leave it Active)");
    }
    return Fail(g, what + "; ending debugsession " + ref + " failed (" + r.error().ToString() + "); it expires at " +
                       ExpiryText(session));
  }
  if (stop_signal != 0) {
    kill(-pid, SIGTERM);
    Reap(pid, 5s);
    if (keep) {
      std::cerr << "Stopped the port-forward. " << stays << "\n";
      return 0;
    }
    // Interrupted: end the session (unless --keep), so nobody's debug server outlives the person.
    auto r = c.client->Delete(kube::Resource::DebugSessions(), c.ns, name);
    if (r.ok() || r.error().kind == kube::ErrorKind::kNotFound) {
      std::cerr << "Stopped the port-forward and ended debugsession " << ref << " (--keep leaves it running)\n";
      return 0;
    }
    std::cerr << "Stopped the port-forward; ending debugsession " << ref << " failed (" << r.error().ToString()
              << "); it expires at " << ExpiryText(session) << "\n";
    return 1;
  }
  int status = Reap(pid, 5s);
  std::string why = DescribeExit(status);
  if (!last_error.empty()) why += ": " + last_error;
  return Fail(g, "port-forward to pod/" + pf.pod + " failed (" + why + "); " + stays);
}

}  // namespace

void BlockStopSignals() {
  graydebug::BlockStopSignals();
}

int Attach(const Globals& g, const AttachOptions& o) {
  TargetResult t;
  SelectorResult label_selector;
  if (!o.selector.empty()) {
    label_selector = ParseLabelSelector(o.selector);
    if (!label_selector.error.empty()) {
      std::cerr << g.program << ": " << label_selector.error << "\n";
      return 2;
    }
    t.target = Target{Target::Kind::kSelector, "selector"};
  } else {
    t = ParseTarget(o.target);
  }
  if (!t.target) {
    std::cerr << g.program << ": " << t.error << "\n";
    return 2;
  }
  if (o.reason.size() > 1024) {
    std::cerr << g.program << ": --reason is longer than 1024 bytes\n";
    return 2;
  }
  int code = 0;
  auto c = Connect(g, &code);
  if (!c) return code;

  SessionRequest req;
  req.namespace_ = c->ns;
  req.target = *t.target;
  req.ttl = o.ttl;
  req.reason = o.reason;
  if (t.target->kind == Target::Kind::kSelector) {
    req.selector = label_selector.selector;
  } else if (t.target->kind == Target::Kind::kDeployment) {
    auto d = c->client->Get(kDeployments, c->ns, t.target->name);
    if (!d.ok()) {
      if (d.error().kind == kube::ErrorKind::kNotFound)
        return Fail(g, "deployment " + c->ns + "/" + t.target->name + " not found");
      return Fail(g, "cannot read deployment " + c->ns + "/" + t.target->name + ": " + d.error().ToString());
    }
    SelectorResult s = DeploymentSelector(*d);
    if (!s.error.empty()) return Fail(g, s.error);
    req.selector = s.selector;
  } else {
    // Fail fast on a pod that cannot be debugged instead of waiting for the controller's verdict.
    // A pod we may not read (RBAC) is left to the controller.
    auto p = c->client->Get(kube::Resource::Pods(), c->ns, t.target->name);
    if (!p.ok() && p.error().kind == kube::ErrorKind::kNotFound)
      return Fail(g, "pod " + c->ns + "/" + t.target->name + " not found");
    if (p.ok()) {
      if (Str(Field(Field(*p, "metadata"), "labels"), api::kInjectedLabel) != "true") {
        return Fail(g, "pod " + c->ns + "/" + t.target->name + " has no graydebug sidecars (no label " +
                           api::kInjectedSelector +
                           "): is it a gray pod created "
                           "after graydebug was installed?");
      }
    }
  }

  std::random_device rd;
  std::mt19937 rng(rd());
  json created;
  for (int attempt = 0;; ++attempt) {
    req.name = SessionName(t.target->name, [&] { return static_cast<uint32_t>(rng()); });
    auto r = c->client->Create(kube::Resource::DebugSessions(), c->ns, BuildSession(req));
    if (r.ok()) {
      created = r.value();
      break;
    }
    if (r.error().kind != kube::ErrorKind::kAlreadyExists || attempt >= 4) {
      return Fail(g, "cannot create the debugsession: " + ApiLine(r.error()));
    }
  }
  const std::string name = req.name;
  const std::string ref = c->ns + "/" + name;
  std::cerr << "debugsession " << ref << " created (ttl " << FormatDuration(o.ttl) << ")\n";

  const auto deadline = std::chrono::steady_clock::now() + o.timeout;
  std::string last_line;
  json session = created;
  while (true) {
    auto got = c->client->Get(kube::Resource::DebugSessions(), c->ns, name);
    std::string line;
    if (got.ok()) {
      session = got.value();
      line = ProgressLine(session);
    } else if (got.error().kind == kube::ErrorKind::kNotFound) {
      return Fail(g, "debugsession " + ref + " was deleted while waiting for it");
    } else {
      line = "cannot read debugsession " + ref + ": " + got.error().ToString() + " (still trying)";
    }
    if (line != last_line) {
      std::cerr << line << "\n";
      last_line = line;
    }
    if (got.ok()) {
      Outcome outcome = SessionOutcome(session);
      if (outcome == Outcome::kActive) break;
      if (outcome != Outcome::kWaiting) return Fail(g, "debugsession " + ref + " " + FailureLine(session));
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left <= 0ms) {
      return Fail(g, "timed out after " + FormatDuration(o.timeout) + " waiting for debugsession " + ref +
                         " to become Active (last: " + last_line + "); " + DeleteAbandoned(*c, name));
    }
    if (int sig = WaitForStopSignal(std::min(kPollInterval, left))) {
      return Fail(g, std::string("interrupted (") + strsignal(sig) + ") before debugsession " + ref +
                         " became Active; " + DeleteAbandoned(*c, name));
    }
  }

  const std::string pod = Str(Status(session), "pod");
  int dlv_port = kDefaultDlvPort;
  auto p = c->client->Get(kube::Resource::Pods(), c->ns, pod);
  if (p.ok()) {
    dlv_port = DlvPortOfPod(*p);
  } else {
    std::cerr << "warning: cannot read pod " << c->ns << "/" << pod << " (" << p.error().ToString()
              << "); assuming dlv port " << kDefaultDlvPort << "\n";
  }
  const int local_port = o.local_port.value_or(dlv_port);
  std::cout << ActiveSummary(session, local_port, std::chrono::system_clock::now()) << std::flush;
  if (!o.port_forward) {
    std::cerr << "No port-forward (--no-port-forward): run the connect line yourself. debugsession " << ref
              << " stays Active until it expires at " << ExpiryText(session) << " (end it now: kubectl graydebug end "
              << name << " -n " << c->ns << ")\n";
    return 0;
  }
  return RunPortForward(g, *c, session, local_port, dlv_port, o.keep);
}

int List(const Globals& g, bool all_namespaces, const std::string& output) {
  int code = 0;
  auto c = Connect(g, &code);
  if (!c) return code;
  auto r = c->client->List(kube::Resource::DebugSessions(), all_namespaces ? "" : c->ns);
  if (!r.ok()) return Fail(g, "cannot list debugsessions: " + ApiLine(r.error()));
  if (output == "json" || output == "yaml") {
    // As `kubectl get -o json|yaml` does: everything but metadata.managedFields.
    json list = r.value();
    if (auto items = list.find("items"); items != list.end() && items->is_array()) {
      for (json& item : *items) {
        if (item.is_object() && item.contains("metadata") && item["metadata"].is_object())
          item["metadata"].erase("managedFields");
      }
    }
    std::cout << (output == "json" ? Dump(list) + "\n" : ToYaml(list));
    return 0;
  }
  auto items = r->find("items");
  if (items == r->end() || !items->is_array() || items->empty()) {
    std::cerr << (all_namespaces ? std::string("No resources found") : "No resources found in " + c->ns + " namespace.")
              << "\n";
    return 0;
  }
  std::cout << SessionTable(*r, all_namespaces, std::chrono::system_clock::now());
  return 0;
}

int End(const Globals& g, const std::string& session) {
  if (!IsDns1123Subdomain(session)) {
    std::cerr << g.program << ": " << json(OneLine(session, 64)).dump(-1, ' ', false, json::error_handler_t::replace)
              << " is not a valid session name\n";
    return 2;
  }
  int code = 0;
  auto c = Connect(g, &code);
  if (!c) return code;
  const std::string ref = c->ns + "/" + session;
  auto r = c->client->Delete(kube::Resource::DebugSessions(), c->ns, session);
  if (!r.ok()) {
    if (r.error().kind == kube::ErrorKind::kNotFound && !r.error().NotServed()) {
      return Fail(g, "debugsession " + ref + " not found");
    }
    return Fail(g, "cannot end debugsession " + ref + ": " + ApiLine(r.error()));
  }
  // Like `kubectl delete`, wait (briefly) until it is gone: the controller's finalizer releases the
  // session's metrics first. Without a running controller the object stays until one runs.
  const auto until = std::chrono::steady_clock::now() + 10s;
  bool gone = false;
  while (!gone && std::chrono::steady_clock::now() < until) {
    auto got = c->client->Get(kube::Resource::DebugSessions(), c->ns, session);
    gone = !got.ok() && got.error().kind == kube::ErrorKind::kNotFound;
    if (!gone) std::this_thread::sleep_for(kPollInterval);
  }
  std::cout << "debugsession " << ref << " ended"
            << (gone ? "" : " (deletion requested; graydebug-controller has not released it yet)") << "\n";
  return 0;
}

int Status(const Globals& g, const std::string& circuits_namespace, const std::string& output) {
  if (!IsDns1123Label(circuits_namespace)) {
    std::cerr << g.program << ": invalid --circuits-namespace "
              << json(OneLine(circuits_namespace, 64)).dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
    return 2;
  }
  int code = 0;
  auto c = Connect(g, &code);
  if (!c) return code;
  auto r = c->client->Get(kube::Resource::ConfigMaps(), circuits_namespace, api::kCircuitsConfigMap);
  std::vector<BreakerRow> rows;
  if (r.ok()) {
    rows = BreakerRows(*r);
  } else if (r.error().kind != kube::ErrorKind::kNotFound) {
    return Fail(
        g, "cannot read configmap " + circuits_namespace + "/" + api::kCircuitsConfigMap + ": " + r.error().ToString());
  }
  // -n narrows the view to the releases of one namespace.
  if (!g.namespace_.empty()) {
    std::erase_if(rows, [&](const BreakerRow& row) { return row.release.rfind(g.namespace_ + "/", 0) != 0; });
  }
  for (const BreakerRow& row : rows) {
    if (!row.problem.empty())
      std::cerr << "warning: breaker " << OneLine(row.release) << " is unreadable: " << row.problem << "\n";
  }
  if (output == "json") {
    std::cout << Dump(BreakerJson(rows)) << "\n";
    return 0;
  }
  if (output == "yaml") {
    std::cout << ToYaml(BreakerJson(rows));
    return 0;
  }
  if (rows.empty()) {
    std::cout << "no circuit breakers recorded yet";
    if (!r.ok()) std::cout << " (no configmap " << circuits_namespace << "/" << api::kCircuitsConfigMap << ")";
    std::cout << "\n";
    return 0;
  }
  std::cout << BreakerTable(rows, std::chrono::system_clock::now());
  return 0;
}

}  // namespace graydebug::cli
