// AVX-512 flash-style attention over fp16 keys and values: the algorithm of
// the AVX2 kernel (attention_avx2.cpp) with tiles of 16 positions, so that a
// query's 16 scores fill one register and the dot products and the V update
// take half the instructions. Built with the AVX-512 flags; only called after
// the CPU was probed.
//
// Tiles are fixed by absolute position (tile k covers 16k..16k+15 wherever the
// cache stores them), and a query's arithmetic depends only on its own query,
// length and the cache contents: alone, in any group and over any block
// layout it gets the same bits.
// GCC 12 reports the _mm512_undefined_* operands inside its own intrinsics
// (conversions, reductions) as uninitialized; they are fully overwritten. The
// pragmas precede the header, where those inline functions are defined.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "kernels/ops.h"

namespace osprey::kernels::avx2 {
void attend_group(const float* const* q, int n_q, const int64_t* n_kv, const KvView& kv, int head_dim, float scale,
                  float* scores, float* const* out);  // attention_avx2.cpp
}  // namespace osprey::kernels::avx2

namespace osprey::kernels::avx512 {

namespace {

constexpr int kTile = 16;

inline __m512 load_half16(const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// e^x for x <= 0 as the AVX2 kernel computes it (Cody-Waite reduction and a
// degree-6 polynomial, about 2 ulp); below the smallest normal float, and for
// x = -inf, exactly 0. Kept here rather than shared because inline code
// compiled with these flags must not be linked into the AVX2 kernels.
inline __m512 exp16(__m512 x) {
  const __m512 lo = _mm512_set1_ps(-87.33654f);  // ln(FLT_MIN)
  const __mmask16 tiny = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ);
  x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.3762626647949f)), lo);
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 y = _mm512_set1_ps(1.9875691500e-4f);
  for (float c : {1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f})
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(c));
  y = _mm512_fmadd_ps(y, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  const __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  return _mm512_maskz_mul_ps(static_cast<__mmask16>(~tiny), y, _mm512_castsi512_ps(bits));
}

// The sixteen sums of a[0..15]'s lanes as one vector: lane r = sum of a[r].
// Each level adds pairs of vectors after interleaving them, halving the count
// and doubling how many sums share a register.
inline __m512 reduce16(const __m512 a[16]) {
  __m512 b[8], c[4], d[2];
  for (int k = 0; k < 8; ++k)  // 32-bit pairs within each 128-bit lane
    b[k] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * k], a[2 * k + 1]), _mm512_unpackhi_ps(a[2 * k], a[2 * k + 1]));
  for (int k = 0; k < 4; ++k)  // 64-bit halves: each 128-bit lane holds partial sums of four rows
    c[k] = _mm512_add_ps(_mm512_shuffle_ps(b[2 * k], b[2 * k + 1], 0x44), _mm512_shuffle_ps(b[2 * k], b[2 * k + 1], 0xEE));
  for (int k = 0; k < 2; ++k)  // 128-bit lanes 0+2 and 1+3
    d[k] = _mm512_add_ps(_mm512_shuffle_f32x4(c[2 * k], c[2 * k + 1], 0x44),
                         _mm512_shuffle_f32x4(c[2 * k], c[2 * k + 1], 0xEE));
  return _mm512_add_ps(_mm512_shuffle_f32x4(d[0], d[1], 0x88), _mm512_shuffle_f32x4(d[0], d[1], 0xDD));
}

}  // namespace

void attend_group(const float* const* q, int n_q, const int64_t* n_kv, const KvView& kv, int head_dim, float scale,
                  float* scores, float* const* out) {
  // Heads of 64 and 128 (every model osprey runs); others take the AVX2 kernel.
  if (head_dim % 16 != 0 || head_dim > 256) {
    avx2::attend_group(q, n_q, n_kv, kv, head_dim, scale, scores, out);
    return;
  }
  if (n_q > kMaxGroupQueries) {  // callers stay within the limit; this keeps the kernel total
    for (int i = 0; i < n_q; i += kMaxGroupQueries)
      avx512::attend_group(q + i, std::min(kMaxGroupQueries, n_q - i), n_kv + i, kv, head_dim, scale, scores, out + i);
    return;
  }
  const int nv = head_dim / 16;
  int64_t max_kv = 0;
  for (int i = 0; i < n_q; ++i) max_kv = std::max(max_kv, n_kv[i]);
  alignas(64) float qh[kMaxGroupQueries][256];
  alignas(64) float o[kMaxGroupQueries][256];
  alignas(64) float kf[kTile][256], vf[kTile][256];
  float m[kMaxGroupQueries], l[kMaxGroupQueries];
  for (int i = 0; i < n_q; ++i) {
    m[i] = -INFINITY;
    l[i] = 0;
    for (int j = 0; j < nv; ++j) {  // the query rounded to fp16, to meet the fp16 keys
      _mm512_store_ps(qh[i] + 16 * j,
                      _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_loadu_ps(q[i] + 16 * j), _MM_FROUND_TO_NEAREST_INT)));
      _mm512_store_ps(o[i] + 16 * j, _mm512_setzero_ps());
    }
  }
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  for (int64_t t0 = 0; t0 < max_kv; t0 += kTile) {
    const int rows = static_cast<int>(std::min<int64_t>(kTile, max_kv - t0));
    for (int r = 0; r < kTile; ++r) {
      if (r < rows) {
        const int64_t at = kv_storage_row(kv, t0 + r) * kv.stride;
        for (int j = 0; j < nv; ++j) {
          _mm512_store_ps(kf[r] + 16 * j, load_half16(kv.k + at + 16 * j));
          _mm512_store_ps(vf[r] + 16 * j, load_half16(kv.v + at + 16 * j));
        }
      } else {
        for (int j = 0; j < nv; ++j) _mm512_store_ps(kf[r] + 16 * j, _mm512_setzero_ps());
      }
    }
    for (int i = 0; i < n_q; ++i) {
      if (n_kv[i] <= t0) continue;
      const int valid = static_cast<int>(std::min<int64_t>(kTile, n_kv[i] - t0));
      __m512 acc[kTile];
      for (int r = 0; r < kTile; ++r) acc[r] = _mm512_setzero_ps();
      for (int j = 0; j < nv; ++j) {
        const __m512 qv = _mm512_load_ps(qh[i] + 16 * j);
        for (int r = 0; r < kTile; ++r) acc[r] = _mm512_fmadd_ps(qv, _mm512_load_ps(kf[r] + 16 * j), acc[r]);
      }
      const __mmask16 live = _mm512_cmplt_epi32_mask(lane, _mm512_set1_epi32(valid));
      const __m512 s = _mm512_mask_mul_ps(_mm512_set1_ps(-INFINITY), live, reduce16(acc), _mm512_set1_ps(scale));
      const float m_new = std::fmax(m[i], _mm512_reduce_max_ps(s));
      // exp(m_old - m_new) rescales what came before (0 on the first tile).
      const __m512 alpha = exp16(_mm512_set1_ps(m[i] - m_new));
      const __m512 p = exp16(_mm512_sub_ps(s, _mm512_set1_ps(m_new)));
      m[i] = m_new;
      l[i] = l[i] * _mm512_cvtss_f32(alpha) + _mm512_reduce_add_ps(p);
      alignas(64) float pv[kTile];
      _mm512_store_ps(pv, p);
      for (int j = 0; j < nv; ++j) {
        __m512 a = _mm512_mul_ps(_mm512_load_ps(o[i] + 16 * j), alpha);
        for (int r = 0; r < valid; ++r) a = _mm512_fmadd_ps(_mm512_set1_ps(pv[r]), _mm512_load_ps(vf[r] + 16 * j), a);
        _mm512_store_ps(o[i] + 16 * j, a);
      }
    }
  }
  for (int i = 0; i < n_q; ++i) {
    const __m512 inv = _mm512_set1_ps(1.0f / l[i]);
    for (int j = 0; j < nv; ++j) _mm512_storeu_ps(out[i] + 16 * j, _mm512_mul_ps(_mm512_load_ps(o[i] + 16 * j), inv));
  }
}

void attend_head(const float* q, const KvView& kv, int64_t n_kv, int head_dim, float scale, float* scores,
                 float* out) {
  avx512::attend_group(&q, 1, &n_kv, kv, head_dim, scale, scores, &out);
}

}  // namespace osprey::kernels::avx512
