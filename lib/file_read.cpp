#include "graydebug/file_read.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace graydebug {

FileReadResult ReadFileLimited(const std::string& path, std::size_t max_bytes) {
  FileReadResult r;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    r.error = path + ": " + std::strerror(errno);
    return r;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    r.error = path + ": not a regular file";
    return r;
  }
  // Read at most max_bytes + 1 so a file that grows while we read is still caught.
  std::string buf;
  buf.resize(max_bytes + 1);
  std::size_t got = 0;
  while (got < buf.size()) {
    ssize_t n = ::read(fd, buf.data() + got, buf.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      r.error = path + ": " + std::strerror(errno);
      ::close(fd);
      return r;
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  if (got > max_bytes) {
    r.error = path + ": file is larger than the limit of " + std::to_string(max_bytes) + " bytes";
    return r;
  }
  buf.resize(got);
  r.ok = true;
  r.contents = std::move(buf);
  return r;
}

}  // namespace graydebug
