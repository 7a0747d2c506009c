#pragma once

#include <cstddef>
#include <string>

namespace graydebug {

// The largest configuration or kubeconfig file any graydebug binary reads.
inline constexpr std::size_t kMaxConfigFileBytes = 1 << 20;  // 1 MiB

// The result of reading a small text file with a size limit.
struct FileReadResult {
  bool ok = false;
  std::string contents;  // when ok
  std::string error;     // one line naming the file, when !ok
};

// Reads a whole regular file of at most `max_bytes`. Fails (never throws) when the file is
// missing, unreadable, not a regular file, or larger than the limit.
FileReadResult ReadFileLimited(const std::string& path, std::size_t max_bytes = kMaxConfigFileBytes);

}  // namespace graydebug
