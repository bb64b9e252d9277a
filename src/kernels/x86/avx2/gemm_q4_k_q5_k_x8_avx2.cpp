// AVX2 Q4_K and Q5_K over eight interleaved rows, against q8_k planar activations.
// Built with -mavx2 -mfma -mf16c; only called after the CPU was probed.
//
// The same idea as the Q4_0 kernel beside it (gemm_q4_0_x8_avx2.cpp): the
// eight lanes of a register are eight rows, activations are broadcast four
// bytes at a time, and the scaling work is shared by the eight rows. Here a
// sub-block's 6-bit scale multiplies its int16 sums inside the madd that
// widens them (one per half sub-block), and the min term of a super-block
// costs four madds per token.
//
// The layouts are repack_q4_k_rows's and repack_q5_k_rows's with 8 rows
// (kernels/repack.h).
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "kernels/dispatch.h"
#include "kernels/planar_act.h"
#include "kernels/x86/avx2/avx2.h"
#include "kernels/repack.h"
#include "kernels/x86/avx2/avx2_util.h"
#include "kernels/x86/avx2/x8_dispatch.h"
#include "quant/blocks.h"

namespace osprey::kernels::avx2 {

using namespace osprey::quant;

namespace {

constexpr int64_t kLevels = 128;  // offset of the levels in a group's super-block

// Byte b of each 32-bit lane, as the int16 pair [x, x] (scales) ...
inline __m256i dup_byte(__m256i v, int b) {
  const char z = static_cast<char>(0x80);
  const char i0 = static_cast<char>(b), i1 = static_cast<char>(b + 4), i2 = static_cast<char>(b + 8),
             i3 = static_cast<char>(b + 12);
  return _mm256_shuffle_epi8(v, _mm256_setr_epi8(i0, z, i0, z, i1, z, i1, z, i2, z, i2, z, i3, z, i3, z, i0, z, i0, z,
                                                 i1, z, i1, z, i2, z, i2, z, i3, z, i3, z));
}
// ... and bytes b, b+1 as the int16 pair [x_b, x_b+1] (mins).
inline __m256i pair_bytes(__m256i v, int b) {
  const char z = static_cast<char>(0x80);
  auto at = [&](int lane, int k) { return static_cast<char>(4 * lane + b + k); };
  return _mm256_shuffle_epi8(v, _mm256_setr_epi8(at(0, 0), z, at(0, 1), z, at(1, 0), z, at(1, 1), z, at(2, 0), z,
                                                 at(2, 1), z, at(3, 0), z, at(3, 1), z, at(0, 0), z, at(0, 1), z,
                                                 at(1, 0), z, at(1, 1), z, at(2, 0), z, at(2, 1), z, at(3, 0), z,
                                                 at(3, 1), z));
}

// Q4_K, and Q5_K (Block = BlockQ5_K), whose fifth bits are ORed into each
// level as bit 4 before the same products.
template <class Block>
struct ScaleMinX8 {
  static constexpr bool kFive = std::is_same_v<Block, BlockQ5_K>;
  static constexpr int kRows = kX8Rows;
  // Six tokens a tile, a half sub-block at a time (below): four tokens
  // decode the weights too often, seven or eight spill the sums (16 ymm).
  // `osprey_kernel_bench gemm64/q4_k` under OSPREY_ISA=avx2, Zen 5, in GFLOP/s:
  // 4 tokens with whole sub-blocks 362-372, 6 with halves 406-432, 8 with halves 389-396.
  static constexpr int kTileTokens = 6;
  static constexpr int64_t kGroupBlock = kRows * static_cast<int64_t>(sizeof(Block));  // 1152 or 1408
  static constexpr int64_t kSubBlock = (kFive ? 20 : 16) * kRows;
  template <int NT>
  static void tile(const uint8_t* g, const uint8_t* act, int64_t act_stride, int64_t n, float* out, int64_t out_stride);
  static void repack(const uint8_t* src, uint8_t* dst, int64_t n) {
    if constexpr (kFive) repack_q5_k_rows(src, dst, n, kRows);
    else repack_q4_k_rows(src, dst, n, kRows);
  }
  static void unpack(const uint8_t* group, int64_t row, uint8_t* dst, int64_t n) {
    if constexpr (kFive) unpack_q5_k_rows(group, row, dst, n, kRows);
    else unpack_q4_k_rows(group, row, dst, n, kRows);
  }
};

template <class Block>
template <int NT>
void ScaleMinX8<Block>::tile(const uint8_t* g, const uint8_t* act, int64_t act_stride, int64_t n, float* out,
                             int64_t out_stride) {
  const int64_t nsb = n / kQK_K;
  PlanarQ8K a[NT];
  for (int t = 0; t < NT; ++t) a[t] = PlanarQ8K(act + t * act_stride, n);
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  __m256 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nsb; ++b) {
    const uint8_t* p = g + b * kGroupBlock;
    for (int64_t l = 0; l < kGroupBlock; l += 64)
      _mm_prefetch(reinterpret_cast<const char*>(p) + kPrefetchBytes + l, _MM_HINT_T0);
    // Scales and mins of all eight rows at once (k_unpack_scales_mins, lane-wise).
    const __m256i w0 = load32(p + 32), w1 = load32(p + 64), w2 = load32(p + 96);
    const __m256i m6 = _mm256_set1_epi8(0x3F), m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(0x03);
    const __m256i sc_lo = _mm256_and_si256(w0, m6), mn_lo = _mm256_and_si256(w1, m6);
    const __m256i sc_hi = _mm256_or_si256(_mm256_and_si256(w2, m4),
                                          _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(w0, 6), m2), 4));
    const __m256i mn_hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(w2, 4), m4),
                                          _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(w1, 6), m2), 4));
    __m256i sumi[NT];
    for (int t = 0; t < NT; ++t) sumi[t] = _mm256_setzero_si256();
    for (int j = 0; j < 8; ++j) {
      const __m256i sc = dup_byte(j < 4 ? sc_lo : sc_hi, j & 3);
      const uint8_t* lv = p + kLevels + j * kSubBlock;
      // Elements 0-15 of the sub-block are the low nibbles, 16-31 the high
      // ones. Tiles of more than four tokens take one half at a time, so
      // four weight registers are live instead of eight and six tokens' sums
      // fit in sixteen registers; smaller ones (decode) decode both halves at
      // once and skip the second pass. The integer sums are the same.
      constexpr int kParts = NT > 4 ? 2 : 1, kChunks = 8 / kParts;
      const __m256i hb = kFive ? load32(lv + 32 * 4) : _mm256_setzero_si256();
      for (int h = 0; h < kParts; ++h) {
        __m256i w[kChunks];
        for (int k = 0; k < kChunks; ++k) {
          const int e = h * kChunks + k, c = e % 4;  // chunk e: elements 4c..4c+3 of half e / 4
          const __m256i raw = load32(lv + 32 * c);
          w[k] = _mm256_and_si256(e < 4 ? raw : _mm256_srli_epi16(raw, 4), low4);
          if constexpr (kFive) {
            // Bit c of a byte is the fifth bit of element c's low-nibble
            // level, bit 4+c that of its high-nibble one; the 16-bit shifts
            // carry bits across bytes only below or above bit 4.
            const __m256i fifth = e < 4 ? _mm256_slli_epi16(hb, 4 - c) : _mm256_srli_epi16(hb, c);
            w[k] = _mm256_or_si256(w[k], _mm256_and_si256(fifth, _mm256_set1_epi8(0x10)));
          }
        }
        for (int t = 0; t < NT; ++t) {
          const int8_t* q = a[t].q + b * kQK_K + 32 * j;
          // Levels up to 15 (Q4_K) or 31 (Q5_K) times |a| <= 127, two per
          // lane per maddubs: eight or four stay below 2^15 before the madd.
          constexpr int kPerMadd = std::min(kFive ? 4 : 8, kChunks);
          for (int k0 = 0; k0 < kChunks; k0 += kPerMadd) {
            auto chunk = [&](int k) {
              const int e = h * kChunks + k;
              return _mm256_maddubs_epi16(w[k], bcast4(q + 16 * (e / 4) + 4 * (e % 4)));
            };
            __m256i s = chunk(k0);
            for (int k = k0 + 1; k < k0 + kPerMadd; ++k) s = _mm256_add_epi16(s, chunk(k));
            sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(s, sc));
          }
        }
      }
    }
    const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    const __m256 dmin = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16)));
    const __m256i mp[4] = {pair_bytes(mn_lo, 0), pair_bytes(mn_lo, 2), pair_bytes(mn_hi, 0), pair_bytes(mn_hi, 2)};
    for (int t = 0; t < NT; ++t) {
      const int32_t* s32 = a[t].sum32 + b * 8;
      __m256i mins = _mm256_madd_epi16(mp[0], _mm256_set1_epi32(int16_pair(s32[0], s32[1])));
      for (int k = 1; k < 4; ++k)
        mins = _mm256_add_epi32(mins, _mm256_madd_epi16(mp[k], _mm256_set1_epi32(int16_pair(s32[2 * k], s32[2 * k + 1]))));
      const __m256 da = _mm256_set1_ps(a[t].d[b]);
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi[t]), _mm256_mul_ps(d, da), acc[t]);
      acc[t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(mins), _mm256_mul_ps(dmin, da), acc[t]);
    }
  }
  for (int t = 0; t < NT; ++t) _mm256_storeu_ps(out + t * out_stride, acc[t]);
}

template <class Block>
RowKernel scale_min_x8_row_kernel() {
  using K = ScaleMinX8<Block>;
  return group_row_kernel<K>(planar_q8k_bytes, avx2::encode_planar_q8k, K::repack, K::unpack);
}

}  // namespace

bool interleaved_kquant_kernel_for(DType type, RowKernel& out) {
  switch (type) {
    case DType::kQ4_K: out = scale_min_x8_row_kernel<BlockQ4_K>(); return true;
    case DType::kQ5_K: out = scale_min_x8_row_kernel<BlockQ5_K>(); return true;
    default: return false;
  }
}

}  // namespace osprey::kernels::avx2
