// AVX-512 VNNI kernels for Q4_K, Q5_K and Q6_K over sixteen rows interleaved,
// against q8_k planar activations. Built with the AVX-512 flags; only called
// after the CPU was probed.
//
// As in gemm_x16_avx512.cpp, each 32-bit lane of a 512-bit register is one
// row and vpdpbusd meets four activation bytes broadcast from memory. A
// sub-block's int32 sum is then multiplied by its integer scale in the lane
// (vpmulld), so a super-block costs one float conversion and FMA per token.
// The Q4_K min term and the Q6_K -32 offset come from the activations'
// 32- and 16-element sums, paired into int16 and applied with vpdpwssd.
//
// The layouts are repack_q4_k_rows's, repack_q5_k_rows's and repack_q6_k_rows's with 16 rows
// (kernels/repack.h).
// GCC 12 reports the _mm512_undefined_* operands inside its own intrinsics
// (conversions, reductions) as uninitialized; they are fully overwritten. The
// pragmas precede the header, where those inline functions are defined.
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include <cstring>
#include <type_traits>

#include "kernels/dispatch.h"
#include "kernels/group_dispatch.h"
#include "kernels/planar_act.h"
#include "kernels/x86/avx2/avx2.h"
#include "kernels/repack.h"
#include "kernels/x86/avx512/avx512_util.h"
#include "quant/blocks.h"

namespace osprey::kernels::avx512 {

using namespace osprey::quant;

namespace {

constexpr int kGroupRows = 16;

inline __m512i load64(const uint8_t* p) { return _mm512_loadu_si512(p); }

// A vpshufb pattern, the same in every 128-bit lane: for each 32-bit lane L,
// its bytes take source bytes 4L + src[0..3] (a negative entry zeroes it).
inline __m512i lane_pattern(int s0, int s1, int s2, int s3) {
  alignas(16) int8_t pat[16];
  const int src[4] = {s0, s1, s2, s3};
  for (int l = 0; l < 4; ++l)
    for (int k = 0; k < 4; ++k) pat[4 * l + k] = static_cast<int8_t>(src[k] < 0 ? -128 : 4 * l + src[k]);
  return _mm512_broadcast_i32x4(_mm_load_si128(reinterpret_cast<const __m128i*>(pat)));
}

// Q4_K, and Q5_K (Block = BlockQ5_K), whose fifth bits are ORed into each
// level as bit 4 before the same products.
template <class Block>
struct ScaleMinX16 {
  static constexpr bool kFive = std::is_same_v<Block, BlockQ5_K>;
  static constexpr int kRows = kGroupRows;
  static constexpr int64_t kGroupBlock = kRows * static_cast<int64_t>(sizeof(Block));  // 2304 or 2816
  static constexpr int64_t kDmin = 2 * kRows, kScaleWords = 4 * kRows, kLevels = 16 * kRows;
  static constexpr int64_t kSubBlock = (kFive ? 20 : 16) * kRows;
  static constexpr int kTileTokens = 8;

  template <int NT>
  static void tile(const uint8_t* g, const uint8_t* act, int64_t act_stride, int64_t n, float* out,
                   int64_t out_stride) {
    const int64_t nsb = n / kQK_K;
    PlanarQ8K a[NT];
    for (int t = 0; t < NT; ++t) a[t] = PlanarQ8K(act + t * act_stride, n);
    const __m512i low4 = _mm512_set1_epi8(0x0F), byte0 = _mm512_set1_epi32(0xFF);
    __m512 acc[NT];
    for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nsb; ++b) {
      const uint8_t* p = g + b * kGroupBlock;
      for (int64_t l = 0; l < kGroupBlock; l += 64)
        _mm_prefetch(reinterpret_cast<const char*>(p) + kGroupPrefetchBytes + l, _MM_HINT_T0);
      // Scales and mins of all sixteen rows at once (k_unpack_scales_mins, lane-wise).
      const __m512i w0 = load64(p + kScaleWords), w1 = load64(p + kScaleWords + 64), w2 = load64(p + kScaleWords + 128);
      const __m512i m6 = _mm512_set1_epi8(0x3F), m4 = _mm512_set1_epi8(0x0F), m2 = _mm512_set1_epi8(0x03);
      const __m512i sc_lo = _mm512_and_si512(w0, m6), mn_lo = _mm512_and_si512(w1, m6);
      const __m512i sc_hi = _mm512_or_si512(_mm512_and_si512(w2, m4),
                                            _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(w0, 6), m2), 4));
      const __m512i mn_hi = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(w2, 4), m4),
                                            _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(w1, 6), m2), 4));
      __m512i sumi[NT];
      for (int t = 0; t < NT; ++t) sumi[t] = _mm512_setzero_si512();
      for (int j = 0; j < 8; ++j) {
        const __m512i sc = _mm512_and_si512(_mm512_srli_epi32(j < 4 ? sc_lo : sc_hi, 8 * (j & 3)), byte0);
        const uint8_t* lv = p + kLevels + j * kSubBlock;
        __m512i w[8];
        for (int k = 0; k < 4; ++k) {
          const __m512i raw = load64(lv + 64 * k);
          w[k] = _mm512_and_si512(raw, low4);
          w[4 + k] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), low4);
        }
        if constexpr (kFive) {
          // Bit k of a byte is the fifth bit of w[k]'s byte, bit 4+k of
          // w[4+k]'s: each is shifted to bit 4 and ORed in. The 16-bit
          // shifts carry bits across bytes only below or above bit 4.
          const __m512i hb = load64(lv + 64 * 4), bit4 = _mm512_set1_epi8(0x10);
          for (int k = 0; k < 4; ++k) {
            w[k] = _mm512_or_si512(w[k], _mm512_and_si512(_mm512_slli_epi16(hb, 4 - k), bit4));
            w[4 + k] = _mm512_or_si512(w[4 + k], _mm512_and_si512(_mm512_srli_epi16(hb, k), bit4));
          }
        }
        for (int t = 0; t < NT; ++t) {
          const int8_t* q = a[t].q + b * kQK_K + 32 * j;
          __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
          for (int k = 0; k < 4; ++k) {
            s0 = _mm512_dpbusd_epi32(s0, w[k], bcast4(q + 4 * k));
            s1 = _mm512_dpbusd_epi32(s1, w[4 + k], bcast4(q + 16 + 4 * k));
          }
          sumi[t] = _mm512_add_epi32(sumi[t], _mm512_mullo_epi32(_mm512_add_epi32(s0, s1), sc));
        }
      }
      const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
      const __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + kDmin)));
      // The mins of sub-blocks 2k and 2k+1 as an int16 pair in each lane.
      const __m512i lo01 = lane_pattern(0, -1, 1, -1), lo23 = lane_pattern(2, -1, 3, -1);
      const __m512i mp[4] = {_mm512_shuffle_epi8(mn_lo, lo01), _mm512_shuffle_epi8(mn_lo, lo23),
                             _mm512_shuffle_epi8(mn_hi, lo01), _mm512_shuffle_epi8(mn_hi, lo23)};
      for (int t = 0; t < NT; ++t) {
        const int32_t* s32 = a[t].sum32 + b * 8;
        __m512i mins = _mm512_setzero_si512();
        for (int k = 0; k < 4; ++k)
          mins = _mm512_dpwssd_epi32(mins, mp[k], _mm512_set1_epi32(int16_pair(s32[2 * k], s32[2 * k + 1])));
        const __m512 da = _mm512_set1_ps(a[t].d[b]);
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi[t]), _mm512_mul_ps(d, da), acc[t]);
        acc[t] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(mins), _mm512_mul_ps(dmin, da), acc[t]);
      }
    }
    for (int t = 0; t < NT; ++t) _mm512_storeu_ps(out + t * out_stride, acc[t]);
  }

  static void repack(const uint8_t* src, uint8_t* dst, int64_t n) {
    if constexpr (kFive) repack_q5_k_rows(src, dst, n, kRows);
    else repack_q4_k_rows(src, dst, n, kRows);
  }
  static void unpack(const uint8_t* group, int64_t row, uint8_t* dst, int64_t n) {
    if constexpr (kFive) unpack_q5_k_rows(group, row, dst, n, kRows);
    else unpack_q4_k_rows(group, row, dst, n, kRows);
  }
};

struct Q6_KX16 {
  static constexpr int kRows = kGroupRows;
  static constexpr int64_t kGroupBlock = kRows * static_cast<int64_t>(sizeof(BlockQ6_K));  // 3360
  static constexpr int64_t kScales = 2 * kRows, kLevels = 18 * kRows, kSubBlockBytes = 12 * kRows;
  static constexpr int kTileTokens = 8;

  template <int NT>
  static void tile(const uint8_t* g, const uint8_t* act, int64_t act_stride, int64_t n, float* out,
                   int64_t out_stride) {
    const int64_t nsb = n / kQK_K;
    PlanarQ8K a[NT];
    for (int t = 0; t < NT; ++t) a[t] = PlanarQ8K(act + t * act_stride, n);
    const __m512i low4 = _mm512_set1_epi8(0x0F), top2 = _mm512_set1_epi8(0x30);
    __m512 acc[NT];
    for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nsb; ++b) {
      const uint8_t* p = g + b * kGroupBlock;
      for (int64_t l = 0; l < kGroupBlock; l += 64)
        _mm_prefetch(reinterpret_cast<const char*>(p) + kGroupPrefetchBytes + l, _MM_HINT_T0);
      __m512i scales[4];
      for (int v = 0; v < 4; ++v) scales[v] = load64(p + kScales + 64 * v);
      __m512i sumi[NT];
      for (int t = 0; t < NT; ++t) sumi[t] = _mm512_setzero_si512();
      for (int s = 0; s < 16; ++s) {
        // Sub-block s's int8 scale, sign-extended in each lane.
        const __m512i sc = _mm512_srai_epi32(_mm512_slli_epi32(scales[s / 4], 24 - 8 * (s % 4)), 24);
        const uint8_t* lv = p + kLevels + s * kSubBlockBytes;
        const __m512i raw0 = load64(lv), raw1 = load64(lv + 64), hb = load64(lv + 128);
        // Levels 0..63 of elements 0-3, 4-7, 8-11 and 12-15 of the sub-block, 16 rows each.
        const __m512i w0 =
            _mm512_or_si512(_mm512_and_si512(raw0, low4), _mm512_and_si512(_mm512_slli_epi16(hb, 4), top2));
        const __m512i w1 =
            _mm512_or_si512(_mm512_and_si512(raw1, low4), _mm512_and_si512(_mm512_slli_epi16(hb, 2), top2));
        const __m512i w2 =
            _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(raw0, 4), low4), _mm512_and_si512(hb, top2));
        const __m512i w3 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(raw1, 4), low4),
                                           _mm512_and_si512(_mm512_srli_epi16(hb, 2), top2));
        for (int t = 0; t < NT; ++t) {
          const int8_t* q = a[t].q + b * kQK_K + 16 * s;
          __m512i s01 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w0, bcast4(q));
          __m512i s23 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w2, bcast4(q + 8));
          s01 = _mm512_dpbusd_epi32(s01, w1, bcast4(q + 4));
          s23 = _mm512_dpbusd_epi32(s23, w3, bcast4(q + 12));
          sumi[t] = _mm512_add_epi32(sumi[t], _mm512_mullo_epi32(_mm512_add_epi32(s01, s23), sc));
        }
      }
      // The offset: 32 times the sum over sub-blocks of scale * (sum of its 16
      // activations); scales 2k, 2k+1 as a sign-extended int16 pair.
      __m512i sp[8];
      for (int k = 0; k < 8; ++k) {
        const int b0 = 2 * (k % 2);
        sp[k] = _mm512_srai_epi16(_mm512_shuffle_epi8(scales[k / 2], lane_pattern(-1, b0, -1, b0 + 1)), 8);
      }
      const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
      for (int t = 0; t < NT; ++t) {
        const int16_t* s16 = a[t].sum16 + b * 16;
        __m512i bias = _mm512_setzero_si512();
        for (int k = 0; k < 8; ++k) {
          int32_t pair;
          std::memcpy(&pair, s16 + 2 * k, 4);
          bias = _mm512_dpwssd_epi32(bias, sp[k], _mm512_set1_epi32(pair));
        }
        const __m512i total = _mm512_sub_epi32(sumi[t], _mm512_slli_epi32(bias, 5));
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(total), _mm512_mul_ps(d, _mm512_set1_ps(a[t].d[b])), acc[t]);
      }
    }
    for (int t = 0; t < NT; ++t) _mm512_storeu_ps(out + t * out_stride, acc[t]);
  }

  static void repack(const uint8_t* src, uint8_t* dst, int64_t n) { repack_q6_k_rows(src, dst, n, kRows); }
  static void unpack(const uint8_t* group, int64_t row, uint8_t* dst, int64_t n) {
    unpack_q6_k_rows(group, row, dst, n, kRows);
  }
};

template <class K>
RowKernel kquant_x16_row_kernel() {
  return group_row_kernel<K>(planar_q8k_bytes, avx2::encode_planar_q8k, K::repack, K::unpack);
}

}  // namespace

bool interleaved_kquant_row_kernel_for(DType type, RowKernel& out) {
  switch (type) {
    case DType::kQ4_K: out = kquant_x16_row_kernel<ScaleMinX16<BlockQ4_K>>(); return true;
    case DType::kQ5_K: out = kquant_x16_row_kernel<ScaleMinX16<BlockQ5_K>>(); return true;
    case DType::kQ6_K: out = kquant_x16_row_kernel<Q6_KX16>(); return true;
    default: return false;
  }
}

}  // namespace osprey::kernels::avx512
