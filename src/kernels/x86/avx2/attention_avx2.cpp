// AVX2 + F16C flash-style attention over fp16 keys and values: the queries
// in lanes (kernels/attend_lanes.h), 8 to a block, over tiles of 8
// positions, on the shared tile driver (kernels/attend_tiled.h). The queries
// are rounded to fp16 to meet the fp16 keys; probabilities and sums stay fp32.
//
// Until the queries sat in lanes the level kept one query's 8 scores in a
// register: per query and tile, eight dot products reduced across lanes, a
// max and two exps across lanes, a chain that the next query waited on. One
// thread of `osprey_kernel_bench --benchmark_filter=attention/avx2` on Zen 3:
// see the README's measurements.
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "kernels/attend_lanes.h"
#include "kernels/attend_tiled.h"
#include "kernels/ops.h"
#include "kernels/x86/avx2/avx2.h"
#include "kernels/x86/avx2/avx2_util.h"

namespace osprey::kernels::avx2 {

namespace {

inline __m256 load_half8(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// cap * tanh(x / cap), through e^(-2|x|/cap) so that the exponent stays <= 0.
inline __m256 softcap8(__m256 x, float cap) {
  const __m256 sign = _mm256_and_ps(x, _mm256_set1_ps(-0.0f));
  const __m256 a = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
  const __m256 e = exp8(_mm256_mul_ps(a, _mm256_set1_ps(-2.0f / cap)));
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 t = _mm256_div_ps(_mm256_sub_ps(one, e), _mm256_add_ps(one, e));
  return _mm256_mul_ps(_mm256_or_ps(t, sign), _mm256_set1_ps(cap));
}

// attend_lanes.h's vector operations at this level. Four queries by two
// vectors in P.V: eight sums, two values and a broadcast in the sixteen
// registers.
struct Avx2Lanes {
  using F = __m256;
  using M = __m256;
  static constexpr int kLanes = 8, kTile = 8, kValueQueries = 4, kValueVectors = 2;

  static F zero() { return _mm256_setzero_ps(); }
  static F splat(float x) { return _mm256_set1_ps(x); }
  static F splat_from(const float* p) { return _mm256_broadcast_ss(p); }
  static F load(const float* p) { return _mm256_load_ps(p); }
  static void store(float* p, F v) { _mm256_store_ps(p, v); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F sub(F a, F b) { return _mm256_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F max(F a, F b) { return _mm256_max_ps(a, b); }
  static F mul_add(F acc, F a, F b) { return _mm256_fmadd_ps(a, b, acc); }
  static F exp(F x) { return exp8(x); }
  static F softcap(F x, float cap) { return softcap8(x, cap); }
  static M live(const int32_t* lo, const int32_t* hi, int r) {
    const __m256i vr = _mm256_set1_epi32(r);
    const __m256i vlo = _mm256_load_si256(reinterpret_cast<const __m256i*>(lo));
    const __m256i vhi = _mm256_load_si256(reinterpret_cast<const __m256i*>(hi));
    return _mm256_castsi256_ps(_mm256_andnot_si256(_mm256_cmpgt_epi32(vlo, vr), _mm256_cmpgt_epi32(vhi, vr)));
  }
  static bool any_live(const int32_t* lo, const int32_t* hi) {
    const __m256i vlo = _mm256_load_si256(reinterpret_cast<const __m256i*>(lo));
    const __m256i vhi = _mm256_load_si256(reinterpret_cast<const __m256i*>(hi));
    return _mm256_movemask_epi8(_mm256_cmpgt_epi32(vhi, vlo)) != 0;
  }
  static M seen(F m) { return _mm256_cmp_ps(m, _mm256_set1_ps(-INFINITY), _CMP_NEQ_OQ); }
  static F select(M m, F a, F b) { return _mm256_blendv_ps(b, a, m); }
  static F keep(M m, F a) { return _mm256_and_ps(m, a); }
  static float round_to_half(float x) { return _cvtsh_ss(_cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT)); }

  template <int H>
  static F splat_heads(const float* p) {
    if constexpr (H == 2) {
      double pair;
      std::memcpy(&pair, p, sizeof pair);
      return _mm256_castpd_ps(_mm256_set1_pd(pair));
    } else if constexpr (H == 4) {
      return _mm256_broadcast_ps(reinterpret_cast<const __m128*>(p));
    } else {
      static_assert(H == 8);
      return _mm256_load_ps(p);
    }
  }
  // Lanes 0..kLanes/2-1 of a and b, and then the upper halves, taken in
  // turn: a0 b0 a1 b1 ... (attend_lanes.h interleaves heads with them).
  // (unpack works within 128-bit halves; the permute puts the halves in order)
  static F zip_lo(F a, F b) {
    return _mm256_permute2f128_ps(_mm256_unpacklo_ps(a, b), _mm256_unpackhi_ps(a, b), 0x20);
  }
  static F zip_hi(F a, F b) {
    return _mm256_permute2f128_ps(_mm256_unpacklo_ps(a, b), _mm256_unpackhi_ps(a, b), 0x31);
  }
};

// The level's part of attend_tiled.
struct Avx2Attention : LaneAttention<Avx2Lanes> {
  static constexpr int kWidth = 8;

  static void fallback(const float* const* q, int n_q, const KvSpan* spans, const KvView& kv, int head_dim,
                       const AttendParams& p, float* scores, float* const* out) {
    kernels::attend_group(q, n_q, spans, kv, head_dim, p, scores, out);
  }
  static void widen_f16(const uint16_t* src, float* dst, int n) {
    for (int j = 0; j < n; j += 8) _mm256_store_ps(dst + j, load_half8(src + j));
  }
  static void scale_row(const float* src, float f, float* dst, int n) {
    const __m256 vf = _mm256_set1_ps(f);
    for (int j = 0; j < n; j += 8) _mm256_storeu_ps(dst + j, _mm256_mul_ps(_mm256_load_ps(src + j), vf));
  }
};

}  // namespace

void attend_group(const float* const* q, int n_q, const KvSpan* spans, const KvView& kv, int head_dim,
                  const AttendParams& p, float* scores, float* const* out) {
  attend_tiled<Avx2Attention>(q, n_q, spans, kv, head_dim, p, scores, out);
}

void attend_heads(const float* const* q, int n_q, int n_heads, const KvSpan* spans, const KvView& kv, int head_dim,
                  const AttendParams& p, float* scores, float* const* out) {
  static_assert(Avx2Lanes::kLanes == kAttendLanes);
  HeadsInLanes<Avx2Attention>::run(q, n_q, n_heads, spans, kv, head_dim, p, scores, out, avx2::attend_group);
}

void attend_one(const float* q, const KvView& kv, KvSpan span, int head_dim, const AttendParams& p, float* scores,
                float* out) {
  avx2::attend_group(&q, 1, &span, kv, head_dim, p, scores, &out);
}

}  // namespace osprey::kernels::avx2
