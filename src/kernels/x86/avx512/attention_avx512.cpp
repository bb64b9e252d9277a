// AVX-512 flash-style attention over fp16 keys and values: the queries in
// lanes (kernels/attend_lanes.h), 16 to a block, over tiles of 16 positions,
// on the shared tile driver (kernels/attend_tiled.h), so that the dot
// products and the V update take half the instructions of the AVX2 level.
// Decode's small groups share a block across KV heads (attend_heads). Built
// with the AVX-512 flags; only called after the CPU was probed.
//
// GCC 12 reports the _mm512_undefined_* operands inside its own intrinsics
// (conversions, reductions) as uninitialized; they are fully overwritten. The
// pragmas precede the header, where those inline functions are defined.
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/attend_lanes.h"
#include "kernels/attend_tiled.h"
#include "kernels/ops.h"
#include "kernels/x86/avx2/avx2.h"
#include "kernels/x86/avx512/avx512.h"
#include "kernels/x86/avx512/avx512_util.h"

namespace osprey::kernels::avx512 {

namespace {

constexpr int kTile = 16;

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

// cap * tanh(x / cap), through e^(-2|x|/cap) so that the exponent stays <= 0.
inline __m512 softcap16(__m512 x, float cap) {
  const __m512 a = _mm512_abs_ps(x);
  const __m512 e = exp16(_mm512_mul_ps(a, _mm512_set1_ps(-2.0f / cap)));
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 t = _mm512_div_ps(_mm512_sub_ps(one, e), _mm512_add_ps(one, e));
  const __m512i sign = _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(INT32_MIN));
  return _mm512_mul_ps(_mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(t), sign)), _mm512_set1_ps(cap));
}

// Queries in lanes, 16 to a block, over tiles of 16 positions: attend_lanes.h's
// algorithm on these vectors. A tile's scores are 16 registers, one per
// position, each holding that position's score for every query of the block.
constexpr int kLanes = 16;

// A query's value, rounded to fp16 to meet fp16 keys (ops.h).
inline float query_value(float x) { return _cvtsh_ss(_cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT)); }

// attend_lanes.h's vector operations at this level. Four queries by four
// vectors in P.V: sixteen sums, four values and a broadcast in the 32
// registers.
struct Avx512Lanes {
  using F = __m512;
  using M = __mmask16;
  static constexpr int kLanes = avx512::kLanes, kTile = avx512::kTile, kValueQueries = 4, kValueVectors = 4;

  static F zero() { return _mm512_setzero_ps(); }
  static F splat(float x) { return _mm512_set1_ps(x); }
  static F splat_from(const float* p) { return _mm512_set1_ps(*p); }
  static F load(const float* p) { return _mm512_load_ps(p); }
  static void store(float* p, F v) { _mm512_store_ps(p, v); }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F sub(F a, F b) { return _mm512_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F max(F a, F b) { return _mm512_max_ps(a, b); }
  static F mul_add(F acc, F a, F b) { return _mm512_fmadd_ps(a, b, acc); }
  static F exp(F x) { return exp16(x); }
  static F softcap(F x, float cap) { return softcap16(x, cap); }
  static M live(const int32_t* lo, const int32_t* hi, int r) {
    const __m512i vr = _mm512_set1_epi32(r), vlo = _mm512_load_si512(lo), vhi = _mm512_load_si512(hi);
    return _mm512_cmpgt_epi32_mask(vhi, vr) & _mm512_cmple_epi32_mask(vlo, vr);
  }
  static bool any_live(const int32_t* lo, const int32_t* hi) {
    return _mm512_cmpgt_epi32_mask(_mm512_load_si512(hi), _mm512_load_si512(lo)) != 0;
  }
  static M seen(F m) { return _mm512_cmp_ps_mask(m, _mm512_set1_ps(-INFINITY), _CMP_NEQ_OQ); }
  static F select(M m, F a, F b) { return _mm512_mask_blend_ps(m, b, a); }
  static F keep(M m, F a) { return _mm512_maskz_mov_ps(m, a); }
  static float round_to_half(float x) { return query_value(x); }

  template <int H>
  static F splat_heads(const float* p) {
    if constexpr (H == 2) {
      double pair;
      std::memcpy(&pair, p, sizeof pair);
      return _mm512_castpd_ps(_mm512_set1_pd(pair));
    } else if constexpr (H == 4) {
      return _mm512_broadcast_f32x4(_mm_load_ps(p));
    } else if constexpr (H == 8) {
      return _mm512_castpd_ps(_mm512_broadcast_f64x4(_mm256_castps_pd(_mm256_load_ps(p))));
    } else {
      static_assert(H == 16);
      return _mm512_load_ps(p);
    }
  }
  // Lanes 0..kLanes/2-1 of a and b, and then the upper halves, taken in
  // turn: a0 b0 a1 b1 ... (attend_lanes.h interleaves heads with them).
  static F zip_lo(F a, F b) { return _mm512_permutex2var_ps(a, _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23), b); }
  static F zip_hi(F a, F b) { return _mm512_permutex2var_ps(a, _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31), b); }
};

// The level's part of attend_tiled and of HeadsInLanes.
struct Avx512Attention : LaneAttention<Avx512Lanes> {
  static constexpr int kWidth = 16;

  // Heads that are not a multiple of 16 wide take the AVX2 kernel.
  static void fallback(const float* const* q, int n_q, const KvSpan* spans, const KvView& kv, int head_dim,
                       const AttendParams& p, float* scores, float* const* out) {
    avx2::attend_group(q, n_q, spans, kv, head_dim, p, scores, out);
  }
  static void widen_f16(const uint16_t* src, float* dst, int n) {
    for (int j = 0; j < n; j += 16) _mm512_store_ps(dst + j, load_f16x16(src + j));
  }
  static void scale_row(const float* src, float f, float* dst, int n) {
    const __m512 vf = _mm512_set1_ps(f);
    for (int j = 0; j < n; j += 16) _mm512_storeu_ps(dst + j, _mm512_mul_ps(_mm512_load_ps(src + j), vf));
  }
};

}  // namespace

void attend_heads(const float* const* q, int n_q, int n_heads, const KvSpan* spans, const KvView& kv, int head_dim,
                  const AttendParams& p, float* scores, float* const* out) {
  static_assert(kLanes == kAttendLanes);
  HeadsInLanes<Avx512Attention>::run(q, n_q, n_heads, spans, kv, head_dim, p, scores, out, avx512::attend_group);
}

void attend_group(const float* const* q, int n_q, const KvSpan* spans, const KvView& kv, int head_dim,
                  const AttendParams& p, float* scores, float* const* out) {
  attend_tiled<Avx512Attention>(q, n_q, spans, kv, head_dim, p, scores, out);
}

void attend_one(const float* q, const KvView& kv, KvSpan span, int head_dim, const AttendParams& p, float* scores,
                float* out) {
  avx512::attend_group(&q, 1, &span, kv, head_dim, p, scores, &out);
}

}  // namespace osprey::kernels::avx512
