#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

namespace graydebug {

// glibc's malloc raises its mmap threshold whenever a large mapped block is freed (up to 32 MiB);
// from then on the large transient buffers of a list (page bodies of ~1.4 MB, the JSON parser's
// tape) come from the heap and stay resident after they are freed: an informer's sync of 5000
// pods left 12 MiB more behind (docs/decisions.md, issue #18). This fixes the threshold at glibc's
// initial 128 KiB, so such buffers are mapped and go back to the kernel when freed. Process-wide:
// call it once, early (the manager does).
void KeepLargeAllocationsMapped();

// Gives the free pages of every malloc arena back to the kernel (glibc's malloc_trim(0)).
void ReturnFreeMemory();

// After a burst of work (concurrent reconciles leave freed memory in each worker's malloc arena,
// which glibc keeps), returns the free memory once the work is over: every `period` a thread of
// its own looks, and when work was noted since the last trim and `idle()` says none is left, calls
// `trim`. A steady trickle of work costs at most one trim per period.
class TrimAfterBursts {
 public:
  TrimAfterBursts(std::function<bool()> idle, std::chrono::milliseconds period,
                  std::function<void()> trim = ReturnFreeMemory);
  ~TrimAfterBursts();
  TrimAfterBursts(const TrimAfterBursts&) = delete;
  TrimAfterBursts& operator=(const TrimAfterBursts&) = delete;

  // One unit of work was done (cheap: one atomic increment).
  void Note() { work_.fetch_add(1, std::memory_order_relaxed); }
  uint64_t looks() const { return looks_.load(); }
  uint64_t trims() const { return trims_.load(); }

 private:
  void Loop();

  std::function<bool()> idle_;
  std::chrono::milliseconds period_;
  std::function<void()> trim_;
  std::atomic<uint64_t> work_{0}, looks_{0}, trims_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace graydebug
