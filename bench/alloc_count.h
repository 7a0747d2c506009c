#pragma once
// For the in-process benches: operator new counts its calls (include this in one file of a bench
// binary only), and Measure gives the median ns/op of `runs` runs of `iterations` calls with the
// allocations per op.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <utility>
#include <vector>

namespace graydebug::bench {
inline std::atomic<std::uint64_t> g_allocs{0};
}  // namespace graydebug::bench

void* operator new(std::size_t n) {
  graydebug::bench::g_allocs.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}

namespace graydebug::bench {

template <class F>
std::pair<double, double> Measure(F&& f, int iterations, int runs) {
  std::vector<double> ns;
  double allocs = 0;
  for (int r = 0; r < runs; ++r) {
    std::uint64_t a0 = g_allocs.load();
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < iterations; ++i) f();
    auto t1 = std::chrono::steady_clock::now();
    ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count() / iterations);
    allocs = static_cast<double>(g_allocs.load() - a0) / iterations;
  }
  std::sort(ns.begin(), ns.end());
  return {ns[ns.size() / 2], allocs};
}

}  // namespace graydebug::bench
