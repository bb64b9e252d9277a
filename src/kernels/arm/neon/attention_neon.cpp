// NEON flash-style attention over fp16 keys and values, on the shared tile
// driver (kernels/attend_tiled.h), tiles of 8 positions, one query at a
// time: each query's 8 scores are reduced across lanes. (The x86 levels put
// the queries in lanes instead, which took the AVX2 kernel from 31-34 to
// 42-51 GFLOP/s on Zen 3; this level has not been moved yet.) The query is
// rounded to fp16 to meet the keys; probabilities and sums stay fp32.
#include <arm_neon.h>

#include <algorithm>
#include <cmath>

#include "kernels/attend_tiled.h"
#include "kernels/ops.h"
#include "kernels/arm/neon/neon.h"

namespace osprey::kernels::neon {

namespace {

inline float32x4_t load_half4(const uint16_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
inline float32x4_t round_to_half4(float32x4_t x) { return vcvt_f32_f16(vcvt_f16_f32(x)); }

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

// Lane j = the sum of a[j]'s lanes.
inline float32x4_t reduce4(const float32x4_t* a) {
  return vpaddq_f32(vpaddq_f32(a[0], a[1]), vpaddq_f32(a[2], a[3]));
}

// cap * tanh(x / cap), through e^(-2|x|/cap) so that the exponent stays <= 0.
inline float32x4_t softcap4(float32x4_t x, float cap) {
  const float32x4_t e = exp4(vmulq_n_f32(vabsq_f32(x), -2.0f / cap));
  const float32x4_t one = vdupq_n_f32(1.0f);
  const float32x4_t t = vdivq_f32(vsubq_f32(one, e), vaddq_f32(one, e));
  const uint32x4_t sign = vandq_u32(vreinterpretq_u32_f32(x), vdupq_n_u32(0x80000000u));
  return vmulq_n_f32(vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(t), sign)), cap);
}

// The level's part of attend_tiled: one query at a time over a tile of 8,
// as two vectors of four scores.
struct NeonAttention {
  static constexpr int kTile = 8, kWidth = 4;

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

  class Group {
   public:
    // The queries are rounded to fp16 to meet the fp16 keys.
    Group(const float* const* q, int n_q, int head_dim) : n_q_(n_q), nv_(head_dim / 4) {
      for (int i = 0; i < n_q; ++i) {
        m_[i] = -INFINITY;
        l_[i] = 0;
        for (int j = 0; j < nv_; ++j) {
          vst1q_f32(qh_[i] + 4 * j, round_to_half4(vld1q_f32(q[i] + 4 * j)));
          vst1q_f32(o_[i] + 4 * j, vdupq_n_f32(0));
        }
      }
    }
    float max(int i) const { return m_[i]; }
    float sum(int i) const { return l_[i]; }
    const float* acc(int i) const { return o_[i]; }

    void tile(int64_t t0, const KvSpan* spans, const AttendParams& p, const float (*kf)[kMaxTiledHeadDim],
              const float (*vf)[kMaxTiledHeadDim]) {
      const float32x4_t lane_lo = {0, 1, 2, 3}, lane_hi = {4, 5, 6, 7};
      for (int i = 0; i < n_q_; ++i) {
        // This query's rows of the tile: [lo, hi).
        const int lo = static_cast<int>(std::clamp<int64_t>(spans[i].begin - t0, 0, kTile));
        const int hi = static_cast<int>(std::clamp<int64_t>(spans[i].end - t0, 0, kTile));
        if (lo >= hi) continue;
        float32x4_t acc[kTile];
        for (int r = 0; r < kTile; ++r) acc[r] = vdupq_n_f32(0);
        for (int j = 0; j < nv_; ++j) {
          const float32x4_t qv = vld1q_f32(qh_[i] + 4 * j);
          for (int r = 0; r < kTile; ++r) acc[r] = vfmaq_f32(acc[r], qv, vld1q_f32(kf[r] + 4 * j));
        }
        const float32x4_t vhi = vdupq_n_f32(static_cast<float>(hi)), vlo = vdupq_n_f32(static_cast<float>(lo));
        const float32x4_t ninf = vdupq_n_f32(-INFINITY);
        float32x4_t c_lo = vmulq_n_f32(reduce4(acc), p.scale), c_hi = vmulq_n_f32(reduce4(acc + 4), p.scale);
        if (p.softcap > 0) c_lo = softcap4(c_lo, p.softcap), c_hi = softcap4(c_hi, p.softcap);
        const float32x4_t s_lo = vbslq_f32(vandq_u32(vcltq_f32(lane_lo, vhi), vcgeq_f32(lane_lo, vlo)), c_lo, ninf);
        const float32x4_t s_hi = vbslq_f32(vandq_u32(vcltq_f32(lane_hi, vhi), vcgeq_f32(lane_hi, vlo)), c_hi, ninf);
        const float m_new = std::fmax(m_[i], vmaxvq_f32(vmaxq_f32(s_lo, s_hi)));
        const float alpha = vgetq_lane_f32(exp4(vdupq_n_f32(m_[i] - m_new)), 0);
        const float32x4_t p_lo = exp4(vsubq_f32(s_lo, vdupq_n_f32(m_new)));
        const float32x4_t p_hi = exp4(vsubq_f32(s_hi, vdupq_n_f32(m_new)));
        m_[i] = m_new;
        l_[i] = l_[i] * alpha + vaddvq_f32(vaddq_f32(p_lo, p_hi));
        float pv[kTile];
        vst1q_f32(pv, p_lo);
        vst1q_f32(pv + 4, p_hi);
        for (int j = 0; j < nv_; ++j) {
          float32x4_t a = vmulq_n_f32(vld1q_f32(o_[i] + 4 * j), alpha);
          for (int r = lo; r < hi; ++r) a = vfmaq_n_f32(a, vld1q_f32(vf[r] + 4 * j), pv[r]);
          vst1q_f32(o_[i] + 4 * j, a);
        }
      }
    }

   private:
    int n_q_, nv_;
    alignas(16) float qh_[kMaxGroupQueries][kMaxTiledHeadDim];
    alignas(16) float o_[kMaxGroupQueries][kMaxTiledHeadDim];
    float m_[kMaxGroupQueries], l_[kMaxGroupQueries];
  };
};

}  // namespace

void attend_group(const float* const* q, int n_q, const KvSpan* spans, const KvView& kv, int head_dim,
                  const AttendParams& p, float* scores, float* const* out) {
  attend_tiled<NeonAttention>(q, n_q, spans, kv, head_dim, p, scores, out);
}

void attend_one(const float* q, const KvView& kv, KvSpan span, int head_dim, const AttendParams& p, float* scores,
                float* out) {
  neon::attend_group(&q, 1, &span, kv, head_dim, p, scores, &out);
}

}  // namespace osprey::kernels::neon
