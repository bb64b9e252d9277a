#include "core/thread_pool.h"

#include <algorithm>

#include <sched.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace osprey {

namespace {
// About a millisecond of spinning before a worker sleeps: longer than the gap
// between two regions of one decode step, shorter than anything a person notices.
constexpr int kSpinsBeforeSleep = 1 << 15;

inline void cpu_relax() {
#if defined(__x86_64__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}
}  // namespace

int default_thread_count() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_slice(int index) {
  // Split [0, n) into n_threads_ slices whose sizes are multiples of the grain.
  const int64_t chunks = (job_n_ + job_grain_ - 1) / job_grain_;
  const int64_t per = chunks / n_threads_;
  const int64_t extra = chunks % n_threads_;
  const int64_t c0 = index * per + std::min<int64_t>(index, extra);
  const int64_t c1 = c0 + per + (index < extra ? 1 : 0);
  const int64_t begin = std::min(job_n_, c0 * job_grain_);
  const int64_t end = std::min(job_n_, c1 * job_grain_);
  if (begin < end) (*job_)(begin, end, index);
}

void ThreadPool::worker_loop(int index) {
  uint64_t seen = 0;
  for (;;) {
    int spins = 0;
    while (generation_.load(std::memory_order_acquire) == seen && !stop_.load(std::memory_order_relaxed)) {
      if (++spins < kSpinsBeforeSleep) {
        cpu_relax();
        continue;
      }
      // Announce the sleep before re-checking under the lock, so that a
      // region published meanwhile either is seen here or sees us sleeping.
      std::unique_lock<std::mutex> lock(mutex_);
      sleeping_.fetch_add(1);
      wake_.wait(lock, [&] { return stop_.load() || generation_.load() != seen; });
      sleeping_.fetch_sub(1);
      spins = 0;
    }
    if (stop_.load()) return;
    seen = generation_.load(std::memory_order_acquire);
    run_slice(index);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, FunctionRef<void(int64_t, int64_t, int)> fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  if (n_threads_ == 1 || n <= grain) {
    fn(0, n, 0);
    return;
  }
  job_ = &fn;
  job_n_ = n;
  job_grain_ = grain;
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  if (sleeping_.load() > 0) {
    std::lock_guard<std::mutex> lock(mutex_);
    wake_.notify_all();
  }
  run_slice(0);
  while (pending_.load(std::memory_order_acquire) != 0) cpu_relax();
  job_ = nullptr;
}

}  // namespace osprey
