#include "graydebug/memory.h"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace {

using graydebug::TrimAfterBursts;

// Waits (bounded) until the trimmer has looked `n` more times.
void LooksPass(const TrimAfterBursts& t, uint64_t n) {
  const uint64_t until = t.looks() + n;
  for (int i = 0; t.looks() < until && i < 100000; ++i) std::this_thread::sleep_for(std::chrono::microseconds(100));
  REQUIRE(t.looks() >= until);
}

}  // namespace

TEST_CASE("memory: free memory is returned once after a burst, when the work is over") {
  std::atomic<bool> idle{false};
  std::atomic<int> trims{0};
  TrimAfterBursts t([&] { return idle.load(); }, std::chrono::milliseconds(1), [&] { ++trims; });
  LooksPass(t, 3);
  CHECK(trims == 0);  // no work yet
  t.Note();
  LooksPass(t, 3);
  CHECK(trims == 0);  // work, but still busy
  idle = true;
  LooksPass(t, 3);
  CHECK(trims == 1);
  LooksPass(t, 3);
  CHECK(trims == 1);  // nothing new since
  t.Note();
  t.Note();
  LooksPass(t, 3);
  CHECK(trims == 2);
  CHECK(t.trims() == 2);
}

TEST_CASE("memory: ReturnFreeMemory and the real trim run (glibc)") {
  graydebug::ReturnFreeMemory();
  TrimAfterBursts t([] { return true; }, std::chrono::milliseconds(1));
  t.Note();
  for (int i = 0; t.trims() == 0 && i < 100000; ++i) std::this_thread::sleep_for(std::chrono::microseconds(100));
  CHECK(t.trims() == 1);
}
