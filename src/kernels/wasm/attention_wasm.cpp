// SIMD128 flash-style attention over fp16 keys and values: the queries in
// lanes (kernels/attend_lanes.h), 4 to a block, over tiles of 8 positions,
// on the shared tile driver (kernels/attend_tiled.h). SIMD128 has no fused
// multiply-add, so products are rounded before they are added. The queries
// are rounded to fp16 to meet the keys; probabilities and sums stay fp32.
#include <cmath>

#include "core/fp16.h"
#include "kernels/attend_lanes.h"
#include "kernels/attend_tiled.h"
#include "kernels/ops.h"
#include "kernels/wasm/simd128_util.h"
#include "kernels/wasm/wasm.h"

namespace osprey::kernels::wasm {

namespace {

inline v128_t mul_add(v128_t acc, v128_t a, v128_t b) { return wasm_f32x4_add(acc, wasm_f32x4_mul(a, b)); }

// e^x to about 2 ulp for x <= 0; below the smallest normal float, and for
// x = -inf, exactly 0.
inline v128_t exp4(v128_t x) {
  const v128_t lo = wasm_f32x4_splat(-87.33654f);  // ln(FLT_MIN)
  const v128_t tiny = wasm_f32x4_lt(x, lo);
  x = wasm_f32x4_max(wasm_f32x4_min(x, wasm_f32x4_splat(88.3762626647949f)), lo);
  const v128_t n = wasm_f32x4_nearest(wasm_f32x4_mul(x, wasm_f32x4_splat(1.44269504088896341f)));
  v128_t r = wasm_f32x4_sub(x, wasm_f32x4_mul(n, wasm_f32x4_splat(0.693359375f)));
  r = wasm_f32x4_sub(r, wasm_f32x4_mul(n, wasm_f32x4_splat(-2.12194440e-4f)));
  v128_t y = wasm_f32x4_splat(1.9875691500e-4f);
  y = mul_add(wasm_f32x4_splat(1.3981999507e-3f), y, r);
  y = mul_add(wasm_f32x4_splat(8.3334519073e-3f), y, r);
  y = mul_add(wasm_f32x4_splat(4.1665795894e-2f), y, r);
  y = mul_add(wasm_f32x4_splat(1.6666665459e-1f), y, r);
  y = mul_add(wasm_f32x4_splat(5.0000001201e-1f), y, r);
  y = mul_add(wasm_f32x4_add(r, wasm_f32x4_splat(1.0f)), y, wasm_f32x4_mul(r, r));
  const v128_t bits = wasm_i32x4_shl(wasm_i32x4_add(wasm_i32x4_trunc_sat_f32x4(n), wasm_i32x4_splat(127)), 23);
  return wasm_v128_andnot(wasm_f32x4_mul(y, bits), tiny);
}

// cap * tanh(x / cap), through e^(-2|x|/cap) so that the exponent stays <= 0.
inline v128_t softcap4(v128_t x, float cap) {
  const v128_t e = exp4(wasm_f32x4_mul(wasm_f32x4_abs(x), wasm_f32x4_splat(-2.0f / cap)));
  const v128_t one = wasm_f32x4_splat(1.0f);
  const v128_t t = wasm_f32x4_div(wasm_f32x4_sub(one, e), wasm_f32x4_add(one, e));
  const v128_t sign = wasm_v128_and(x, wasm_i32x4_splat(static_cast<int32_t>(0x80000000u)));
  return wasm_f32x4_mul(wasm_v128_or(t, sign), wasm_f32x4_splat(cap));
}

// attend_lanes.h's vector operations at this level. Four queries by two
// vectors in P.V: eight sums, two values and a broadcast, which fit the
// sixteen registers an x86-64 engine gives SIMD128.
struct Simd128Lanes {
  using F = v128_t;
  using M = v128_t;
  static constexpr int kLanes = 4, kTile = 8, kValueQueries = 4, kValueVectors = 2;

  static F zero() { return wasm_f32x4_splat(0); }
  static F splat(float x) { return wasm_f32x4_splat(x); }
  static F splat_from(const float* p) { return wasm_v128_load32_splat(p); }
  static F load(const float* p) { return wasm_v128_load(p); }
  static void store(float* p, F v) { wasm_v128_store(p, v); }
  static F add(F a, F b) { return wasm_f32x4_add(a, b); }
  static F sub(F a, F b) { return wasm_f32x4_sub(a, b); }
  static F mul(F a, F b) { return wasm_f32x4_mul(a, b); }
  static F max(F a, F b) { return wasm_f32x4_max(a, b); }
  static F mul_add(F acc, F a, F b) { return wasm::mul_add(acc, a, b); }
  static F exp(F x) { return exp4(x); }
  static F softcap(F x, float cap) { return softcap4(x, cap); }
  static M live(const int32_t* lo, const int32_t* hi, int r) {
    const v128_t vr = wasm_i32x4_splat(r);
    return wasm_v128_and(wasm_i32x4_le(wasm_v128_load(lo), vr), wasm_i32x4_gt(wasm_v128_load(hi), vr));
  }
  static bool any_live(const int32_t* lo, const int32_t* hi) {
    return wasm_v128_any_true(wasm_i32x4_gt(wasm_v128_load(hi), wasm_v128_load(lo)));
  }
  // m > -inf: false for -inf and for NaN.
  static M seen(F m) { return wasm_f32x4_gt(m, wasm_f32x4_splat(-INFINITY)); }
  static F select(M m, F a, F b) { return wasm_v128_bitselect(a, b, m); }
  static F keep(M m, F a) { return wasm_v128_and(m, a); }
  static float round_to_half(float x) { return fp16_to_fp32(fp32_to_fp16(x)); }

  template <int H>
  static F splat_heads(const float* p) {
    if constexpr (H == 2) {
      return wasm_v128_load64_splat(p);
    } else {
      static_assert(H == 4);
      return wasm_v128_load(p);
    }
  }
  // Lanes 0..kLanes/2-1 of a and b, and then the upper halves, taken in
  // turn: a0 b0 a1 b1 ... (attend_lanes.h interleaves heads with them).
  static F zip_lo(F a, F b) { return wasm_i32x4_shuffle(a, b, 0, 4, 1, 5); }
  static F zip_hi(F a, F b) { return wasm_i32x4_shuffle(a, b, 2, 6, 3, 7); }
};

// The level's part of attend_tiled.
struct Simd128Attention : LaneAttention<Simd128Lanes> {
  static constexpr int kWidth = 4;

  static void fallback(const float* const* q, int n_q, const KvSpan* spans, const KvView& kv, int head_dim,
                       const AttendParams& p, float* scores, float* const* out) {
    kernels::attend_group(q, n_q, spans, kv, head_dim, p, scores, out);
  }
  static void widen_f16(const uint16_t* src, float* dst, int n) {
    for (int j = 0; j < n; j += 4) wasm_v128_store(dst + j, half4_to_f32(src + j));
  }
  static void scale_row(const float* src, float f, float* dst, int n) {
    for (int j = 0; j < n; j += 4) wasm_v128_store(dst + j, wasm_f32x4_mul(wasm_v128_load(src + j), wasm_f32x4_splat(f)));
  }
};

}  // namespace

void attend_group(const float* const* q, int n_q, const KvSpan* spans, const KvView& kv, int head_dim,
                  const AttendParams& p, float* scores, float* const* out) {
  attend_tiled<Simd128Attention>(q, n_q, spans, kv, head_dim, p, scores, out);
}

void attend_heads(const float* const* q, int n_q, int n_heads, const KvSpan* spans, const KvView& kv, int head_dim,
                  const AttendParams& p, float* scores, float* const* out) {
  static_assert(Simd128Lanes::kLanes == kAttendLanes);
  HeadsInLanes<Simd128Attention>::run(q, n_q, n_heads, spans, kv, head_dim, p, scores, out, wasm::attend_group);
}

void attend_one(const float* q, const KvView& kv, KvSpan span, int head_dim, const AttendParams& p, float* scores,
                float* out) {
  wasm::attend_group(&q, 1, &span, kv, head_dim, p, scores, &out);
}

}  // namespace osprey::kernels::wasm
