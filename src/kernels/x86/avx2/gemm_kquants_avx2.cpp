// AVX2 tiles for the k-quants Q4_K and Q6_K (the formats of llama.cpp's
// Q4_K_M files): NR weight rows against NT token rows, as in gemm_avx2.cpp.
//
// Activations are "q8_k planar" (kernels/planar_act.h), Q8_K's values, so
// results agree with the scalar reference up to float summation order. Each
// super-block of 256 values is summed in int32 with the sub-block scales
// applied as int16 multipliers (madd), then scaled once in float.
#include <immintrin.h>

#include "kernels/dispatch.h"
#include "kernels/planar_act.h"
#include "kernels/x86/avx2/avx2.h"
#include "kernels/tile_dispatch.h"
#include "kernels/x86/avx2/avx2_util.h"
#include "quant/blocks.h"
#include "quant/k_quant_common.h"

namespace osprey::kernels::avx2 {

using namespace osprey::quant;

namespace {

// A super-block spans two to four cache lines; ask for each of them.
template <typename Block>
inline void prefetch_ahead(const Block* b) {
  const char* p = reinterpret_cast<const char*>(b) + kPrefetchBytes;
  for (size_t l = 0; l < sizeof(Block); l += 64) _mm_prefetch(p + l, _MM_HINT_T0);
}


// Q4_K: chunk c of 64 values keeps sub-block 2c in the low nibbles of
// qs[32c..32c+32) and sub-block 2c+1 in the high ones. Nibbles are unsigned,
// so maddubs takes them directly (15 * 127 * 2 fits in int16); the min term
// needs only the activations' 32-value sums.
template <int NR, int NT>
void q4_k_tile(const uint8_t* w, int64_t row_bytes, const uint8_t* act, int64_t act_stride, int64_t n, float* out,
               int64_t out_stride) {
  const int64_t nb = n / kQK_K;
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  PlanarQ8K a[NT];
  for (int t = 0; t < NT; ++t) a[t] = PlanarQ8K(act + t * act_stride, n);
  __m256 acc[NR][NT];
  float mins[NR][NT] = {};
  for (int r = 0; r < NR; ++r)
    for (int t = 0; t < NT; ++t) acc[r][t] = _mm256_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    for (int r = 0; r < NR; ++r) {
      const auto* b = reinterpret_cast<const BlockQ4_K*>(w + r * row_bytes) + i;
      prefetch_ahead(b);
      uint64_t sc_bytes, mn_bytes;
      k_unpack_scales_mins(b->scales, sc_bytes, mn_bytes);
      const __m256i mn32 = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<int64_t>(mn_bytes)));
      __m256i sumi[NT];
      for (int t = 0; t < NT; ++t) sumi[t] = _mm256_setzero_si256();
      for (int c = 0; c < 4; ++c) {
        const __m256i raw = load32(b->qs + 32 * c);
        const __m256i lo = _mm256_and_si256(raw, low4);
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4);
        const __m256i s_lo = _mm256_set1_epi16(static_cast<int16_t>((sc_bytes >> (16 * c)) & 0xFF));
        const __m256i s_hi = _mm256_set1_epi16(static_cast<int16_t>((sc_bytes >> (16 * c + 8)) & 0xFF));
        for (int t = 0; t < NT; ++t) {
          const int8_t* y = a[t].q + i * kQK_K + 64 * c;
          const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, load32(y)), s_lo);
          const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, load32(y + 32)), s_hi);
          sumi[t] = _mm256_add_epi32(sumi[t], _mm256_add_epi32(p0, p1));
        }
      }
      const float d = _cvtsh_ss(b->d), dmin = _cvtsh_ss(b->dmin);
      for (int t = 0; t < NT; ++t) {
        const __m256i m = _mm256_mullo_epi32(mn32, load32(a[t].sum32 + i * 8));
        const int32_t summ = hsum_i32(m);
        const float da = a[t].d[i];
        acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(d * da), _mm256_cvtepi32_ps(sumi[t]), acc[r][t]);
        mins[r][t] += dmin * da * static_cast<float>(summ);
      }
    }
  }
  for (int r = 0; r < NR; ++r)
    for (int t = 0; t < NT; ++t) out[t * out_stride + r] = hsum(acc[r][t]) - mins[r][t];
}

// Q6_K: half h of 128 values uses ql[64h..64h+64) and qh[32h..32h+32); the
// four 32-value groups k take the low or high nibbles of ql and bit pair k
// of qh. Levels 0..63 stand for q - 32: maddubs(q, a) - maddubs(32, a) stays
// within int16 (at most 24320 in size), and madd then applies the 16-value
// sub-block scales.
template <int NR, int NT>
void q6_k_tile(const uint8_t* w, int64_t row_bytes, const uint8_t* act, int64_t act_stride, int64_t n, float* out,
               int64_t out_stride) {
  const int64_t nb = n / kQK_K;
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  const __m256i three = _mm256_set1_epi8(3);
  const __m256i thirty_two = _mm256_set1_epi8(32);
  PlanarQ8K a[NT];
  for (int t = 0; t < NT; ++t) a[t] = PlanarQ8K(act + t * act_stride, n);
  __m256 acc[NR][NT];
  for (int r = 0; r < NR; ++r)
    for (int t = 0; t < NT; ++t) acc[r][t] = _mm256_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    for (int r = 0; r < NR; ++r) {
      const auto* b = reinterpret_cast<const BlockQ6_K*>(w + r * row_bytes) + i;
      prefetch_ahead(b);
      __m256i sumi[NT];
      for (int t = 0; t < NT; ++t) sumi[t] = _mm256_setzero_si256();
      for (int h = 0; h < 2; ++h) {
        const __m256i l0 = load32(b->ql + 64 * h);
        const __m256i l1 = load32(b->ql + 64 * h + 32);
        const __m256i hb = load32(b->qh + 32 * h);
        const int8_t* sc = b->scales + 8 * h;
        for (int k = 0; k < 4; ++k) {
          const __m256i l = k == 0 || k == 2 ? l0 : l1;
          const __m256i nib = k < 2 ? _mm256_and_si256(l, low4) : _mm256_and_si256(_mm256_srli_epi16(l, 4), low4);
          const __m256i q =
              _mm256_or_si256(nib, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2 * k), three), 4));
          // Values 32k..32k+15 take scale 2k, the next 16 take 2k + 1.
          const __m256i scales = _mm256_set_m128i(_mm_set1_epi16(sc[2 * k + 1]), _mm_set1_epi16(sc[2 * k]));
          for (int t = 0; t < NT; ++t) {
            const __m256i y = load32(a[t].q + i * kQK_K + 128 * h + 32 * k);
            const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(q, y), _mm256_maddubs_epi16(thirty_two, y));
            sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(p, scales));
          }
        }
      }
      const float d = _cvtsh_ss(b->d);
      for (int t = 0; t < NT; ++t)
        acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(d * a[t].d[i]), _mm256_cvtepi32_ps(sumi[t]), acc[r][t]);
    }
  }
  for (int r = 0; r < NR; ++r)
    for (int t = 0; t < NT; ++t) out[t * out_stride + r] = hsum(acc[r][t]);
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
    out.dot_rows = TileDispatch<Q4_KTile, 2, 2>::decode;
    out.dot_tile = TileDispatch<Q4_KTile, 2, 2>::tile;
  } else {
    out.dot_rows = TileDispatch<Q6_KTile, 2, 2>::decode;
    out.dot_tile = TileDispatch<Q6_KTile, 2, 2>::tile;
  }
  return true;
}

}  // namespace osprey::kernels::avx2
