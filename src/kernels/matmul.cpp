#include "kernels/matmul.h"

#include <algorithm>

#include "kernels/ops.h"
#include "osprey/status.h"

namespace osprey::kernels {

namespace {

constexpr int kMaxGroup = 4;

bool same_encoding(const RowKernel& a, const RowKernel& b) {
  return a.encode == b.encode && a.act_bytes == b.act_bytes && a.act_ops == b.act_ops;
}

// For each matrix, the index of the first matrix with the same activation encoding.
void encoding_owners(const WeightMatrix* const* ws, int count, int owner[kMaxGroup]) {
  for (int i = 0; i < count; ++i) {
    owner[i] = i;
    for (int j = 0; j < i; ++j)
      if (ws[j]->n_in == ws[i]->n_in && same_encoding(ws[j]->kernel, ws[i]->kernel)) {
        owner[i] = owner[j];
        break;
      }
  }
}

// The distance between two tokens' encoded rows: whole cache lines, and an
// odd number of them. Rows a multiple of 4 KiB apart (2048 fp32 values, say)
// fall into one set of the L1 cache, so a tile's tokens evicted each other's
// lines: the AVX-512 F16 tile of 12 tokens ran `gemm64/f16` well below half
// as fast with rows 8192 bytes apart as with one more line between them
// (README, "Measurements behind the kernels"). An
// odd line count is coprime to the number of sets, so up to that many
// consecutive tokens land in distinct sets.
}  // namespace

int64_t act_row_stride(const WeightMatrix& w) {
  constexpr int64_t kLine = 64;
  const int64_t lines = (w.kernel.encoded_bytes(w.n_in) + kLine - 1) / kLine;
  return (lines | 1) * kLine;
}

int64_t matmul_scratch_bytes(const WeightMatrix& w, int64_t n_tokens) { return n_tokens * act_row_stride(w); }

int64_t matmul_group_scratch_bytes(const WeightMatrix* const* ws, int count, int64_t n_tokens) {
  int owner[kMaxGroup];
  encoding_owners(ws, count, owner);
  int64_t total = 0;
  for (int i = 0; i < count; ++i)
    if (owner[i] == i) total += matmul_scratch_bytes(*ws[i], n_tokens);
  return total;
}

namespace {

// The activation rows of a region: where each matrix's encoded input lives.
struct Inputs {
  int owner[kMaxGroup];
  uint8_t* act[kMaxGroup];
  int64_t act_row[kMaxGroup];
  uint8_t* end = nullptr;  // the first scratch byte after them
};

Inputs lay_out_inputs(const WeightMatrix* const* ws, int count, int64_t n_tokens, uint8_t* scratch) {
  Inputs in;
  encoding_owners(ws, count, in.owner);
  uint8_t* next = scratch;
  for (int i = 0; i < count; ++i) {
    in.act_row[i] = act_row_stride(*ws[i]);
    if (in.owner[i] == i) {
      in.act[i] = next;
      next += n_tokens * in.act_row[i];
    } else {
      in.act[i] = in.act[in.owner[i]];
    }
  }
  in.end = next;
  return in;
}

int64_t norm_rows_offset(int64_t bytes) { return (bytes + 63) & ~int64_t{63}; }

// The products over all matrices' rows, their inputs already encoded.
void multiply(ThreadPool& pool, const WeightMatrix* const* ws, int count, const Inputs& in, int64_t n_tokens,
              float* const* ys) {
  // Row ranges in multiples of `group`: at least 16, so that two threads
  // never write the same 64-byte line of an output, and a multiple of every
  // matrix's RowKernel::row_group (all powers of two), since kernels that
  // interleave rows need their groups whole. A range may span two matrices;
  // each matrix starts on a multiple of `group` rows of the combined range,
  // so a thread's rows within it start on one too.
  int64_t group = 16;
  for (int i = 0; i < count; ++i) group = std::max(group, ws[i]->kernel.row_group);
  int64_t first_row[kMaxGroup + 1] = {0};
  for (int i = 0; i < count; ++i) first_row[i + 1] = first_row[i] + (ws[i]->n_out + group - 1) / group * group;
  const int64_t n_in = ws[0]->n_in;
  // For prompts, tiles of several tokens (RowKernel::tile_tokens) reuse each
  // unpacked weight block, and a block of rows that stays in L2 meets every
  // token tile before the next block is read, so the activations stream from
  // L3 once per block.
  constexpr int64_t kBlockWeightBytes = 256 * 1024;
  pool.parallel_for(first_row[count], group, [&](int64_t r0, int64_t r1, int) {
    int i = 0;
    for (int64_t r = r0; r < r1;) {
      while (r >= first_row[i + 1]) ++i;
      const WeightMatrix& w = *ws[i];
      const int64_t local = r - first_row[i];
      if (local >= w.n_out) {  // the padding after a matrix
        r = std::min(r1, first_row[i + 1]);
        continue;
      }
      const int64_t block = n_tokens <= w.kernel.tile_tokens
                                ? group
                                : std::max(group, kBlockWeightBytes / w.row_bytes / group * group);
      const int64_t nr = std::min({block, r1 - r, w.n_out - local});
      // All the tokens meet this block of rows, tile by tile (RowKernel::tile).
      w.kernel.tile(w.data + local * w.row_bytes, w.row_bytes, nr, in.act[i], in.act_row[i],
                    static_cast<int>(n_tokens), n_in, ys[i] + local, w.n_out);
      r += nr;
    }
  });
}

}  // namespace

void matmul_group(ThreadPool& pool, const WeightMatrix* const* ws, int count, const float* x, int64_t n_tokens,
                  float* const* ys, uint8_t* scratch) {
  OSPREY_CHECK(count >= 1 && count <= kMaxGroup);
  const Inputs in = lay_out_inputs(ws, count, n_tokens, scratch);
  const int64_t n_in = ws[0]->n_in;
  pool.parallel_for(n_tokens * count, 1, [&](int64_t b, int64_t e, int) {
    for (int64_t job = b; job < e; ++job) {
      const int i = static_cast<int>(job % count);
      const int64_t t = job / count;
      if (in.owner[i] == i) ws[i]->kernel.encode_row(x + t * n_in, in.act[i] + t * in.act_row[i], n_in);
    }
  });
  multiply(pool, ws, count, in, n_tokens, ys);
}

int64_t norm_matmul_group_scratch_bytes(const WeightMatrix* const* ws, int count, int64_t n_tokens, int n_threads) {
  return norm_rows_offset(matmul_group_scratch_bytes(ws, count, n_tokens)) +
         static_cast<int64_t>(n_threads) * ws[0]->n_in * static_cast<int64_t>(sizeof(float));
}

void norm_matmul_group(ThreadPool& pool, const WeightMatrix* const* ws, int count, const float* x,
                       const float* norm_weight, float eps, int64_t n_tokens, float* const* ys, uint8_t* scratch,
                       int64_t scratch_bytes) {
  OSPREY_CHECK(count >= 1 && count <= kMaxGroup);
  OSPREY_CHECK(scratch_bytes >= norm_matmul_group_scratch_bytes(ws, count, n_tokens, pool.size()));
  const Inputs in = lay_out_inputs(ws, count, n_tokens, scratch);
  const int64_t n_in = ws[0]->n_in;
  // One normalised row per thread, reused token after token.
  auto* rows = reinterpret_cast<float*>(scratch + norm_rows_offset(in.end - scratch));
  pool.parallel_for(n_tokens, 1, [&](int64_t b, int64_t e, int thread) {
    float* row = rows + static_cast<int64_t>(thread) * n_in;
    for (int64_t t = b; t < e; ++t) {
      rmsnorm(row, x + t * n_in, norm_weight, n_in, eps);
      for (int i = 0; i < count; ++i)
        if (in.owner[i] == i) ws[i]->kernel.encode_row(row, in.act[i] + t * in.act_row[i], n_in);
    }
  });
  multiply(pool, ws, count, in, n_tokens, ys);
}

void matmul(ThreadPool& pool, const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, uint8_t* scratch) {
  const WeightMatrix* ws[1] = {&w};
  float* ys[1] = {y};
  matmul_group(pool, ws, 1, x, n_tokens, ys, scratch);
}

void matmul_jobs(ThreadPool& pool, const MatmulJob* jobs, int64_t n_jobs) {
  // Chunks of `group` rows of one job (16 at least, so that two threads never
  // write one 64-byte line; whole row groups of interleaving kernels), numbered
  // job after job; a thread takes a range of chunks.
  int64_t group = 16;
  for (int64_t j = 0; j < n_jobs; ++j) group = std::max(group, jobs[j].w->kernel.row_group);
  int64_t total = 0;
  for (int64_t j = 0; j < n_jobs; ++j)
    if (jobs[j].n_tokens > 0) total += (jobs[j].w->n_out + group - 1) / group;
  pool.parallel_for(total, 1, [&](int64_t c0, int64_t c1, int) {
    int64_t j = 0, first = 0;  // job j's chunks start at chunk `first`
    auto chunks = [&](int64_t i) { return jobs[i].n_tokens > 0 ? (jobs[i].w->n_out + group - 1) / group : 0; };
    while (first + chunks(j) <= c0) first += chunks(j++);
    for (int64_t c = c0; c < c1;) {
      while (first + chunks(j) <= c) first += chunks(j++);
      const MatmulJob& job = jobs[j];
      const WeightMatrix& w = *job.w;
      const int64_t r0 = (c - first) * group;
      const int64_t n_chunks = std::min(c1, first + chunks(j)) - c;
      const int64_t nr = std::min(n_chunks * group, w.n_out - r0);
      // As in multiply(): with many tokens, a block of rows that stays in L2 meets them all.
      const int64_t block = job.n_tokens <= w.kernel.tile_tokens ? nr : std::max(group, (256 * 1024) / w.row_bytes / group * group);
      for (int64_t r = r0; r < r0 + nr; r += block)
        w.kernel.tile(w.data + r * w.row_bytes, w.row_bytes, std::min(block, r0 + nr - r), job.act, job.act_stride,
                      static_cast<int>(job.n_tokens), w.n_in, job.y + r, job.y_stride);
      c += n_chunks;
    }
  });
}

void add_bias(float* y, const float* bias, int64_t n_tokens, int64_t n_out) {
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t r = 0; r < n_out; ++r) y[t * n_out + r] += bias[r];
}

}  // namespace osprey::kernels
