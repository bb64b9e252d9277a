// A persistent pool of worker threads. parallel_for hands each thread one
// contiguous slice of [0, n); the caller's thread takes a slice too. Threads
// are created once, never per token.
//
// A decode step runs a few hundred short parallel regions, so waking workers
// through a condition variable each time would cost more than the work.
// Workers therefore spin on an atomic generation counter for a while after
// each region and only then go to sleep.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "core/function_ref.h"

namespace osprey {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(begin, end, thread_index) over disjoint ranges covering [0, n).
  // Ranges are multiples of `grain` (except the last) so that threads do not
  // share cache lines of the output. The split depends only on n, grain and
  // the thread count, never on timing.
  void parallel_for(int64_t n, int64_t grain, FunctionRef<void(int64_t, int64_t, int)> fn);

 private:
  void worker_loop(int index);
  void run_slice(int index);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<int> sleeping_{0};
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable wake_;
  // The region being run; written before generation_ is bumped.
  const FunctionRef<void(int64_t, int64_t, int)>* job_ = nullptr;
  int64_t job_n_ = 0;
  int64_t job_grain_ = 1;
};

// Hardware threads available to this process, at least 1.
int default_thread_count();

}  // namespace osprey
