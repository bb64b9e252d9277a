// AVX2 tiles for the 32-element block formats Q4_0 and Q8_0: NR weight rows
// against NT token rows (decode is NT = 1). Built with -mavx2 -mfma -mf16c;
// only called after the CPU was probed.
//
// Activations are "q8 planar" (kernels/planar_act.h): Q8_0's values and
// scales, so results agree with the scalar reference up to float summation
// order. Without VNNI, int8 products go through maddubs, which wants an
// unsigned left operand: each weight block is unpacked to signed bytes once,
// its absolute value taken once, and only the sign is moved onto each
// token's activations.
#include <immintrin.h>

#include "kernels/dispatch.h"
#include "kernels/x86/avx2/avx2.h"
#include "kernels/planar_act.h"
#include "kernels/tile_dispatch.h"
#include "kernels/x86/avx2/avx2_util.h"
#include "quant/blocks.h"

namespace osprey::kernels::avx2 {

using namespace osprey::quant;

void encode_planar_q8(const float* x, void* act, int64_t n);         // encode_avx2.cpp
void encode_planar_q8_paired(const float* x, void* act, int64_t n);  // encode_avx2.cpp

namespace {

// Q4_0: 16 bytes of nibbles, element j low and j + 16 high; q - 8.
struct Q4_0Format {
  static void load(const uint8_t* row, int64_t i, __m256i& q, float& d) {
    const auto* b = reinterpret_cast<const BlockQ4_0*>(row) + i;
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b->qs));
    const __m256i both = _mm256_set_m128i(_mm_srli_epi16(raw, 4), raw);
    q = _mm256_sub_epi8(_mm256_and_si256(both, _mm256_set1_epi8(0x0F)), _mm256_set1_epi8(8));
    d = _cvtsh_ss(b->d);
  }
  static constexpr int64_t kBlockBytes = sizeof(BlockQ4_0);
};

struct Q8_0Format {
  static void load(const uint8_t* row, int64_t i, __m256i& q, float& d) {
    const auto* b = reinterpret_cast<const BlockQ8_0*>(row) + i;
    q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->qs));
    d = _cvtsh_ss(b->d);
  }
  static constexpr int64_t kBlockBytes = sizeof(BlockQ8_0);
};

// How far ahead each row stream is fetched; see bench/kernel_bench.cpp's
// gemv_stream for the measurement.
constexpr int kFileLayoutPrefetchBytes = 512;

template <typename Format, int NR, int NT>
void block32_tile(const uint8_t* w, int64_t row_bytes, const uint8_t* act, int64_t act_stride, int64_t n, float* out,
                  int64_t out_stride) {
  const int64_t nb = n / kQK;
  const __m256i ones = _mm256_set1_epi16(1);
  PlanarQ8 a[NT];
  for (int t = 0; t < NT; ++t) a[t] = PlanarQ8(act + t * act_stride, n);
  __m256 acc[NR][NT];
  for (int r = 0; r < NR; ++r)
    for (int t = 0; t < NT; ++t) acc[r][t] = _mm256_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    __m256i av[NT];
    for (int t = 0; t < NT; ++t) av[t] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[t].q + i * kQK));
    for (int r = 0; r < NR; ++r) {
      const uint8_t* row = w + r * row_bytes;
      _mm_prefetch(reinterpret_cast<const char*>(row) + i * Format::kBlockBytes + kFileLayoutPrefetchBytes, _MM_HINT_T0);
      __m256i q;
      float dw;
      Format::load(row, i, q, dw);
      const __m256i aq = _mm256_sign_epi8(q, q);
      const __m256 vdw = _mm256_set1_ps(dw);
      for (int t = 0; t < NT; ++t) {
        const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(aq, _mm256_sign_epi8(av[t], q)), ones);
        acc[r][t] = _mm256_fmadd_ps(_mm256_mul_ps(vdw, _mm256_set1_ps(a[t].d[i])), _mm256_cvtepi32_ps(p),
                                    acc[r][t]);
      }
    }
  }
  for (int r = 0; r < NR; ++r)
    for (int t = 0; t < NT; ++t) out[t * out_stride + r] = hsum(acc[r][t]);
}

template <int NR, int NT>
struct Q4_0Tile {
  static void run(const uint8_t* w, int64_t rb, const uint8_t* act, int64_t as, int64_t n, float* out, int64_t os) {
    block32_tile<Q4_0Format, NR, NT>(w, rb, act, as, n, out, os);
  }
};
template <int NR, int NT>
struct Q8_0Tile {
  static void run(const uint8_t* w, int64_t rb, const uint8_t* act, int64_t as, int64_t n, float* out, int64_t os) {
    block32_tile<Q8_0Format, NR, NT>(w, rb, act, as, n, out, os);
  }
};

template <template <int, int> class Tile>
void set_tiles(RowKernel& out) {
  out.dot_rows = TileDispatch<Tile, 4, 2>::decode;
  out.dot_tile = TileDispatch<Tile, 4, 2>::tile;
}

}  // namespace

bool row_kernel_for_kquant(DType type, RowKernel& out);  // gemm_kquants_avx2.cpp
bool row_kernel_for_float(DType type, RowKernel& out);   // gemm_float_avx2.cpp

bool row_kernel_for(DType type, RowKernel& out) {
  if (row_kernel_for_kquant(type, out) || row_kernel_for_float(type, out)) return true;
  if (type != DType::kQ4_0 && type != DType::kQ8_0) return false;
  out = RowKernel{};
  out.act_bytes = planar_q8_bytes;
  out.encode = avx2::encode_planar_q8;
  if (type == DType::kQ4_0) set_tiles<Q4_0Tile>(out);
  else set_tiles<Q8_0Tile>(out);
  return true;
}

}  // namespace osprey::kernels::avx2
