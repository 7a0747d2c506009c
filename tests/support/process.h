#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace graydebug::testing {

struct ProcessResult {
  int exit_code = -1;  // -1 when the process was killed (timeout or signal)
  bool timed_out = false;
  std::string out;
  std::string err;
};

// Runs argv[0] (looked up on PATH) with `argv`, feeds `input` on stdin, captures stdout and
// stderr, and kills the whole process group after `timeout`. Never throws.
ProcessResult Run(const std::vector<std::string>& argv, const std::string& input = "",
                  std::chrono::seconds timeout = std::chrono::seconds(120));

}  // namespace graydebug::testing

namespace graydebug::testing {

// A background child process (own process group) whose stdout+stderr go to a file.
class Child {
 public:
  // Starts argv; nullptr when it cannot be spawned.
  static std::unique_ptr<Child> Spawn(const std::vector<std::string>& argv, const std::string& output_path);
  ~Child();  // SIGKILLs the group if still running
  void Signal(int sig);
  // Waits up to `timeout` for the exit; returns the exit code, -1 when killed by a signal,
  // -2 on timeout.
  int Wait(std::chrono::milliseconds timeout);
  pid_t pid() const { return pid_; }
  // Everything the child has written so far.
  std::string Output() const;

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  std::string output_path_;
};

}  // namespace graydebug::testing
