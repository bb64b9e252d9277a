#include "kernels/membw.h"

#include <algorithm>
#include <chrono>
#include <utility>
#include <vector>

#include "core/median.h"
#include "core/page_buffer.h"

namespace osprey::kernels {

uint64_t read_all(ThreadPool& pool, const uint64_t* data, int64_t n) {
  std::vector<uint64_t> sink(static_cast<size_t>(pool.size()) * 8, 0);  // one cache line per thread index
  pool.parallel_for(n, 4096, [&](int64_t b, int64_t e, int t) {
    // A 64-byte line per step into eight independent sums (the compiler
    // makes them vector adds), and each line asked for 4 KiB ahead, as the
    // kernels prefetch their weight streams. The plain loop (four scalar
    // sums, the hardware prefetcher alone) read measurably less, so decode
    // appeared to stream faster than the machine can read
    // (README, "Measurements behind the kernels").
    constexpr int64_t kAhead = 4096 / sizeof(uint64_t);
    uint64_t s[8] = {0};
    int64_t i = b;
    for (; i + 8 <= e; i += 8) {
      __builtin_prefetch(data + i + kAhead);
      for (int k = 0; k < 8; ++k) s[k] += data[i + k];
    }
    for (; i < e; ++i) s[0] += data[i];
    uint64_t sum = 0;
    for (uint64_t v : s) sum += v;
    sink[static_cast<size_t>(t) * 8] += sum;
  });
  uint64_t total = 0;
  for (size_t k = 0; k < sink.size(); k += 8) total += sink[k];
  return total;
}

double measure_read_bandwidth(ThreadPool& pool, size_t bytes, int reps) {
  // The same kind of memory as the repacked weights (transparent huge pages
  // where the kernel gives them), so membw % compares like with like. With
  // 4 KiB pages it read within run-to-run noise of this: the page size is
  // not what decides the figure (README, "Measurements behind the kernels").
  auto buf = PageBuffer::allocate(bytes / 8 * 8);
  if (!buf.ok()) return 0;
  auto* data = reinterpret_cast<uint64_t*>(buf->data());
  const int64_t n = static_cast<int64_t>(bytes / 8);
  for (int64_t i = 0; i < n; ++i) data[i] = 1;  // touched once here, so the pages exist
  // The median pass, not the best: a pass takes milliseconds, and on a
  // shared host the best of eight caught bursts 8-22% above the median (on
  // Zen 5, five runs), which a decode averaged over seconds cannot sustain
  // either; a generation rate is set against this as like against like.
  std::vector<double> rates;
  volatile uint64_t keep = 0;
  for (int r = 0; r < std::max(reps, 1); ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    keep = keep + read_all(pool, data, n);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rates.push_back(static_cast<double>(bytes) / s);
  }
  return median(std::move(rates));
}

}  // namespace osprey::kernels
