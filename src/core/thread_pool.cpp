#include "core/thread_pool.h"

#include <algorithm>

#include "osprey/status.h"

#include <sched.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace osprey {

namespace {
// About a millisecond of spinning before a worker sleeps: longer than the gap
// between two regions of one decode step, shorter than anything a person notices.
constexpr int kSpinsBeforeSleep = 1 << 15;
// Spinners hand the core back now and then, in case the thread they wait for
// needs it.
constexpr int kSpinsPerYield = 256;
// Chunks per thread: enough for a late thread's share to be picked up by the
// others, few enough that claiming costs nothing.
constexpr int64_t kChunksPerThread = 4;

constexpr uint64_t pack_claim(uint32_t generation, int64_t n_chunks, int64_t index) {
  return (static_cast<uint64_t>(generation) << 32) | (static_cast<uint64_t>(n_chunks) << 16) |
         static_cast<uint64_t>(index);
}

inline void cpu_relax() {
#if defined(__x86_64__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

inline void spin(int spins) {
  if (spins % kSpinsPerYield == 0) std::this_thread::yield();
  else cpu_relax();
}
}  // namespace

int default_thread_count() {
#if defined(__EMSCRIPTEN__)
  // Threads are Web Workers started with the module (OSPREY_WASM_THREADS);
  // asking for more than it holds would wait forever for a new one.
  return std::clamp(static_cast<int>(std::thread::hardware_concurrency()), 1, OSPREY_WASM_THREADS);
#else
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
#endif
}

#if defined(__EMSCRIPTEN__)
// A thread is a Web Worker from the pool the module starts with; one more
// than it holds would never start (the page's thread waits for it).
ThreadPool::ThreadPool(int n_threads) : n_threads_(std::clamp(n_threads, 1, OSPREY_WASM_THREADS)) {
#else
ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
#endif
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

void ThreadPool::run_chunks(uint32_t generation, int index) {
  for (;;) {
    uint64_t v = claim_.load(std::memory_order_acquire);
    int64_t chunk_index;
    for (;;) {
      if (static_cast<uint32_t>(v >> 32) != generation) return;
      chunk_index = static_cast<int64_t>(v & 0xFFFFu);
      if (chunk_index >= static_cast<int64_t>((v >> 16) & 0xFFFFu)) return;
      if (claim_.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel)) break;
    }
    // The claim succeeded for this generation, so the region is still open
    // and its fields are the ones published with it.
    const int64_t chunk = chunk_.load(std::memory_order_relaxed);
    const int64_t begin = chunk_index * chunk;
    const int64_t end = std::min(job_n_.load(std::memory_order_relaxed), begin + chunk);
    (*job_.load(std::memory_order_relaxed))(begin, end, index);
    done_.fetch_add(1, std::memory_order_release);
  }
}

void ThreadPool::worker_loop(int index) {
  uint32_t seen = 0;
  for (;;) {
    int spins = 0;
    while (generation_.load(std::memory_order_acquire) == seen && !stop_.load(std::memory_order_relaxed)) {
      if (++spins < kSpinsBeforeSleep) {
        spin(spins);
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
    run_chunks(seen, index);
  }
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, FunctionRef<void(int64_t, int64_t, int)> fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int64_t grains = (n + grain - 1) / grain;
  const int64_t per_chunk = std::max<int64_t>(1, (grains + n_threads_ * kChunksPerThread - 1) / (n_threads_ * kChunksPerThread));
  const int64_t chunk = per_chunk * grain;
  const int64_t n_chunks = (n + chunk - 1) / chunk;
  if (n_threads_ == 1 || n_chunks == 1) {
    fn(0, n, 0);
    return;
  }
  OSPREY_CHECK(n_chunks < (1 << 16));  // at most n_threads * kChunksPerThread + 1
  job_.store(&fn, std::memory_order_relaxed);
  job_n_.store(n, std::memory_order_relaxed);
  chunk_.store(chunk, std::memory_order_relaxed);
  done_.store(0, std::memory_order_relaxed);
  const uint32_t generation = generation_.load(std::memory_order_relaxed) + 1;
  claim_.store(pack_claim(generation, n_chunks, 0), std::memory_order_release);
  generation_.store(generation, std::memory_order_release);
  if (sleeping_.load() > 0) {
    std::lock_guard<std::mutex> lock(mutex_);
    wake_.notify_all();
  }
  run_chunks(generation, 0);
  for (int spins = 1; done_.load(std::memory_order_acquire) < n_chunks; ++spins) spin(spins);
}

}  // namespace osprey
