// NEON attention over fp16 keys and values. Same contract as the reference in
// ref/ops_ref.cpp: the query and the probabilities are rounded to fp16, the
// products are summed in fp32.
#include <arm_neon.h>

#include <algorithm>
#include <cmath>

#include "kernels/ops.h"

namespace osprey::kernels::neon {

namespace {

inline float32x4_t load_half4(const uint16_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
inline float32x4_t round_to_half4(float32x4_t x) { return vcvt_f32_f16(vcvt_f16_f32(x)); }

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
  // Each K or V row is converted once and serves every query; per query the
  // arithmetic is the same whichever queries share the call, so one query
  // alone (attend_head) gets bit for bit what it gets in a group.
  const int nv = head_dim / 4;
  int64_t max_kv = 0;
  for (int i = 0; i < n_q; ++i) max_kv = std::max(max_kv, n_kv[i]);
  alignas(16) float qh[kMaxGroupQueries][256];
  alignas(16) float o[kMaxGroupQueries][256];
  float max[kMaxGroupQueries], inv[kMaxGroupQueries];
  for (int i = 0; i < n_q; ++i) {
    max[i] = -INFINITY;
    for (int j = 0; j < nv; ++j) vst1q_f32(qh[i] + 4 * j, round_to_half4(vld1q_f32(q[i] + 4 * j)));
  }
  float32x4_t row[64];
  for_each_kv_run(kv, max_kv, [&](int64_t t0, int64_t count, const uint16_t* k, const uint16_t*) {
    for (int64_t r = 0; r < count; ++r) {
      const int64_t t = t0 + r;
      for (int j = 0; j < nv; ++j) row[j] = load_half4(k + r * kv.stride + 4 * j);
      for (int i = 0; i < n_q; ++i) {
        if (t >= n_kv[i]) continue;
        float32x4_t acc0 = vdupq_n_f32(0), acc1 = vdupq_n_f32(0);
        int j = 0;
        for (; j + 2 <= nv; j += 2) {
          acc0 = vfmaq_f32(acc0, vld1q_f32(qh[i] + 4 * j), row[j]);
          acc1 = vfmaq_f32(acc1, vld1q_f32(qh[i] + 4 * j + 4), row[j + 1]);
        }
        if (j < nv) acc0 = vfmaq_f32(acc0, vld1q_f32(qh[i] + 4 * j), row[j]);
        float& s = scores[i * max_kv + t];
        s = vaddvq_f32(vaddq_f32(acc0, acc1)) * scale;
        max[i] = std::fmax(max[i], s);
      }
    }
  });
  for (int i = 0; i < n_q; ++i) {
    float* si = scores + i * max_kv;
    double sum = 0;
    for (int64_t t = 0; t < n_kv[i]; ++t) sum += (si[t] = std::exp(si[t] - max[i]));
    inv[i] = static_cast<float>(1.0 / sum);
    for (int j = 0; j < nv; ++j) vst1q_f32(o[i] + 4 * j, vdupq_n_f32(0));
  }
  for_each_kv_run(kv, max_kv, [&](int64_t t0, int64_t count, const uint16_t*, const uint16_t* v) {
    for (int64_t r = 0; r < count; ++r) {
      const int64_t t = t0 + r;
      for (int j = 0; j < nv; ++j) row[j] = load_half4(v + r * kv.stride + 4 * j);
      for (int i = 0; i < n_q; ++i) {
        if (t >= n_kv[i]) continue;
        const float p = vgetq_lane_f32(round_to_half4(vdupq_n_f32(scores[i * max_kv + t] * inv[i])), 0);
        for (int j = 0; j < nv; ++j) vst1q_f32(o[i] + 4 * j, vfmaq_n_f32(vld1q_f32(o[i] + 4 * j), row[j], p));
      }
    }
  });
  for (int i = 0; i < n_q; ++i)
    for (int j = 0; j < nv; ++j) vst1q_f32(out[i] + 4 * j, vld1q_f32(o[i] + 4 * j));
}

void attend_head(const float* q, const KvView& kv, int64_t n_kv, int head_dim, float scale, float* scores,
                 float* out) {
  neon::attend_group(&q, 1, &n_kv, kv, head_dim, scale, scores, &out);
}

}  // namespace osprey::kernels::neon
