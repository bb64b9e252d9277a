// AVX-512 tiles for the 16-bit float formats F16 and BF16: NR weight rows
// against NT token rows (decode is NT = 1). Built with the AVX-512 flags;
// only called after the CPU was probed.
//
// The activations are the AVX2 tiles' (gemm_float_avx2.cpp): rounded once to
// the weight's type and stored widened to fp32. With 32 registers a tile of
// 4 rows x 4 tokens keeps 16 accumulators, so each converted weight vector
// serves four tokens and each activation load four rows; decode reads one
// row at a time (see float_tile). On Zen 4 a 512-bit
// FMA does no more arithmetic per cycle than two 256-bit ones; the gain is
// half the instructions for the same work and a prefetch distance tuned for
// this machine (avx512_util.h).
// GCC 12 reports the _mm512_undefined_* operands inside its own intrinsics
// (conversions, reductions) as uninitialized; they are fully overwritten. The
// pragmas precede the header, where those inline functions are defined.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include "kernels/dispatch.h"
#include "kernels/tile_dispatch.h"
#include "kernels/x86/avx512/avx512_util.h"

namespace osprey::kernels::avx2 {
int64_t widened_bytes(int64_t n);                               // gemm_float_avx2.cpp
void encode_widened_f16(const float* x, void* act, int64_t n);   // gemm_float_avx2.cpp
void encode_widened_bf16(const float* x, void* act, int64_t n);  // gemm_float_avx2.cpp
}  // namespace osprey::kernels::avx2

namespace osprey::kernels::avx512 {

namespace {

struct F16Format {
  static __m512 load16(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static float load1(uint16_t h) { return _cvtsh_ss(h); }
};

struct BF16Format {
  static __m512 load16(const uint16_t* p) {
    const __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
  }
  static float load1(uint16_t b) {
    const uint32_t bits = static_cast<uint32_t>(b) << 16;
    float f;
    __builtin_memcpy(&f, &bits, 4);
    return f;
  }
};

template <typename Format, int NR, int NT>
void float_tile(const uint8_t* w, int64_t row_bytes, const uint8_t* act, int64_t act_stride, int64_t n, float* out,
                int64_t out_stride) {
  const uint16_t* row[NR];
  for (int r = 0; r < NR; ++r) row[r] = reinterpret_cast<const uint16_t*>(w + r * row_bytes);
  const float* a[NT];
  for (int t = 0; t < NT; ++t) a[t] = reinterpret_cast<const float*>(act + t * act_stride);
  __m512 acc[NR][NT];
  for (int r = 0; r < NR; ++r)
    for (int t = 0; t < NT; ++t) acc[r][t] = _mm512_setzero_ps();
  auto step = [&](int64_t i) {
    __m512 wv[NR];
    for (int r = 0; r < NR; ++r) wv[r] = Format::load16(row[r] + i);
    for (int t = 0; t < NT; ++t) {
      const __m512 av = _mm512_loadu_ps(a[t] + i);
      for (int r = 0; r < NR; ++r) acc[r][t] = _mm512_fmadd_ps(wv[r], av, acc[r][t]);
    }
  };
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {  // one 64-byte line of each row
    // Decode reads one row at a time: the rows of a matrix are then a single
    // sequential stream, which the hardware prefetcher follows at about 90%
    // of the read bandwidth (gemv_stream/f16: 28-34 GB/s against 30-39 for a
    // plain read), where 4 or 12 rows side by side, prefetched or not, gave
    // 19-24. Tiles are compute-bound and prefetch their rows.
    if constexpr (NR > 1)
      for (int r = 0; r < NR; ++r)
        _mm_prefetch(reinterpret_cast<const char*>(row[r] + i) + kPrefetchBytes, _MM_HINT_T0);
    step(i);
    step(i + 16);
  }
  for (; i + 16 <= n; i += 16) step(i);
  for (int r = 0; r < NR; ++r)
    for (int t = 0; t < NT; ++t) {
      float s = _mm512_reduce_add_ps(acc[r][t]);
      for (int64_t k = i; k < n; ++k) s += Format::load1(row[r][k]) * a[t][k];
      out[t * out_stride + r] = s;
    }
}

template <int NR, int NT>
struct F16Tile {
  static void run(const uint8_t* w, int64_t rb, const uint8_t* act, int64_t as, int64_t n, float* out, int64_t os) {
    float_tile<F16Format, NR, NT>(w, rb, act, as, n, out, os);
  }
};
template <int NR, int NT>
struct BF16Tile {
  static void run(const uint8_t* w, int64_t rb, const uint8_t* act, int64_t as, int64_t n, float* out, int64_t os) {
    float_tile<BF16Format, NR, NT>(w, rb, act, as, n, out, os);
  }
};

template <template <int, int> class Tile>
void set_float_kernel(RowKernel& out, void (*encode)(const float*, void*, int64_t)) {
  out = RowKernel{};
  out.act_bytes = avx2::widened_bytes;
  out.encode = encode;
  out.dot_rows = TileDispatch<Tile, 1, 4>::decode;
  out.dot_tile = TileDispatch<Tile, 1, 4>::tile;
}

}  // namespace

bool row_kernel_for_float(DType type, RowKernel& out) {
  switch (type) {
    case DType::kF16: set_float_kernel<F16Tile>(out, avx2::encode_widened_f16); return true;
    case DType::kBF16: set_float_kernel<BF16Tile>(out, avx2::encode_widened_bf16); return true;
    default: return false;
  }
}

}  // namespace osprey::kernels::avx512
