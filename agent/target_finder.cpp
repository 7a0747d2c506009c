#include "agent/target_finder.h"

#include <dirent.h>
#include <elf.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string_view>

namespace graydebug::agent {
namespace {

std::string ReadSmall(const std::string& path, std::size_t limit = 64 << 10) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::string out(limit, '\0');
  in.read(out.data(), static_cast<std::streamsize>(limit));
  out.resize(static_cast<std::size_t>(in.gcount()));
  return out;
}

// A binary replaced or removed on disk shows as "PATH (deleted)": still the same program.
std::string WithoutDeleted(std::string exe) {
  constexpr std::string_view kDeleted = " (deleted)";
  if (exe.ends_with(kDeleted)) exe.resize(exe.size() - kDeleted.size());
  return exe;
}

std::string Basename(const std::string& path) {
  auto slash = path.rfind('/');
  return WithoutDeleted(slash == std::string::npos ? path : path.substr(slash + 1));
}

// Processes of the pod's plumbing, never the app: the sandbox's pause, graydebug itself, dlv, and the
// container runtime's own helpers. runc (a Go program) starts every container as "runc:[2:INIT]"
// running runc's own executable (often a sealed memfd copy) until it execs the container's
// entrypoint; with native sidecars dlv-server is up before the app container and sees exactly that.
bool IsInfrastructure(const ProcessInfo& p) {
  std::string base = Basename(p.exe);
  if (p.comm.starts_with("runc:[") || base.starts_with("memfd:runc") || base == "runc" || base == "crun" ||
      base.starts_with("containerd-shim") || p.comm.starts_with("containerd-shim")) {
    return true;
  }
  for (const std::string& name : {p.comm, base}) {
    if (name.empty()) continue;
    if (name == "pause" || name == "dlv" || name.starts_with("graydebug-")) return true;
  }
  return false;
}

}  // namespace

std::vector<int> ProcFs::Pids() const {
  std::vector<int> out;
  DIR* d = opendir(root_.c_str());
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    const char* n = e->d_name;
    if (*n == '\0' || std::strspn(n, "0123456789") != std::strlen(n)) continue;
    out.push_back(std::atoi(n));
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<ProcessInfo> ProcFs::Info(int pid) const {
  std::string dir = root_ + "/" + std::to_string(pid);
  std::string stat = ReadSmall(dir + "/stat", 4096);
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split at the last ')'.
  auto close = stat.rfind(')');
  if (stat.empty() || close == std::string::npos) return std::nullopt;
  ProcessInfo p;
  p.pid = pid;
  std::istringstream rest(stat.substr(close + 1));
  std::string field;
  // Fields after comm start at 3 (state); starttime is field 22.
  for (int i = 3; i <= 22 && rest >> field; ++i) {
    if (i == 22) p.start_ticks = std::strtoull(field.c_str(), nullptr, 10);
  }
  Credentials cred = CredentialsOf(std::to_string(pid));
  p.uid = cred.uid;
  p.gid = cred.gid;
  p.comm = ReadSmall(dir + "/comm", 256);
  while (!p.comm.empty() && (p.comm.back() == '\n' || p.comm.back() == '\0')) p.comm.pop_back();
  char buf[4096];
  ssize_t n = readlink((dir + "/exe").c_str(), buf, sizeof(buf) - 1);
  if (n > 0) {
    p.exe.assign(buf, static_cast<std::size_t>(n));
    // Read through /proc/<pid>/exe: the path may be in another mount namespace (another container).
    std::ifstream probe(dir + "/exe", std::ios::binary);
    p.exe_readable = static_cast<bool>(probe);
    if (p.exe_readable) p.go_binary = IsGoBinary(dir + "/exe");
  }
  return p;
}

std::optional<uint64_t> ProcFs::RssBytes(int pid) const {
  std::string status = ReadSmall(root_ + "/" + std::to_string(pid) + "/status", 16 << 10);
  auto at = status.find("\nVmRSS:");
  if (at == std::string::npos) return std::nullopt;
  return std::strtoull(status.c_str() + at + 7, nullptr, 10) * 1024;  // "VmRSS:   1234 kB"
}

Credentials ProcFs::CredentialsOf(const std::string& pid) const {
  Credentials c;
  std::string status = ReadSmall(root_ + "/" + pid + "/status", 16 << 10);
  auto field = [&](const char* name) -> std::string {
    std::string key = std::string("\n") + name + ":";
    auto at = status.find(key);
    if (at == std::string::npos) return "";
    auto end = status.find('\n', at + 1);
    return status.substr(at + key.size(), end == std::string::npos ? std::string::npos : end - at - key.size());
  };
  // "Uid:\t<real>\t<effective>\t<saved>\t<fs>"
  if (std::string u = field("Uid"); !u.empty()) c.uid = std::strtoll(u.c_str(), nullptr, 10);
  if (std::string g = field("Gid"); !g.empty()) c.gid = std::strtoll(g.c_str(), nullptr, 10);
  if (std::string cap = field("CapEff"); !cap.empty()) c.cap_eff = std::strtoull(cap.c_str(), nullptr, 16);
  return c;
}

std::vector<std::string> ProcFs::Cmdline(int pid) const {
  std::string raw = ReadSmall(root_ + "/" + std::to_string(pid) + "/cmdline", 64 << 10);
  std::vector<std::string> out;
  for (std::size_t start = 0; start < raw.size();) {
    std::size_t nul = raw.find('\0', start);
    if (nul == std::string::npos) nul = raw.size();
    out.push_back(raw.substr(start, nul - start));
    start = nul + 1;
  }
  return out;
}

int ProcFs::PtraceScope() const {
  std::string v = ReadSmall(root_ + "/sys/kernel/yama/ptrace_scope", 64);
  if (v.empty()) return -1;
  return std::atoi(v.c_str());
}

bool ProcFs::Alive(int pid, uint64_t start_ticks, const std::string& exe) const {
  auto info = Info(pid);
  if (!info || (start_ticks != 0 && info->start_ticks != start_ticks)) return false;
  // An exec keeps the PID and its start time but is another program: dlv's view of it is stale.
  return exe.empty() || info->exe.empty() || WithoutDeleted(info->exe) == WithoutDeleted(exe);
}

bool IsGoBinary(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  Elf64_Ehdr eh{};
  if (!in.read(reinterpret_cast<char*>(&eh), sizeof(eh))) return false;
  if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64) return false;
  if (eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shnum == 0 || eh.e_shnum > 4096 || eh.e_shstrndx >= eh.e_shnum) {
    return false;
  }
  std::vector<Elf64_Shdr> sections(eh.e_shnum);
  in.seekg(static_cast<std::streamoff>(eh.e_shoff));
  if (!in.read(reinterpret_cast<char*>(sections.data()),
               static_cast<std::streamsize>(sections.size() * sizeof(Elf64_Shdr)))) {
    return false;
  }
  const Elf64_Shdr& names = sections[eh.e_shstrndx];
  if (names.sh_size == 0 || names.sh_size > (1u << 20)) return false;
  std::string table(names.sh_size, '\0');
  in.seekg(static_cast<std::streamoff>(names.sh_offset));
  if (!in.read(table.data(), static_cast<std::streamsize>(table.size()))) return false;
  for (const Elf64_Shdr& s : sections) {
    if (s.sh_name >= table.size()) continue;
    const char* name = table.c_str() + s.sh_name;
    if (std::strncmp(name, ".go.buildinfo", table.size() - s.sh_name) == 0) return true;
  }
  return false;
}

std::vector<ProcessInfo> ListProcesses(const ProcFs& fs) {
  std::vector<ProcessInfo> out;
  for (int pid : fs.Pids()) {
    if (auto info = fs.Info(pid)) out.push_back(std::move(*info));
  }
  return out;
}

TargetResult ChooseTarget(const std::vector<ProcessInfo>& processes, const TargetQuery& q) {
  TargetResult r;
  if (q.pid > 0) {
    for (const auto& p : processes) {
      if (p.pid == q.pid) {
        r.target = p;
        r.why = "the process given by --target-pid";
        return r;
      }
    }
    r.why = "no process with PID " + std::to_string(q.pid);
    return r;
  }
  std::vector<const ProcessInfo*> candidates, uninspectable;
  int parent = q.self_pid > 0 ? static_cast<int>(getppid()) : 0;
  for (const auto& p : processes) {
    if (p.pid == q.self_pid || (parent > 1 && p.pid == parent)) continue;
    if (!q.process_name.empty()) {
      if (p.comm == q.process_name || Basename(p.exe) == q.process_name) candidates.push_back(&p);
      continue;
    }
    if (IsInfrastructure(p)) continue;
    if (p.go_binary) candidates.push_back(&p);
    if (!p.exe_readable) uninspectable.push_back(&p);
  }
  auto oldest_of = [](const std::vector<const ProcessInfo*>& v) {
    return *std::min_element(v.begin(), v.end(), [](const auto* a, const auto* b) {
      return a->start_ticks != b->start_ticks ? a->start_ticks < b->start_ticks : a->pid < b->pid;
    });
  };
  if (candidates.empty() && !uninspectable.empty() && q.process_name.empty()) {
    const ProcessInfo& p = *oldest_of(uninspectable);
    if (q.accept_uninspectable) {
      r.target = p;
      r.why = "no readable executable to recognise a Go program by; assumed the oldest process we cannot inspect";
      return r;
    }
    r.uninspectable = true;
    const bool ptrace = q.self.HasCapability(kCapSysPtrace);
    r.why = "cannot inspect pid " + std::to_string(p.pid) + " (uid " + std::to_string(p.uid) + ", gid " +
            std::to_string(p.gid) +
            (uninspectable.size() > 1 ? ", and " + std::to_string(uninspectable.size() - 1) + " more" : std::string()) +
            "): dlv-server runs as uid " + std::to_string(q.self.uid) + ", gid " + std::to_string(q.self.gid) +
            (ptrace ? " with CAP_SYS_PTRACE, which the kernel still refuses (a seccomp/AppArmor profile?)"
                    : " without an effective CAP_SYS_PTRACE") +
            "; set runAsUser and runAsGroup of the target container (or the pod) to the app's user, or leave "
            "them unset so graydebug runs dlv-server as root with only CAP_SYS_PTRACE";
    return r;
  }
  if (candidates.empty()) {
    r.why = q.process_name.empty() ? "no Go program besides graydebug, dlv and pause"
                                   : "no process named \"" + q.process_name + "\"";
    return r;
  }
  r.target = *oldest_of(candidates);
  r.why = candidates.size() == 1
              ? (q.process_name.empty() ? "the only Go program" : "the process named " + q.process_name)
              : std::to_string(candidates.size()) + " candidates; chose the oldest";
  return r;
}

}  // namespace graydebug::agent
