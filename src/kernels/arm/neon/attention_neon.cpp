// NEON flash-style attention over fp16 keys and values: the same algorithm as
// the AVX2 kernel (x86/avx2/attention_avx2.cpp), four lanes wide. Positions
// come in tiles of 8 fixed by absolute position; each tile's rows are
// converted to fp32 once for every query of the call, and each query keeps a
// running max, sum and rescaled output (online softmax). The query is rounded
// to fp16 to meet the keys; probabilities and sums stay fp32. A query's
// result depends only on its own inputs: bit for bit the same alone, in any
// group and over any block layout.
#include <arm_neon.h>

#include <algorithm>
#include <cmath>

#include "kernels/ops.h"

namespace osprey::kernels::neon {

namespace {

constexpr int kTile = 8;

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

}  // namespace

void attend_group(const float* const* q, int n_q, const int64_t* n_kv, const KvView& kv, int head_dim, float scale,
                  float* scores, float* const* out) {
  // Heads are multiples of 4 wide in every model osprey runs; others use the reference.
  if (head_dim % 4 != 0 || head_dim > 256) {
    kernels::attend_group(q, n_q, n_kv, kv, head_dim, scale, scores, out);
    return;
  }
  if (n_q > kMaxGroupQueries) {  // callers stay within the limit; this keeps the kernel total
    for (int i = 0; i < n_q; i += kMaxGroupQueries)
      neon::attend_group(q + i, std::min(kMaxGroupQueries, n_q - i), n_kv + i, kv, head_dim, scale, scores, out + i);
    return;
  }
  const int nv = head_dim / 4;
  int64_t max_kv = 0;
  for (int i = 0; i < n_q; ++i) max_kv = std::max(max_kv, n_kv[i]);
  alignas(16) float qh[kMaxGroupQueries][256];
  alignas(16) float o[kMaxGroupQueries][256];
  alignas(16) float kf[kTile][256], vf[kTile][256];
  float m[kMaxGroupQueries], l[kMaxGroupQueries];
  for (int i = 0; i < n_q; ++i) {
    m[i] = -INFINITY;
    l[i] = 0;
    for (int j = 0; j < nv; ++j) {
      vst1q_f32(qh[i] + 4 * j, round_to_half4(vld1q_f32(q[i] + 4 * j)));
      vst1q_f32(o[i] + 4 * j, vdupq_n_f32(0));
    }
  }
  const float32x4_t lane_lo = {0, 1, 2, 3}, lane_hi = {4, 5, 6, 7};
  for (int64_t t0 = 0; t0 < max_kv; t0 += kTile) {
    const int rows = static_cast<int>(std::min<int64_t>(kTile, max_kv - t0));
    for (int r = 0; r < kTile; ++r) {
      if (r < rows) {
        const int64_t at = kv_storage_row(kv, t0 + r) * kv.stride;
        for (int j = 0; j < nv; ++j) {
          vst1q_f32(kf[r] + 4 * j, load_half4(kv.k + at + 4 * j));
          vst1q_f32(vf[r] + 4 * j, load_half4(kv.v + at + 4 * j));
        }
      } else {
        for (int j = 0; j < nv; ++j) vst1q_f32(kf[r] + 4 * j, vdupq_n_f32(0));
      }
    }
    for (int i = 0; i < n_q; ++i) {
      if (n_kv[i] <= t0) continue;
      const int valid = static_cast<int>(std::min<int64_t>(kTile, n_kv[i] - t0));
      float32x4_t acc[kTile];
      for (int r = 0; r < kTile; ++r) acc[r] = vdupq_n_f32(0);
      for (int j = 0; j < nv; ++j) {
        const float32x4_t qv = vld1q_f32(qh[i] + 4 * j);
        for (int r = 0; r < kTile; ++r) acc[r] = vfmaq_f32(acc[r], qv, vld1q_f32(kf[r] + 4 * j));
      }
      const float32x4_t vvalid = vdupq_n_f32(static_cast<float>(valid)), ninf = vdupq_n_f32(-INFINITY);
      const float32x4_t s_lo = vbslq_f32(vcltq_f32(lane_lo, vvalid), vmulq_n_f32(reduce4(acc), scale), ninf);
      const float32x4_t s_hi = vbslq_f32(vcltq_f32(lane_hi, vvalid), vmulq_n_f32(reduce4(acc + 4), scale), ninf);
      const float m_new = std::fmax(m[i], vmaxvq_f32(vmaxq_f32(s_lo, s_hi)));
      const float alpha = vgetq_lane_f32(exp4(vdupq_n_f32(m[i] - m_new)), 0);
      const float32x4_t p_lo = exp4(vsubq_f32(s_lo, vdupq_n_f32(m_new)));
      const float32x4_t p_hi = exp4(vsubq_f32(s_hi, vdupq_n_f32(m_new)));
      m[i] = m_new;
      l[i] = l[i] * alpha + vaddvq_f32(vaddq_f32(p_lo, p_hi));
      float pv[kTile];
      vst1q_f32(pv, p_lo);
      vst1q_f32(pv + 4, p_hi);
      for (int j = 0; j < nv; ++j) {
        float32x4_t a = vmulq_n_f32(vld1q_f32(o[i] + 4 * j), alpha);
        for (int r = 0; r < valid; ++r) a = vfmaq_n_f32(a, vld1q_f32(vf[r] + 4 * j), pv[r]);
        vst1q_f32(o[i] + 4 * j, a);
      }
    }
  }
  for (int i = 0; i < n_q; ++i) {
    const float inv = 1.0f / l[i];
    for (int j = 0; j < nv; ++j) vst1q_f32(out[i] + 4 * j, vmulq_n_f32(vld1q_f32(o[i] + 4 * j), inv));
  }
}

void attend_head(const float* q, const KvView& kv, int64_t n_kv, int head_dim, float scale, float* scores,
                 float* out) {
  neon::attend_group(&q, 1, &n_kv, kv, head_dim, scale, scores, &out);
}

}  // namespace osprey::kernels::neon
