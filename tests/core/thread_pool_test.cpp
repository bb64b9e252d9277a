#include <gtest/gtest.h>

#include <atomic>
#include <vector>

#include "core/thread_pool.h"

namespace osprey {
namespace {

TEST(ThreadPool, CoversTheRangeExactlyOnce) {
  for (int threads : {1, 2, 3, 7}) {
    ThreadPool pool(threads);
    for (int64_t n : {1, 5, 16, 17, 1000}) {
      for (int64_t grain : {1, 4, 16}) {
        std::vector<std::atomic<int>> hits(n);
        pool.parallel_for(n, grain, [&](int64_t b, int64_t e, int t) {
          EXPECT_LT(t, threads);
          for (int64_t i = b; i < e; ++i) hits[i]++;
        });
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "n=" << n << " i=" << i;
      }
    }
  }
}

TEST(ThreadPool, RangesAreGrainAligned) {
  ThreadPool pool(3);
  pool.parallel_for(100, 16, [&](int64_t b, int64_t e, int) {
    EXPECT_EQ(b % 16, 0);
    EXPECT_TRUE(e == 100 || e % 16 == 0);
  });
}

TEST(ThreadPool, ManyRoundsReuseTheSameThreads) {
  ThreadPool pool(2);
  std::atomic<int64_t> total{0};
  for (int round = 0; round < 2000; ++round)
    pool.parallel_for(64, 1, [&](int64_t b, int64_t e, int) { total += e - b; });
  EXPECT_EQ(total.load(), 2000 * 64);
}

// Regions of alternating sizes back to back: a late worker from a region
// with few chunks must never claim work of the next, larger region (whose
// chunk count it could otherwise pair with its stale index).
TEST(ThreadPool, AlternatingRegionSizesCoverEachRangeOnce) {
  ThreadPool pool(3);
  std::vector<std::atomic<int>> hits(4096);
  for (int round = 0; round < 20000; ++round) {
    const int64_t n = round % 2 ? 4096 : 48;
    const int64_t grain = round % 3 ? 16 : 1;
    for (int64_t i = 0; i < n; ++i) hits[i].store(0, std::memory_order_relaxed);
    pool.parallel_for(n, grain, [&](int64_t b, int64_t e, int) {
      for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1, std::memory_order_relaxed);
    });
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "round " << round << " element " << i;
  }
}

}  // namespace
}  // namespace osprey
