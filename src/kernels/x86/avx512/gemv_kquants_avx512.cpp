// AVX-512 VNNI kernels for the k-quants Q4_K and Q6_K (the formats of
// llama.cpp's Q4_K_M files), as tiles of NR rows x NT tokens like the q4_0
// ones.
//
// Activations use a planar form of Q8_K: the int8 values of all 256-element
// blocks first, then one float scale per block, then the sum of every 32
// values (int32, for the Q4_K min term). Values, scales and sums are exactly Q8_K's, so results agree
// with the scalar reference up to float summation order.
// GCC 12 reports the _mm512_undefined_* operands inside its own intrinsics
// as uninitialized; they are fully overwritten. The pragmas precede the header.
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "core/fp16.h"
#include "kernels/dispatch.h"
#include "kernels/planar_act.h"
#include "kernels/x86/avx2/avx2.h"
#include "kernels/tile_dispatch.h"
#include "kernels/x86/avx512/avx512_util.h"
#include "quant/blocks.h"
#include "quant/k_quant_common.h"

namespace osprey::kernels::avx512 {

using namespace osprey::quant;

namespace {

using PlanarK = PlanarQ8K;

// Q4_K: per 64-element chunk c, qs[32c..32c+32) holds sub-block 2c in the low
// nibbles and 2c+1 in the high ones, so [low | high] lines up with 64
// consecutive activations: lanes 0-7 of the dot belong to sub-block 2c,
// lanes 8-15 to 2c+1.
template <int NR, int NT>
void q4_k_tile(const uint8_t* w, int64_t row_bytes, const uint8_t* act, int64_t act_stride, int64_t n, float* out,
               int64_t out_stride) {
  const int64_t nb = n / kQK_K;
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  PlanarK a[NT];
  for (int t = 0; t < NT; ++t) a[t] = PlanarK(act + t * act_stride, n);
  __m512 acc[NR][NT];
  float mins[NR][NT] = {};
  for (int r = 0; r < NR; ++r)
    for (int t = 0; t < NT; ++t) acc[r][t] = _mm512_setzero_ps();
  // Chunk c's lanes take scale 2c (lanes 0-7) and 2c+1 (lanes 8-15).
  __m512i pair_idx[4];
  for (int c = 0; c < 4; ++c)
    pair_idx[c] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi32(2 * c)), _mm256_set1_epi32(2 * c + 1), 1);
  for (int64_t i = 0; i < nb; ++i) {
    __m512 scale16[NR];  // d * scale_j in lanes 0-7
    for (int r = 0; r < NR; ++r) {
      const auto* b = reinterpret_cast<const BlockQ4_K*>(w + r * row_bytes) + i;
      _mm_prefetch(reinterpret_cast<const char*>(b) + kPrefetchBytes, _MM_HINT_T0);
      uint64_t sc, mn;
      k_unpack_scales_mins(b->scales, sc, mn);
      scale16[r] = _mm512_mul_ps(_mm512_set1_ps(_cvtsh_ss(b->d)),
                                 _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<int64_t>(sc)))));
      // The min term needs only the activation sums: sum_j m_j * sum(a over sub-block j).
      const __m256i m8 = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<int64_t>(mn)));
      const float dmin = _cvtsh_ss(b->dmin);
      for (int t = 0; t < NT; ++t) {
        const __m256i s8 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[t].sum32 + i * 8));
        const int32_t dot = _mm512_reduce_add_epi32(_mm512_castsi256_si512(_mm256_mullo_epi32(m8, s8)) &
                                                    _mm512_set_epi64(0, 0, 0, 0, -1, -1, -1, -1));
        mins[r][t] += dmin * a[t].d[i] * static_cast<float>(dot);
      }
    }
    for (int c = 0; c < 4; ++c) {
      __m512i av[NT];
      for (int t = 0; t < NT; ++t) av[t] = _mm512_loadu_si512(a[t].q + i * kQK_K + 64 * c);
      for (int r = 0; r < NR; ++r) {
        const auto* b = reinterpret_cast<const BlockQ4_K*>(w + r * row_bytes) + i;
        const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->qs + 32 * c));
        const __m512i q =
            _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(raw), _mm256_srli_epi16(raw, 4), 1), low4);
        const __m512 scale = _mm512_permutexvar_ps(pair_idx[c], scale16[r]);
        for (int t = 0; t < NT; ++t) {
          const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q, av[t]);
          acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(scale, _mm512_set1_ps(a[t].d[i])), acc[r][t]);
        }
      }
    }
  }
  for (int r = 0; r < NR; ++r)
    for (int t = 0; t < NT; ++t) out[t * out_stride + r] = _mm512_reduce_add_ps(acc[r][t]) - mins[r][t];
}

// Q6_K: each 128-element half h uses ql[64h..64h+64) and qh[32h..32h+32).
// Elements [0,64) of the half are the low nibbles of ql with qh bit pairs 0
// and 1; elements [64,128) the high nibbles with pairs 2 and 3. Levels are
// 0..63 standing for q - 32, so 32 * sum(a) is subtracted per lane. Each lane
// covers 4 values, so the 16 lanes span four 16-value sub-blocks.
alignas(64) const uint16_t kQhShiftLow[32] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                              2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2};
alignas(64) const uint16_t kQhShiftHigh[32] = {4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
                                               6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6};

template <int NR, int NT>
void q6_k_tile(const uint8_t* w, int64_t row_bytes, const uint8_t* act, int64_t act_stride, int64_t n, float* out,
               int64_t out_stride) {
  const int64_t nb = n / kQK_K;
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  const __m512i three = _mm512_set1_epi8(3);
  const __m512i shift_low = _mm512_load_si512(kQhShiftLow);
  const __m512i shift_high = _mm512_load_si512(kQhShiftHigh);
  PlanarK a[NT];
  for (int t = 0; t < NT; ++t) a[t] = PlanarK(act + t * act_stride, n);
  __m512 acc[NR][NT];
  for (int r = 0; r < NR; ++r)
    for (int t = 0; t < NT; ++t) acc[r][t] = _mm512_setzero_ps();
  // Lanes 4m..4m+3 of chunk k take sub-block 4k+m's scale.
  __m512i lane_scale_idx[4];
  for (int k = 0; k < 4; ++k)
    lane_scale_idx[k] = _mm512_set_epi32(4 * k + 3, 4 * k + 3, 4 * k + 3, 4 * k + 3, 4 * k + 2, 4 * k + 2, 4 * k + 2,
                                         4 * k + 2, 4 * k + 1, 4 * k + 1, 4 * k + 1, 4 * k + 1, 4 * k, 4 * k, 4 * k, 4 * k);
  for (int64_t i = 0; i < nb; ++i) {
    // d * scale of each 16-value sub-block, per row, converted once per super-block.
    __m512 sub_scales[NR];
    for (int r = 0; r < NR; ++r) {
      const auto* b = reinterpret_cast<const BlockQ6_K*>(w + r * row_bytes) + i;
      _mm_prefetch(reinterpret_cast<const char*>(b) + kPrefetchBytes, _MM_HINT_T0);
      sub_scales[r] = _mm512_mul_ps(_mm512_set1_ps(_cvtsh_ss(b->d)),
                                    _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(
                                        reinterpret_cast<const __m128i*>(b->scales)))));
    }
    for (int k = 0; k < 4; ++k) {  // 64-element chunks: half k/2, low or high nibbles
      __m512i av[NT], offset[NT];
      for (int t = 0; t < NT; ++t) {
        av[t] = _mm512_loadu_si512(a[t].q + i * kQK_K + 64 * k);
        offset[t] = lane_sums(av[t], 5);  // 32 * sum(a) per lane
      }
      for (int r = 0; r < NR; ++r) {
        const auto* b = reinterpret_cast<const BlockQ6_K*>(w + r * row_bytes) + i;
        const int h = k / 2;
        const __m512i ql = _mm512_loadu_si512(b->ql + 64 * h);
        const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->qh + 32 * h)));
        const __m512i nib = (k & 1) ? _mm512_and_si512(_mm512_srli_epi16(ql, 4), low4) : _mm512_and_si512(ql, low4);
        const __m512i hi2 = _mm512_and_si512(_mm512_srlv_epi16(qh, (k & 1) ? shift_high : shift_low), three);
        const __m512i q = _mm512_or_si512(nib, _mm512_slli_epi16(hi2, 4));
        const __m512 scale = _mm512_permutexvar_ps(lane_scale_idx[k], sub_scales[r]);
        for (int t = 0; t < NT; ++t) {
          const __m512i dot = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), q, av[t]), offset[t]);
          acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(scale, _mm512_set1_ps(a[t].d[i])), acc[r][t]);
        }
      }
    }
  }
  for (int r = 0; r < NR; ++r)
    for (int t = 0; t < NT; ++t) out[t * out_stride + r] = _mm512_reduce_add_ps(acc[r][t]);
}

template <int NR, int NT>
struct Q4_KTile {
  static void run(const uint8_t* w, int64_t rb, const uint8_t* act, int64_t as, int64_t n, float* out, int64_t os) {
    q4_k_tile<NR, NT>(w, rb, act, as, n, out, os);
  }
};
template <int NR, int NT>
struct Q6_KTile {
  static void run(const uint8_t* w, int64_t rb, const uint8_t* act, int64_t as, int64_t n, float* out, int64_t os) {
    q6_k_tile<NR, NT>(w, rb, act, as, n, out, os);
  }
};

}  // namespace

bool row_kernel_for_kquant(DType type, RowKernel& out) {
  if (type != DType::kQ4_K && type != DType::kQ6_K) return false;
  out = RowKernel{};
  out.act_bytes = planar_q8k_bytes;
  out.encode = avx2::encode_planar_q8k;
  if (type == DType::kQ4_K) {
    out.dot_rows = TileDispatch<Q4_KTile>::decode;
    out.dot_tile = TileDispatch<Q4_KTile>::tile;
  } else {
    out.dot_rows = TileDispatch<Q6_KTile>::decode;
    out.dot_tile = TileDispatch<Q6_KTile>::tile;
  }
  return true;
}

}  // namespace osprey::kernels::avx512
