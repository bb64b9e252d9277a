#include "kernels/matmul.h"

#include <algorithm>

namespace osprey::kernels {

int64_t matmul_scratch_bytes(const WeightMatrix& w, int64_t n_tokens) {
  return n_tokens * w.kernel.encoded_bytes(w.n_in);
}

void matmul(ThreadPool& pool, const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, uint8_t* scratch) {
  const RowKernel& k = w.kernel;
  const int64_t act_row = k.encoded_bytes(w.n_in);
  const int64_t n_in = w.n_in, n_out = w.n_out;
  pool.parallel_for(n_tokens, 1, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) k.encode_row(x + t * n_in, scratch + t * act_row, n_in);
  });
  // Row ranges in multiples of 16 so that two threads never write the same
  // 64-byte line of y; within a range, groups of rows share each activation load.
  constexpr int64_t kGroup = 16;
  pool.parallel_for(n_out, kGroup, [&](int64_t r0, int64_t r1, int) {
    float tmp[kGroup];
    for (int64_t r = r0; r < r1; r += kGroup) {
      const int64_t nr = std::min(kGroup, r1 - r);
      for (int64_t t = 0; t < n_tokens; ++t) {
        k.dots(w.data + r * w.row_bytes, w.row_bytes, nr, scratch + t * act_row, n_in, tmp);
        std::copy(tmp, tmp + nr, y + t * n_out + r);
      }
    }
  });
}

void add_bias(float* y, const float* bias, int64_t n_tokens, int64_t n_out) {
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t r = 0; r < n_out; ++r) y[t * n_out + r] += bias[r];
}

}  // namespace osprey::kernels
