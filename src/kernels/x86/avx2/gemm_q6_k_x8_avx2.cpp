// AVX2 Q6_K over eight interleaved rows, against q8_k planar activations.
// Built with -mavx2 -mfma -mf16c; only called after the CPU was probed.
//
// As with Q4_0 and Q4_K (gemm_q4_0_x8_avx2.cpp, gemm_q4_k_x8_avx2.cpp), the
// lanes of a register are eight rows and activations are broadcast four
// bytes at a time. Levels run 0..63 here, so only two maddubs results fit in
// int16 before the madd that widens them and applies the 16-element
// sub-block's scale; the -32 offset of the levels is taken once per
// super-block from the activations' 16-element sums.
//
// A group of 8 rows is, super-block by super-block, in the same 8 x 210 bytes:
//   [d: 8 fp16]
//   [scales: four 32-byte vectors; vector v holds, for row r at bytes
//    4r..4r+3, the int8 scales of sub-blocks 4v..4v+3]
//   [levels, 96 bytes per 16-element sub-block: two vectors of low 4 bits
//    (vector k, row r, byte i: element 4k+i in the low nibble, 8+4k+i in the
//    high) and one of high 2 bits (row r, byte i: bits 2g..2g+1 are those of
//    element 4g+i)]
#include <immintrin.h>

#include <cstring>

#include "kernels/dispatch.h"
#include "kernels/planar_act.h"
#include "kernels/x86/avx2/avx2_util.h"
#include "kernels/x86/avx2/x8_dispatch.h"
#include "quant/blocks.h"

namespace osprey::kernels::avx2 {

using namespace osprey::quant;

namespace {

constexpr int kRows = kX8Rows;
constexpr int64_t kGroupBlock = kRows * static_cast<int64_t>(sizeof(BlockQ6_K));  // 1680
constexpr int64_t kScales = 16, kLevels = 144, kSubBlockBytes = 96;

// Bytes b0 and b1 of each 32-bit lane, sign-extended to the int16 pair [x_b0, x_b1].
inline __m256i int8_pair(__m256i v, int b0, int b1) {
  const char z = static_cast<char>(0x80);
  auto at = [](int lane, int b) { return static_cast<char>(4 * lane + b); };
  const __m256i hi = _mm256_shuffle_epi8(
      v, _mm256_setr_epi8(z, at(0, b0), z, at(0, b1), z, at(1, b0), z, at(1, b1), z, at(2, b0), z, at(2, b1), z,
                          at(3, b0), z, at(3, b1), z, at(0, b0), z, at(0, b1), z, at(1, b0), z, at(1, b1), z,
                          at(2, b0), z, at(2, b1), z, at(3, b0), z, at(3, b1)));
  return _mm256_srai_epi16(hi, 8);
}

struct Q6_KX8 {
  static constexpr int kRows = kX8Rows;
  template <int NT>
  static void tile(const uint8_t* g, const uint8_t* act, int64_t act_stride, int64_t n, float* out, int64_t out_stride);
};

template <int NT>
void Q6_KX8::tile(const uint8_t* g, const uint8_t* act, int64_t act_stride, int64_t n, float* out,
                  int64_t out_stride) {
  const int64_t nsb = n / kQK_K;
  PlanarQ8K a[NT];
  for (int t = 0; t < NT; ++t) a[t] = PlanarQ8K(act + t * act_stride, n);
  const __m256i low4 = _mm256_set1_epi8(0x0F), top2 = _mm256_set1_epi8(0x30);
  __m256 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nsb; ++b) {
    const uint8_t* p = g + b * kGroupBlock;
    for (int64_t l = 0; l < kGroupBlock; l += 64)
      _mm_prefetch(reinterpret_cast<const char*>(p) + kPrefetchBytes + l, _MM_HINT_T0);
    __m256i scales[4];
    for (int v = 0; v < 4; ++v) scales[v] = load32(p + kScales + 32 * v);
    __m256i sumi[NT];
    for (int t = 0; t < NT; ++t) sumi[t] = _mm256_setzero_si256();
    for (int s = 0; s < 16; ++s) {
      const __m256i sc = int8_pair(scales[s / 4], s % 4, s % 4);
      const uint8_t* lv = p + kLevels + s * kSubBlockBytes;
      const __m256i raw0 = load32(lv), raw1 = load32(lv + 32), hb = load32(lv + 64);
      // Levels of elements 0-3, 4-7, 8-11 and 12-15 of the sub-block, 8 rows each.
      const __m256i w0 = _mm256_or_si256(_mm256_and_si256(raw0, low4), _mm256_and_si256(_mm256_slli_epi16(hb, 4), top2));
      const __m256i w1 = _mm256_or_si256(_mm256_and_si256(raw1, low4), _mm256_and_si256(_mm256_slli_epi16(hb, 2), top2));
      const __m256i w2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(raw0, 4), low4), _mm256_and_si256(hb, top2));
      const __m256i w3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(raw1, 4), low4),
                                         _mm256_and_si256(_mm256_srli_epi16(hb, 2), top2));
      for (int t = 0; t < NT; ++t) {
        const int8_t* q = a[t].q + b * kQK_K + 16 * s;
        // Levels 0..63 times |a| <= 127, two per lane per maddubs: two stay below 2^15.
        const __m256i s01 = _mm256_add_epi16(_mm256_maddubs_epi16(w0, bcast4(q)), _mm256_maddubs_epi16(w1, bcast4(q + 4)));
        const __m256i s23 = _mm256_add_epi16(_mm256_maddubs_epi16(w2, bcast4(q + 8)), _mm256_maddubs_epi16(w3, bcast4(q + 12)));
        sumi[t] = _mm256_add_epi32(sumi[t], _mm256_add_epi32(_mm256_madd_epi16(s01, sc), _mm256_madd_epi16(s23, sc)));
      }
    }
    // The offset: sum over sub-blocks of scale * (sum of its 16 activations), times 32.
    __m256i sp[8];
    for (int k = 0; k < 8; ++k) sp[k] = int8_pair(scales[k / 2], 2 * (k % 2), 2 * (k % 2) + 1);
    const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    for (int t = 0; t < NT; ++t) {
      const int16_t* s16 = a[t].sum16 + b * 16;
      __m256i bias = _mm256_setzero_si256();
      for (int k = 0; k < 8; ++k) {
        int32_t pair;
        std::memcpy(&pair, s16 + 2 * k, 4);
        bias = _mm256_add_epi32(bias, _mm256_madd_epi16(sp[k], _mm256_set1_epi32(pair)));
      }
      const __m256i total = _mm256_sub_epi32(sumi[t], _mm256_slli_epi32(bias, 5));
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(total), _mm256_mul_ps(d, _mm256_set1_ps(a[t].d[b])), acc[t]);
    }
  }
  for (int t = 0; t < NT; ++t) _mm256_storeu_ps(out + t * out_stride, acc[t]);
}

// The 6-bit level of element e (0..255) of a file block.
inline int file_level(const BlockQ6_K& blk, int e) {
  const int h = e / 128, l = e % 32, quarter = (e % 128) / 32;
  const uint8_t lo = blk.ql[64 * h + l + 32 * (quarter & 1)];
  const int low = quarter < 2 ? lo & 0x0F : lo >> 4;
  return low | (((blk.qh[32 * h + l] >> (2 * quarter)) & 3) << 4);
}

// Eight file rows (consecutive, 210 bytes a super-block) into one group.
void repack_x8(const uint8_t* src, uint8_t* dst, int64_t n) {
  const int64_t nsb = n / kQK_K, row_bytes = nsb * static_cast<int64_t>(sizeof(BlockQ6_K));
  for (int64_t b = 0; b < nsb; ++b) std::memset(dst + b * kGroupBlock, 0, kGroupBlock);
  for (int r = 0; r < kRows; ++r) {
    const auto* blocks = reinterpret_cast<const BlockQ6_K*>(src + r * row_bytes);
    for (int64_t b = 0; b < nsb; ++b) {
      const BlockQ6_K& blk = blocks[b];
      uint8_t* sb = dst + b * kGroupBlock;
      std::memcpy(sb + 2 * r, &blk.d, 2);
      for (int s = 0; s < 16; ++s) {
        sb[kScales + 32 * (s / 4) + 4 * r + s % 4] = static_cast<uint8_t>(blk.scales[s]);
        uint8_t* lv = sb + kLevels + s * kSubBlockBytes;
        for (int e = 0; e < 16; ++e) {
          const int q = file_level(blk, 16 * s + e), grp = e / 4, i = e % 4;
          // Groups 0, 1 in the low nibbles of vectors 0, 1; groups 2, 3 in their high nibbles.
          lv[32 * (grp % 2) + 4 * r + i] |= static_cast<uint8_t>((q & 0x0F) << (grp < 2 ? 0 : 4));
          lv[64 + 4 * r + i] |= static_cast<uint8_t>((q >> 4) << (2 * grp));
        }
      }
    }
  }
}

// Row `row` of a group back to the file's layout.
void unpack_x8(const uint8_t* group, int64_t row, uint8_t* dst, int64_t n) {
  const int64_t nsb = n / kQK_K;
  auto* blocks = reinterpret_cast<BlockQ6_K*>(dst);
  const int r = static_cast<int>(row);
  for (int64_t b = 0; b < nsb; ++b) {
    BlockQ6_K& blk = blocks[b];
    const uint8_t* sb = group + b * kGroupBlock;
    std::memcpy(&blk.d, sb + 2 * r, 2);
    uint8_t level[kQK_K];
    for (int s = 0; s < 16; ++s) {
      blk.scales[s] = static_cast<int8_t>(sb[kScales + 32 * (s / 4) + 4 * r + s % 4]);
      const uint8_t* lv = sb + kLevels + s * kSubBlockBytes;
      for (int e = 0; e < 16; ++e) {
        const int grp = e / 4, i = e % 4;
        const uint8_t lo = lv[32 * (grp % 2) + 4 * r + i];
        level[16 * s + e] = static_cast<uint8_t>((grp < 2 ? lo & 0x0F : lo >> 4) |
                                                 (((lv[64 + 4 * r + i] >> (2 * grp)) & 3) << 4));
      }
    }
    // The file's packing (quant/q6_k.cpp).
    for (int h = 0; h < 2; ++h)
      for (int l = 0; l < 32; ++l) {
        const uint8_t* y = level + 128 * h + l;
        blk.ql[64 * h + l] = static_cast<uint8_t>((y[0] & 0x0F) | ((y[64] & 0x0F) << 4));
        blk.ql[64 * h + l + 32] = static_cast<uint8_t>((y[32] & 0x0F) | ((y[96] & 0x0F) << 4));
        blk.qh[32 * h + l] = static_cast<uint8_t>((y[0] >> 4) | ((y[32] >> 4) << 2) | ((y[64] >> 4) << 4) | ((y[96] >> 4) << 6));
      }
  }
}

}  // namespace

bool interleaved_q6_k_kernel_for(DType type, RowKernel& out) {
  if (type != DType::kQ6_K) return false;
  out = group_row_kernel<Q6_KX8>(planar_q8k_bytes, encode_planar_q8k, repack_x8, unpack_x8);
  return true;
}

}  // namespace osprey::kernels::avx2
