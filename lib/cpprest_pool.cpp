// Owns the one call that sizes cpprest's shared pool, so the client and the server agree on it.
#include "cpprest_pool.h"

#include <utility>  // must precede boost/asio with C++20 (Boost 1.74)

#include <pplx/threadpool.h>

#include <algorithm>
#include <mutex>

namespace graydebug {

void EnsureCpprestThreadPool(int threads) {
  static std::once_flag once;
  std::call_once(once, [threads] {
    try {
      crossplat::threadpool::initialize_with_threads(static_cast<std::size_t>(std::max(threads, 2)));
    } catch (...) {
      // cpprest was used before anyone sized the pool (it then starts its default pool):
      // keep that one; initialize_with_threads refuses to replace it.
    }
  });
}

}  // namespace graydebug
