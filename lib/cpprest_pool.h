#pragma once

namespace graydebug {

// Sizes cpprest's process-wide thread pool (asio I/O for every http_client and http_listener).
// Must run before any cpprest use; the first call wins and later calls keep its size. `threads`
// is clamped to at least 2: with one thread listener.close() hangs. Never throws.
void EnsureCpprestThreadPool(int threads);

}  // namespace graydebug
