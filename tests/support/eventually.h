#pragma once

#include <chrono>
#include <thread>

namespace graydebug::testing {

// Polls `pred` until it holds or `limit` passes, then asks once more; returns whether it held. A
// bound for liveness only: no test judges how long it took. `poll` is the pause between tries.
template <class Pred>
bool Eventually(Pred&& pred, std::chrono::milliseconds limit = std::chrono::seconds(60),
                std::chrono::milliseconds poll = std::chrono::milliseconds(50)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(poll);
  }
  return pred();
}

}  // namespace graydebug::testing
