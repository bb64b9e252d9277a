// AVX2 Q6_K over eight interleaved rows, against q8_k planar activations.
// Built with -mavx2 -mfma -mf16c; only called after the CPU was probed.
//
// As with Q4_0 and Q4_K (gemm_q4_0_x8_avx2.cpp, gemm_q4_k_q5_k_x8_avx2.cpp), the
// lanes of a register are eight rows and activations are broadcast four
// bytes at a time. Levels run 0..63 here, so only two maddubs results fit in
// int16 before the madd that widens them and applies the 16-element
// sub-block's scale; the -32 offset of the levels is taken once per
// super-block from the activations' 16-element sums.
//
// The layout is repack_q6_k_rows's with 8 rows (kernels/repack.h).
#include <immintrin.h>

#include <cstring>

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
  // Eight tokens a tile: the four decoded weight registers leave room for eight accumulators
  // (`osprey_kernel_bench gemm64/q6_k` under OSPREY_ISA=avx2, Zen 5: 276 -> 318-328 GFLOP/s against 4 tokens).
  static constexpr int kTileTokens = 8;
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

void repack_x8(const uint8_t* src, uint8_t* dst, int64_t n) { repack_q6_k_rows(src, dst, n, kRows); }
void unpack_x8(const uint8_t* group, int64_t row, uint8_t* dst, int64_t n) { unpack_q6_k_rows(group, row, dst, n, kRows); }

}  // namespace

bool interleaved_q6_k_kernel_for(DType type, RowKernel& out) {
  if (type != DType::kQ6_K) return false;
  out = group_row_kernel<Q6_KX8>(planar_q8k_bytes, avx2::encode_planar_q8k, repack_x8, unpack_x8);
  return true;
}

}  // namespace osprey::kernels::avx2
