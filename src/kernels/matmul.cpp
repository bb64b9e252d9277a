#include "kernels/matmul.h"

namespace osprey::kernels {

int64_t matmul_scratch_bytes(const WeightMatrix& w, int64_t n_tokens) {
  const QuantOps* act = quant_ops(w.ops->dot_type);
  return n_tokens * quant_row_bytes(*act, w.n_in);
}

void matmul(ThreadPool& pool, const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, uint8_t* scratch) {
  const QuantOps* act = quant_ops(w.ops->dot_type);
  const int64_t act_row = quant_row_bytes(*act, w.n_in);
  const int64_t n_in = w.n_in, n_out = w.n_out;
  pool.parallel_for(n_tokens, 1, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) act->quantize(x + t * n_in, scratch + t * act_row, n_in);
  });
  const DotFn dot = w.dot != nullptr ? w.dot : w.ops->dot;
  // Row ranges in multiples of 16 so that two threads never write the same
  // 64-byte line of y.
  pool.parallel_for(n_out, 16, [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; ++r) {
      const uint8_t* wr = w.data + r * w.row_bytes;
      for (int64_t t = 0; t < n_tokens; ++t) y[t * n_out + r] = dot(wr, scratch + t * act_row, n_in);
    }
  });
}

void add_bias(float* y, const float* bias, int64_t n_tokens, int64_t n_out) {
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t r = 0; r < n_out; ++r) y[t * n_out + r] += bias[r];
}

}  // namespace osprey::kernels
