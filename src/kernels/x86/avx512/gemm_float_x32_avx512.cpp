// AVX-512 kernels for F16 and BF16 matrices whose rows are interleaved in
// groups of 32, element by element (repack_rows16 in kernels/repack.h).
// Built with the AVX-512 flags; only called after the CPU was probed.
//
// Why: the row tiles of gemm_float_avx512.cpp take dot products, so every
// FMA needs a vector of weights and a vector of activations, and a 4 x 4
// tile reads 24 bytes from L2 per FMA; where two 512-bit FMA pipes retire 64
// flops a cycle, that held `gemm64/f16` near half of the FMA peak
// (README, "Measurements behind the kernels").
// Here one line of the group is element k of all 32 rows: it converts into
// two vectors, each multiplied by one activation broadcast from memory, so
// a group against 12 tokens does 24 FMAs per line (about 5 bytes per FMA) and
// converts each weight once for 12 tokens instead of 4.
//
// Every output is one FMA chain over k in order, whatever the tile's token
// count, so decode and prompt tiles agree bit for bit. Decode has two
// chains per group in flight: latency-bound from cache, but one stream at
// more than one core's share of the memory bandwidth.
// GCC 12 reports the _mm512_undefined_* operands inside its own intrinsics
// (conversions) as uninitialized; they are fully overwritten. The pragmas
// precede the header, where those inline functions are defined.
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include "kernels/dispatch.h"
#include "kernels/group_dispatch.h"
#include "kernels/repack.h"
#include "kernels/x86/avx2/float_encode.h"
#include "kernels/x86/avx512/avx512_util.h"

namespace osprey::kernels::avx512 {

namespace {

constexpr int kRows = 32;

// The activations: the fp32 row, already rounded to the weight's type.
int64_t act_bytes(int64_t n) { return n * static_cast<int64_t>(sizeof(float)); }

// Load widens 16 weights of the format to fp32.
template <__m512 (*Load)(const uint16_t*)>
struct FloatX32 {
  static constexpr int kRows = osprey::kernels::avx512::kRows;
  // 12 tokens keep 24 accumulators, the weights' two vectors and a broadcast
  // in the 32 registers.
  static constexpr int kTileTokens = 12;

  template <int NT>
  static void tile(const uint8_t* g, const uint8_t* act, int64_t act_stride, int64_t n, float* out,
                   int64_t out_stride) {
    const auto* w = reinterpret_cast<const uint16_t*>(g);
    const float* a[NT];
    for (int t = 0; t < NT; ++t) a[t] = reinterpret_cast<const float*>(act + t * act_stride);
    __m512 lo[NT], hi[NT];
    for (int t = 0; t < NT; ++t) lo[t] = hi[t] = _mm512_setzero_ps();
    for (int64_t k = 0; k < n; ++k, w += kRows) {
      _mm_prefetch(reinterpret_cast<const char*>(w) + kGroupPrefetchBytes, _MM_HINT_T0);
      const __m512 w0 = Load(w), w1 = Load(w + 16);
      for (int t = 0; t < NT; ++t) {
        const __m512 av = _mm512_set1_ps(a[t][k]);
        lo[t] = _mm512_fmadd_ps(w0, av, lo[t]);
        hi[t] = _mm512_fmadd_ps(w1, av, hi[t]);
      }
    }
    for (int t = 0; t < NT; ++t) {
      _mm512_storeu_ps(out + t * out_stride, lo[t]);
      _mm512_storeu_ps(out + t * out_stride + 16, hi[t]);
    }
  }

  static void repack(const uint8_t* src, uint8_t* dst, int64_t n) { repack_rows16(src, dst, n, kRows); }
  static void unpack(const uint8_t* group, int64_t row, uint8_t* dst, int64_t n) {
    unpack_rows16(group, row, dst, n, kRows);
  }
};

template <__m512 (*Load)(const uint16_t*)>
RowKernel x32_row_kernel(void (*encode)(const float*, void*, int64_t)) {
  using Kernel = FloatX32<Load>;
  return group_row_kernel<Kernel>(act_bytes, encode, Kernel::repack, Kernel::unpack);
}

}  // namespace

bool interleaved_float_row_kernel_for(DType type, RowKernel& out) {
  switch (type) {
    case DType::kF16: out = x32_row_kernel<load_f16x16>(avx2::encode_widened_f16); return true;
    case DType::kBF16: out = x32_row_kernel<load_bf16x16>(avx2::encode_widened_bf16); return true;
    default: return false;
  }
}

}  // namespace osprey::kernels::avx512
