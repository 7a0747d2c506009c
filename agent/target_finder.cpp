#include "agent/target_finder.h"

#include <dirent.h>
#include <elf.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>

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

std::string Basename(const std::string& path) {
  auto slash = path.rfind('/');
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  // A replaced binary shows as "/path (deleted)".
  if (auto d = base.find(" (deleted)"); d != std::string::npos) base.resize(d);
  return base;
}

bool IsInfrastructure(const ProcessInfo& p) {
  std::string base = Basename(p.exe);
  for (const std::string& name : {p.comm, base}) {
    if (name.empty()) continue;
    if (name == "pause" || name == "dlv" || name.rfind("graydebug-", 0) == 0) return true;
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

bool ProcFs::Alive(int pid, uint64_t start_ticks) const {
  auto info = Info(pid);
  return info && (start_ticks == 0 || info->start_ticks == start_ticks);
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
  std::vector<const ProcessInfo*> candidates;
  int parent = q.self_pid > 0 ? static_cast<int>(getppid()) : 0;
  for (const auto& p : processes) {
    if (p.pid == q.self_pid || (parent > 1 && p.pid == parent)) continue;
    if (!q.process_name.empty()) {
      if (p.comm == q.process_name || Basename(p.exe) == q.process_name) candidates.push_back(&p);
      continue;
    }
    if (IsInfrastructure(p)) continue;
    if (p.go_binary) candidates.push_back(&p);
  }
  if (candidates.empty()) {
    r.why = q.process_name.empty() ? "no Go program besides graydebug, dlv and pause"
                                   : "no process named \"" + q.process_name + "\"";
    return r;
  }
  auto oldest = std::min_element(candidates.begin(), candidates.end(), [](const auto* a, const auto* b) {
    return a->start_ticks != b->start_ticks ? a->start_ticks < b->start_ticks : a->pid < b->pid;
  });
  r.target = **oldest;
  r.why = candidates.size() == 1
              ? (q.process_name.empty() ? "the only Go program" : "the process named " + q.process_name)
              : std::to_string(candidates.size()) + " candidates; chose the oldest";
  return r;
}

}  // namespace graydebug::agent
