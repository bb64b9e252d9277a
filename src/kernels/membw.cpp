#include "kernels/membw.h"

#include <algorithm>
#include <chrono>
#include <vector>

namespace osprey::kernels {

double measure_read_bandwidth(ThreadPool& pool, size_t bytes, int reps) {
  std::vector<uint64_t> data(bytes / 8, 1);  // touched once here, so the pages exist
  std::vector<uint64_t> sink(pool.size() * 8);
  double best = 0;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    pool.parallel_for(static_cast<int64_t>(data.size()), 4096, [&](int64_t b, int64_t e, int t) {
      // Four independent sums so the adds never limit the loads.
      uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (int64_t i = b; i + 4 <= e; i += 4) s0 += data[i], s1 += data[i + 1], s2 += data[i + 2], s3 += data[i + 3];
      sink[t * 8] = s0 + s1 + s2 + s3;
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, static_cast<double>(bytes) / s);
  }
  volatile uint64_t keep = sink[0];
  (void)keep;
  return best;
}

}  // namespace osprey::kernels
