// Dot products and gemv for each weight format at each kernel level.
//   build/bench/osprey_kernel_bench --benchmark_filter=gemv
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "core/fp16.h"
#include "kernels/dispatch.h"
#include "kernels/matmul.h"
#include "kernels/membw.h"
#include "kernels/ops.h"
#include "quant/quant.h"

namespace {

using namespace osprey;

std::vector<float> random_row(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d;
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// One 4096-element row dot product.
void BM_Dot(benchmark::State& state, DType type, kernels::Isa isa) {
  const int64_t n = 4096;
  const QuantOps* ops = quant_ops(type);
  const QuantOps* act = quant_ops(ops->dot_type);
  std::vector<uint8_t> w(quant_row_bytes(*ops, n)), a(quant_row_bytes(*act, n));
  ops->quantize(random_row(n, 1).data(), w.data(), n);
  act->quantize(random_row(n, 2).data(), a.data(), n);
  const kernels::DotFn dot = kernels::dot_kernel(type, isa);
  for (auto _ : state) benchmark::DoNotOptimize(dot(w.data(), a.data(), n));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(w.size()));
}

// A matrix of random rows with the kernel a model would use, repacked if the
// kernel wants that; `storage` holds its bytes.
kernels::WeightMatrix packed_matrix(DType type, int64_t n_in, int64_t n_out, uint64_t seed,
                                    std::vector<uint8_t>& storage) {
  const QuantOps* ops = quant_ops(type);
  const int64_t row = quant_row_bytes(*ops, n_in);
  std::vector<uint8_t> w(row * n_out);
  // Seven distinct rows, quantized once: k-quant quantization of a 500M-
  // element matrix would take minutes, and the kernels' cost does not depend
  // on the values.
  for (int64_t r = 0; r < std::min<int64_t>(7, n_out); ++r)
    ops->quantize(random_row(n_in, seed + r).data(), w.data() + r * row, n_in);
  for (int64_t r = 7; r < n_out; ++r) std::memcpy(w.data() + r * row, w.data() + (r % 7) * row, row);
  const kernels::RowKernel k = kernels::packed_row_kernel(type, kernels::active_isa(), n_out);
  storage = w;
  if (k.repack != nullptr)
    for (int64_t r = 0; r < n_out; r += k.row_group) k.repack(w.data() + r * row, storage.data() + r * row, n_in);
  return {storage.data(), ops, k, n_in, n_out, row, "bench"};
}

// out = W x for one token on all threads; bytes/s is the weight bandwidth
// decode sees. The matrix is n_out rows of n_in.
void run_gemv(benchmark::State& state, DType type, int64_t n_in, int64_t n_out) {
  std::vector<uint8_t> w;
  const kernels::WeightMatrix m = packed_matrix(type, n_in, n_out, 3, w);
  ThreadPool pool(default_thread_count());
  std::vector<uint8_t> scratch(kernels::matmul_scratch_bytes(m, 1));
  std::vector<float> x = random_row(n_in, 4), y(n_out);
  for (auto _ : state) kernels::matmul(pool, m, x.data(), 1, y.data(), scratch.data());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(w.size()));
}

// Prompt processing: 64 tokens through a 2048 -> 5632 matrix on all threads.
// Items are multiply-adds x 2 (flops), to set against fma_peak.
void BM_Gemm(benchmark::State& state, DType type) {
  const int64_t n_in = 2048, n_out = 5632, n_tok = 64;
  std::vector<uint8_t> w;
  const kernels::WeightMatrix m = packed_matrix(type, n_in, n_out, 10, w);
  ThreadPool pool(default_thread_count());
  std::vector<uint8_t> scratch(kernels::matmul_scratch_bytes(m, n_tok));
  std::vector<float> x = random_row(n_in * n_tok, 5), y(n_out * n_tok);
  for (auto _ : state) kernels::matmul(pool, m, x.data(), n_tok, y.data(), scratch.data());
  state.SetItemsProcessed(state.iterations() * 2 * n_in * n_out * n_tok);
}

#if defined(__x86_64__)
// The FMA roofline of one core (run with threads:2 for two): twelve
// independent chains of 8-wide fp32 FMAs, nothing else. Items are flops.
__attribute__((target("avx2,fma"))) void BM_FmaPeak(benchmark::State& state) {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i));
  const __m256 a = _mm256_set1_ps(0.999f), b = _mm256_set1_ps(1e-4f);
  constexpr int64_t kSteps = 4096;
  for (auto _ : state) {
    for (int64_t s = 0; s < kSteps; ++s)
      for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
    for (int i = 0; i < 12; ++i) benchmark::DoNotOptimize(acc[i]);
  }
  state.SetItemsProcessed(state.iterations() * kSteps * 12 * 8 * 2);
}

// The same with 512-bit registers: where the cores execute them at full
// width (Zen 5, Intel server cores) this peak is twice the 256-bit one, and
// it is the roofline for the AVX-512 F16/BF16 products.
__attribute__((target("avx512f"))) void BM_FmaPeak512(benchmark::State& state) {
  __m512 acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  const __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(1e-4f);
  constexpr int64_t kSteps = 4096;
  for (auto _ : state) {
    for (int64_t s = 0; s < kSteps; ++s)
      for (int i = 0; i < 16; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
    for (int i = 0; i < 16; ++i) benchmark::DoNotOptimize(acc[i]);
  }
  state.SetItemsProcessed(state.iterations() * kSteps * 16 * 16 * 2);
}
#endif

// A TinyLlama FFN-sized gemv (2048 -> 5632): it fits in the last-level cache.
void BM_Gemv(benchmark::State& state, DType type) { run_gemv(state, type, 2048, 5632); }

// A 590 MB matrix (TinyLlama's q4_0 size), far larger than any cache: what
// decode can reach from DRAM.
void BM_GemvStream(benchmark::State& state, DType type) { run_gemv(state, type, 2048, 32000 * 8); }
// The same with one row more, which no row group divides: the per-row
// kernels on the file's layout, to set against the interleaved ones.
void BM_GemvStreamRowwise(benchmark::State& state, DType type) { run_gemv(state, type, 2048, 32000 * 8 + 1); }

// Decode's real pattern: the seven products of a TinyLlama layer (q, k, v,
// o, gate, up, down) one after another, over eight layers of distinct
// weights (198 MB at q4_0, beyond the last-level cache). Set against
// gemv_stream (one 590 MB matrix), it measures what starting and ending
// each product costs: its prefetch starts cold, and it ends at a barrier.
void BM_GemvLayers(benchmark::State& state, DType type) {
  struct Shape {
    int64_t n_in, n_out;
  };
  const Shape layer[] = {{2048, 2048}, {2048, 256}, {2048, 256}, {2048, 2048},
                         {2048, 5632}, {2048, 5632}, {5632, 2048}};
  constexpr int kLayers = 8;
  std::vector<std::vector<uint8_t>> storage(kLayers * std::size(layer));
  std::vector<kernels::WeightMatrix> mats;
  int64_t bytes = 0, scratch_bytes = 0;
  for (int l = 0; l < kLayers; ++l)
    for (size_t i = 0; i < std::size(layer); ++i) {
      mats.push_back(packed_matrix(type, layer[i].n_in, layer[i].n_out, 20 + i, storage[mats.size()]));
      bytes += static_cast<int64_t>(storage[mats.size() - 1].size());
      scratch_bytes = std::max(scratch_bytes, kernels::matmul_scratch_bytes(mats.back(), 1));
    }
  ThreadPool pool(default_thread_count());
  std::vector<uint8_t> scratch(scratch_bytes);
  std::vector<float> x = random_row(5632, 4), y(5632);
  for (auto _ : state)
    for (const kernels::WeightMatrix& m : mats) kernels::matmul(pool, m, x.data(), 1, y.data(), scratch.data());
  state.SetBytesProcessed(state.iterations() * bytes);
}

// A streaming read of 1 GiB on every thread: the machine's read bandwidth.
void BM_ReadBandwidth(benchmark::State& state) {
  const size_t bytes = size_t{1} << 30;
  std::vector<uint64_t> data(bytes / 8, 1);
  ThreadPool pool(default_thread_count());
  for (auto _ : state) benchmark::DoNotOptimize(kernels::read_all(pool, data.data(), static_cast<int64_t>(data.size())));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(bytes));
}

// Attention as the model runs it: one call is a grouped-query group (8
// query heads of one KV head) for 4 consecutive tokens of a prompt, or 1 in
// decode, over an fp16 cache of n_ctx positions with heads of 64 (TinyLlama's
// shapes); one thread (the model spreads the calls over threads). Items are
// flops of Q.K and P.V, to set against fma_peak_avx512/threads:1.
void BM_Attention(benchmark::State& state, kernels::Isa isa) {
  constexpr int kHeads = 8, kDim = 64, kMaxQueries = kHeads * 4;
  const int64_t n_ctx = state.range(0);
  const int n_tokens = static_cast<int>(state.range(1)), n_queries = kHeads * n_tokens;
  std::vector<uint16_t> k(n_ctx * kDim), v(n_ctx * kDim);
  const std::vector<float> kf = random_row(n_ctx * kDim, 7), vf = random_row(n_ctx * kDim, 8);
  for (int64_t i = 0; i < n_ctx * kDim; ++i) k[i] = fp32_to_fp16(kf[i]), v[i] = fp32_to_fp16(vf[i]);
  const std::vector<float> qs = random_row(n_queries * kDim, 9);
  std::vector<float> outs(n_queries * kDim), scores(n_queries * n_ctx);
  const float* q[kMaxQueries];
  float* out[kMaxQueries];
  kernels::KvSpan spans[kMaxQueries];
  for (int i = 0; i < n_queries; ++i)
    q[i] = qs.data() + i * kDim, out[i] = outs.data() + i * kDim, spans[i] = {0, n_ctx - n_tokens + 1 + i / kHeads};
  const kernels::KvView kv = kernels::KvView::f16(k.data(), v.data(), kDim);
  const kernels::AttendGroupFn attend = kernels::attend_group_kernel(isa);
  for (auto _ : state) {
    attend(q, n_queries, spans, kv, kDim, kernels::AttendParams{0.125f}, scores.data(), out);
    benchmark::DoNotOptimize(outs.data());
  }
  int64_t positions = 0;
  for (int i = 0; i < n_queries; ++i) positions += spans[i].end;
  state.SetItemsProcessed(state.iterations() * positions * kDim * 4);
}

void register_all() {
  benchmark::RegisterBenchmark("read_bandwidth", BM_ReadBandwidth)->UseRealTime();
#if defined(__x86_64__)
  if (kernels::cpu_features().fma) benchmark::RegisterBenchmark("fma_peak", BM_FmaPeak)->ThreadRange(1, 2)->UseRealTime();
  if (kernels::cpu_features().avx512f)
    benchmark::RegisterBenchmark("fma_peak_avx512", BM_FmaPeak512)->ThreadRange(1, 2)->UseRealTime();
#endif
  for (DType t : {DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K})
    benchmark::RegisterBenchmark((std::string("gemm64/") + dtype_name(t)).c_str(), BM_Gemm, t)->UseRealTime();
  for (DType t : {DType::kQ4_0, DType::kQ8_0, DType::kQ4_K, DType::kQ6_K, DType::kF16}) {
    benchmark::RegisterBenchmark((std::string("gemv_stream/") + dtype_name(t)).c_str(), BM_GemvStream, t)->UseRealTime();
    benchmark::RegisterBenchmark((std::string("gemv_rowwise/") + dtype_name(t)).c_str(), BM_GemvStreamRowwise, t)->UseRealTime();
    benchmark::RegisterBenchmark((std::string("gemv_layers/") + dtype_name(t)).c_str(), BM_GemvLayers, t)->UseRealTime();
  }
  for (kernels::Isa isa : kernels::available_isas())
    benchmark::RegisterBenchmark((std::string("attention/") + kernels::isa_name(isa)).c_str(), BM_Attention, isa)
        ->Args({512, 4})
        ->Args({4096, 4})
        ->Args({4096, 1});
  for (DType t : supported_dtypes()) {
    for (kernels::Isa isa : kernels::available_isas())
      benchmark::RegisterBenchmark((std::string("dot/") + dtype_name(t) + "/" + kernels::isa_name(isa)).c_str(), BM_Dot, t, isa);
    benchmark::RegisterBenchmark((std::string("gemv/") + dtype_name(t)).c_str(), BM_Gemv, t)->UseRealTime();
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
