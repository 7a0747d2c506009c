// Owns the one call that sizes cpprest's shared pool (the Kubernetes client's I/O threads), and
// keeps OpenSSL alive until the process is gone.
#include "cpprest_pool.h"

#include <utility>  // must precede boost/asio with C++20 (Boost 1.74)

#include <openssl/crypto.h>
#include <pplx/threadpool.h>

#include <algorithm>
#include <mutex>

namespace graydebug {
namespace {

// cpprest's pool threads are never joined before exit: at exit they may still be freeing a
// connection's SSL objects while OpenSSL's own atexit handler tears OpenSSL down under them (a
// SEGV in SSL_CTX_free → CRYPTO_THREAD_unlock, seen from kubectl-graydebug exiting right after a
// failed connection). Asking OpenSSL, before anything else uses it, not to register that handler
// leaves its state valid until the process ends; the kernel frees it.
const bool kOpenSslWithoutAtexit = OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, nullptr) == 1;

}  // namespace

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
