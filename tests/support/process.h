#pragma once

#include <chrono>
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
