// NEON flash-style attention over fp16 keys and values: the queries in
// lanes (kernels/attend_lanes.h), 4 to a block, over tiles of 8 positions,
// on the shared tile driver (kernels/attend_tiled.h). Until the queries sat
// in lanes, each query reduced its 8 scores across lanes and ran its max and
// exps alone, as the x86 levels did before the same change (which took the
// AVX2 kernel from 31-34 to 42-51 GFLOP/s on Zen 3). The queries are rounded
// to fp16 to meet the keys; probabilities and sums stay fp32.
#include <arm_neon.h>

#include <cmath>
#include <cstring>

#include "kernels/attend_lanes.h"
#include "kernels/attend_tiled.h"
#include "kernels/ops.h"
#include "kernels/arm/neon/neon.h"

namespace osprey::kernels::neon {

namespace {

inline float32x4_t load_half4(const uint16_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }

// e^x to about 2 ulp for x <= 0; below the smallest normal float, and for
// x = -inf, exactly 0.
inline float32x4_t exp4(float32x4_t x) {
  const float32x4_t lo = vdupq_n_f32(-87.33654f);  // ln(FLT_MIN)
  const uint32x4_t tiny = vcltq_f32(x, lo);
  x = vmaxq_f32(vminq_f32(x, vdupq_n_f32(88.3762626647949f)), lo);
  const float32x4_t n = vrndnq_f32(vmulq_n_f32(x, 1.44269504088896341f));
  float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693359375f));
  r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
  float32x4_t y = vdupq_n_f32(1.9875691500e-4f);
  y = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), y, r);
  y = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), y, r);
  y = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), y, r);
  y = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), y, r);
  y = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), y, r);
  y = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), y, vmulq_f32(r, r));
  const int32x4_t bits = vshlq_n_s32(vaddq_s32(vcvtnq_s32_f32(n), vdupq_n_s32(127)), 23);
  const float32x4_t e = vmulq_f32(y, vreinterpretq_f32_s32(bits));
  return vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(e), tiny));
}

// cap * tanh(x / cap), through e^(-2|x|/cap) so that the exponent stays <= 0.
inline float32x4_t softcap4(float32x4_t x, float cap) {
  const float32x4_t e = exp4(vmulq_n_f32(vabsq_f32(x), -2.0f / cap));
  const float32x4_t one = vdupq_n_f32(1.0f);
  const float32x4_t t = vdivq_f32(vsubq_f32(one, e), vaddq_f32(one, e));
  const uint32x4_t sign = vandq_u32(vreinterpretq_u32_f32(x), vdupq_n_u32(0x80000000u));
  return vmulq_n_f32(vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(t), sign)), cap);
}

// attend_lanes.h's vector operations at this level. Four queries by four
// vectors in P.V: sixteen sums, four values and a broadcast in the 32
// registers.
struct NeonLanes {
  using F = float32x4_t;
  using M = uint32x4_t;
  static constexpr int kLanes = 4, kTile = 8, kValueQueries = 4, kValueVectors = 4;

  static F zero() { return vdupq_n_f32(0); }
  static F splat(float x) { return vdupq_n_f32(x); }
  static F splat_from(const float* p) { return vld1q_dup_f32(p); }
  static F load(const float* p) { return vld1q_f32(p); }
  static void store(float* p, F v) { vst1q_f32(p, v); }
  static F add(F a, F b) { return vaddq_f32(a, b); }
  static F sub(F a, F b) { return vsubq_f32(a, b); }
  static F mul(F a, F b) { return vmulq_f32(a, b); }
  static F max(F a, F b) { return vmaxq_f32(a, b); }
  static F mul_add(F acc, F a, F b) { return vfmaq_f32(acc, a, b); }
  static F exp(F x) { return exp4(x); }
  static F softcap(F x, float cap) { return softcap4(x, cap); }
  static M live(const int32_t* lo, const int32_t* hi, int r) {
    const int32x4_t vr = vdupq_n_s32(r);
    return vandq_u32(vcleq_s32(vld1q_s32(lo), vr), vcgtq_s32(vld1q_s32(hi), vr));
  }
  static bool any_live(const int32_t* lo, const int32_t* hi) {
    return vmaxvq_u32(vcgtq_s32(vld1q_s32(hi), vld1q_s32(lo))) != 0;
  }
  // m > -inf: false for -inf and for NaN.
  static M seen(F m) { return vcgtq_f32(m, vdupq_n_f32(-INFINITY)); }
  static F select(M m, F a, F b) { return vbslq_f32(m, a, b); }
  static F keep(M m, F a) { return vreinterpretq_f32_u32(vandq_u32(m, vreinterpretq_u32_f32(a))); }
  static float round_to_half(float x) { return vgetq_lane_f32(vcvt_f32_f16(vcvt_f16_f32(vdupq_n_f32(x))), 0); }

  template <int H>
  static F splat_heads(const float* p) {
    if constexpr (H == 2) {
      uint64_t pair;
      std::memcpy(&pair, p, sizeof pair);
      return vreinterpretq_f32_u64(vdupq_n_u64(pair));
    } else {
      static_assert(H == 4);
      return vld1q_f32(p);
    }
  }
  // Lanes 0..kLanes/2-1 of a and b, and then the upper halves, taken in
  // turn: a0 b0 a1 b1 ... (attend_lanes.h interleaves heads with them).
  static F zip_lo(F a, F b) { return vzip1q_f32(a, b); }
  static F zip_hi(F a, F b) { return vzip2q_f32(a, b); }
};

// The level's part of attend_tiled.
struct NeonAttention : LaneAttention<NeonLanes> {
  static constexpr int kWidth = 4;

  static void fallback(const float* const* q, int n_q, const KvSpan* spans, const KvView& kv, int head_dim,
                       const AttendParams& p, float* scores, float* const* out) {
    kernels::attend_group(q, n_q, spans, kv, head_dim, p, scores, out);
  }
  static void widen_f16(const uint16_t* src, float* dst, int n) {
    for (int j = 0; j < n; j += 4) vst1q_f32(dst + j, load_half4(src + j));
  }
  static void scale_row(const float* src, float f, float* dst, int n) {
    for (int j = 0; j < n; j += 4) vst1q_f32(dst + j, vmulq_n_f32(vld1q_f32(src + j), f));
  }
};

}  // namespace

void attend_group(const float* const* q, int n_q, const KvSpan* spans, const KvView& kv, int head_dim,
                  const AttendParams& p, float* scores, float* const* out) {
  attend_tiled<NeonAttention>(q, n_q, spans, kv, head_dim, p, scores, out);
}

void attend_heads(const float* const* q, int n_q, int n_heads, const KvSpan* spans, const KvView& kv, int head_dim,
                  const AttendParams& p, float* scores, float* const* out) {
  static_assert(NeonLanes::kLanes == kAttendLanes);
  HeadsInLanes<NeonAttention>::run(q, n_q, n_heads, spans, kv, head_dim, p, scores, out, neon::attend_group);
}

void attend_one(const float* q, const KvView& kv, KvSpan span, int head_dim, const AttendParams& p, float* scores,
                float* out) {
  neon::attend_group(&q, 1, &span, kv, head_dim, p, scores, &out);
}

}  // namespace osprey::kernels::neon
