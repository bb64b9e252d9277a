// y = x · Wᵀ for a weight matrix in any registered format.
//   W: n_out rows of n_in elements, each row encoded in `ops->type`
//   x: [n_tokens, n_in] floats
//   y: [n_tokens, n_out] floats
// Activations are encoded once per row in the form the matrix's RowKernel
// asks for, then every output row is one dot product per token. Each y
// element is computed by exactly one thread, the same way whichever thread
// it is: results do not depend on the thread count.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/dispatch.h"
#include "quant/quant.h"

namespace osprey::kernels {

struct WeightMatrix {
  const uint8_t* data = nullptr;
  const QuantOps* ops = nullptr;
  RowKernel kernel;  // chosen for this CPU at load
  int64_t n_in = 0;
  int64_t n_out = 0;
  int64_t row_bytes = 0;
  // The file's name for the tensor this matrix is, or is a row range or an
  // expert of (activation statistics are kept per tensor).
  std::string tensor;
};

// Bytes of scratch `matmul` needs for n_tokens rows of activations.
int64_t matmul_scratch_bytes(const WeightMatrix& w, int64_t n_tokens);

// `scratch` must hold matmul_scratch_bytes(w, n_tokens) bytes.
void matmul(ThreadPool& pool, const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, uint8_t* scratch);

// Several matrices that read the same input (Q/K/V; gate/up) in one parallel
// region: x is encoded once per distinct encoding and the threads split all
// the matrices' rows together. ys[i] is [n_tokens, ws[i]->n_out].
int64_t matmul_group_scratch_bytes(const WeightMatrix* const* ws, int count, int64_t n_tokens);
void matmul_group(ThreadPool& pool, const WeightMatrix* const* ws, int count, const float* x, int64_t n_tokens,
                  float* const* ys, uint8_t* scratch);

// matmul_group with each input row RMS-normalised on the way in
// (rmsnorm(x[t], norm_weight, eps), as kernels::rmsnorm): each normalised row
// is encoded for the matrices as soon as it is made and never stored, and the
// norms run on all threads. Bit for bit what rmsnorm then matmul_group gives.
// `scratch` holds scratch_bytes bytes, at least
// norm_matmul_group_scratch_bytes(..., pool.size()).
int64_t norm_matmul_group_scratch_bytes(const WeightMatrix* const* ws, int count, int64_t n_tokens, int n_threads);
void norm_matmul_group(ThreadPool& pool, const WeightMatrix* const* ws, int count, const float* x,
                       const float* norm_weight, float eps, int64_t n_tokens, float* const* ys, uint8_t* scratch,
                       int64_t scratch_bytes);

// The byte distance between encoded activation rows for `w` (whole cache
// lines, an odd number of them), as the products above lay them out.
int64_t act_row_stride(const WeightMatrix& w);

// Independent products in one parallel region: for mixture-of-experts, each
// selected expert's rows against the tokens routed to it, so that all
// experts of a layer share one barrier instead of one each. Job j computes
// y[t * y_stride + r] = (row r of *w) . (encoded row t of act) for
// t < n_tokens and every row r of w; act rows are act_stride bytes apart,
// encoded by w->kernel.
struct MatmulJob {
  const WeightMatrix* w = nullptr;
  const uint8_t* act = nullptr;
  int64_t act_stride = 0;
  int64_t n_tokens = 0;
  float* y = nullptr;
  int64_t y_stride = 0;
};
void matmul_jobs(ThreadPool& pool, const MatmulJob* jobs, int64_t n_jobs);

// Adds a bias [n_out] to each of n_tokens rows of y.
void add_bias(float* y, const float* bias, int64_t n_tokens, int64_t n_out);

}  // namespace osprey::kernels
