#include "graydebug/memory.h"

#include <malloc.h>

namespace graydebug {

void KeepLargeAllocationsMapped() {
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
}

void ReturnFreeMemory() {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // The sanitizer owns the heap, so glibc's arenas were never set up, and malloc_trim would set
  // them up from several threads at once: two informers finishing their first list together
  // crashed the webhook of an ASan build in mtrim (a fresh-clone CI run). Nothing to give back.
#else
  malloc_trim(0);
#endif
}

TrimAfterBursts::TrimAfterBursts(std::function<bool()> idle, std::chrono::milliseconds period,
                                 std::function<void()> trim)
    : idle_(std::move(idle)), period_(period), trim_(std::move(trim)) {
  thread_ = std::thread([this] { Loop(); });
}

TrimAfterBursts::~TrimAfterBursts() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void TrimAfterBursts::Loop() {
  uint64_t trimmed_at = 0;
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, period_, [this] { return stopping_; })) {
    const uint64_t work = work_.load(std::memory_order_relaxed);
    if (work != trimmed_at && idle_()) {
      trimmed_at = work;
      lock.unlock();
      trim_();
      trims_.fetch_add(1);
      lock.lock();
    }
    looks_.fetch_add(1);
  }
}

}  // namespace graydebug
