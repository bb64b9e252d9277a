// AVX2 kernels for F16 and BF16 matrices whose rows are interleaved in
// groups of 32, element by element: the layout the AVX-512 level reads
// (repack_rows16 in kernels/repack.h), so one repack serves both levels.
// Built with -mavx2 -mfma -mf16c; only called after the CPU was probed.
//
// Why: the row tiles (gemm_float_avx2.cpp) decode four rows side by side,
// four streams each with its own prefetch, and held AVX2 F16 decode at 42-74%
// of the read bandwidth (Zen 5, Zen 4); one stream a group reads at 94-95%
// (README, "Measurements behind the kernels"). Here a 64-byte line is
// element k of all 32 rows, so a group is one sequential stream.
//
// Every output is one lane of one FMA chain over k in order, whatever the
// tile's token count, so decode and prompt tiles agree bit for bit, and with
// the AVX-512 level's x32 kernels too (the same chains, eight lanes at a
// time instead of sixteen).
//  - Decode keeps the line's four vectors' chains in flight at once: four
//    FMAs a line against the FMA latency.
//  - A prompt tile of up to six tokens takes the group's rows in two halves
//    of 16 (two vectors a line): 12 accumulators, two weight vectors and a
//    broadcast fill 15 of the 16 registers. The half it is not reading
//    waits in L2 (a group of 2048-wide rows is 128 KiB).
#include <immintrin.h>

#include "kernels/dispatch.h"
#include "kernels/group_dispatch.h"
#include "kernels/repack.h"
#include "kernels/x86/avx2/float_encode.h"
#include "kernels/x86/avx2/float_formats.h"

namespace osprey::kernels::avx2 {

namespace {

// How far ahead of the group's one stream each line is fetched.
constexpr int64_t kGroupPrefetchBytes = 2048;

// The activations: the fp32 row, already rounded to the weight's type.
int64_t act_bytes(int64_t n) { return n * static_cast<int64_t>(sizeof(float)); }

template <class Format>
struct FloatX32 {
  static constexpr int kRows = 32;
  static constexpr int kTileTokens = 6;

  template <int NT>
  static void tile(const uint8_t* g, const uint8_t* act, int64_t act_stride, int64_t n, float* out,
                   int64_t out_stride) {
    const auto* w = reinterpret_cast<const uint16_t*>(g);
    if constexpr (NT == 1) {
      const auto* a = reinterpret_cast<const float*>(act);
      __m256 acc[4];
      for (auto& v : acc) v = _mm256_setzero_ps();
      for (int64_t k = 0; k < n; ++k, w += kRows) {
        _mm_prefetch(reinterpret_cast<const char*>(w) + kGroupPrefetchBytes, _MM_HINT_T0);
        const __m256 av = _mm256_set1_ps(a[k]);
        for (int v = 0; v < 4; ++v) acc[v] = _mm256_fmadd_ps(Format::load(w + 8 * v), av, acc[v]);
      }
      for (int v = 0; v < 4; ++v) _mm256_storeu_ps(out + 8 * v, acc[v]);
    } else {
      for (int half = 0; half < 2; ++half) half_tile<NT>(w + 16 * half, act, act_stride, n, out + 16 * half,
                                                         out_stride);
    }
  }

  // Rows 0-15 of the 32 at w (which points at the half's first row).
  template <int NT>
  static void half_tile(const uint16_t* w, const uint8_t* act, int64_t act_stride, int64_t n, float* out,
                        int64_t out_stride) {
    const float* a[NT];
    for (int t = 0; t < NT; ++t) a[t] = reinterpret_cast<const float*>(act + t * act_stride);
    __m256 lo[NT], hi[NT];
    for (int t = 0; t < NT; ++t) lo[t] = hi[t] = _mm256_setzero_ps();
    for (int64_t k = 0; k < n; ++k, w += kRows) {
      _mm_prefetch(reinterpret_cast<const char*>(w) + kGroupPrefetchBytes, _MM_HINT_T0);
      const __m256 w0 = Format::load(w), w1 = Format::load(w + 8);
      for (int t = 0; t < NT; ++t) {
        // set1 of a loaded float, not _mm256_broadcast_ss: with that builtin,
        // which takes a pointer, GCC 12 kept every accumulator in memory as
        // well and stored all twelve each line, halving the tile's speed.
        const __m256 av = _mm256_set1_ps(a[t][k]);
        lo[t] = _mm256_fmadd_ps(w0, av, lo[t]);
        hi[t] = _mm256_fmadd_ps(w1, av, hi[t]);
      }
    }
    for (int t = 0; t < NT; ++t) {
      _mm256_storeu_ps(out + t * out_stride, lo[t]);
      _mm256_storeu_ps(out + t * out_stride + 8, hi[t]);
    }
  }

  static void repack(const uint8_t* src, uint8_t* dst, int64_t n) { repack_rows16(src, dst, n, kRows); }
  static void unpack(const uint8_t* group, int64_t row, uint8_t* dst, int64_t n) {
    unpack_rows16(group, row, dst, n, kRows);
  }
};

template <class Format>
RowKernel x32_row_kernel(void (*encode)(const float*, void*, int64_t)) {
  using Kernel = FloatX32<Format>;
  return group_row_kernel<Kernel>(act_bytes, encode, Kernel::repack, Kernel::unpack);
}

}  // namespace

bool interleaved_float_kernel_for(DType type, RowKernel& out) {
  switch (type) {
    case DType::kF16: out = x32_row_kernel<F16Format>(encode_widened_f16); return true;
    case DType::kBF16: out = x32_row_kernel<BF16Format>(encode_widened_bf16); return true;
    default: return false;
  }
}

}  // namespace osprey::kernels::avx2
