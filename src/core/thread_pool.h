// A persistent pool of worker threads. parallel_for cuts [0, n) into chunks
// that the caller's thread and the workers claim one at a time. Threads are
// created once, never per token.
//
// Two costs shape it. A decode step runs a few hundred short regions, so
// workers spin briefly between regions instead of sleeping on a condition
// variable. And when the machine is busier than it has cores, a worker may
// not be scheduled for milliseconds: with a fixed split everyone would wait
// for it, but with claimed chunks whoever runs does the work.
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
  // Range bounds are multiples of `grain` (except the last) so that threads do
  // not share cache lines of the output; thread_index is unique among the
  // calls running at once. Which thread runs a range depends on timing, so fn
  // must compute each element the same way whatever range it falls in.
  void parallel_for(int64_t n, int64_t grain, FunctionRef<void(int64_t, int64_t, int)> fn);

 private:
  void worker_loop(int index);
  // Claims and runs chunks of region `generation` until none are left.
  void run_chunks(uint32_t generation, int index);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::atomic<uint32_t> generation_{0};
  // generation (32 bits) | chunk count (16) | index of the next unclaimed
  // chunk (16). A claim is one compare-and-swap on this word, checked against
  // the count in the same word, so it can only succeed for chunks of the
  // region it names: a late worker can never pair an old region's index with
  // a newer region's count or job.
  std::atomic<uint64_t> claim_{0};
  std::atomic<int64_t> done_{0};  // chunks finished in the current region
  std::atomic<int> sleeping_{0};
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable wake_;
  // The current region; written before claim_ is published.
  std::atomic<const FunctionRef<void(int64_t, int64_t, int)>*> job_{nullptr};
  std::atomic<int64_t> job_n_{0}, chunk_{1};
};

// Hardware threads available to this process, at least 1.
int default_thread_count();

}  // namespace osprey
