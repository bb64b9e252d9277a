// Scalar definitions of the elementwise kernels. They are the specification
// that faster variants are tested against.
#include <algorithm>
#include <cmath>

#include "core/fp16.h"
#include "osprey/status.h"
#include "kernels/ops.h"

namespace osprey::kernels {

void rmsnorm(float* out, const float* x, const float* w, int64_t n, float eps) {
  double ss = 0;  // double: a 4096-wide sum of squares loses bits in float
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float scale = static_cast<float>(1.0 / std::sqrt(ss / n + eps));
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * w[i];
}

void silu_mul(float* out, const float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void softmax(float* x, int64_t n) {
  float max = -INFINITY;
  for (int64_t i = 0; i < n; ++i) max = std::fmax(max, x[i]);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void add(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

void rope(float* x, int n_heads, int head_dim, int64_t pos, const RopeParams& p) {
  const int half = p.rope_dim / 2;
  for (int i = 0; i < half; ++i) {
    double theta = static_cast<double>(pos) / p.linear_scale *
                   std::pow(static_cast<double>(p.freq_base), -2.0 * i / p.rope_dim);
    if (p.freq_factors != nullptr) theta /= p.freq_factors[i];
    const float c = static_cast<float>(std::cos(theta)), s = static_cast<float>(std::sin(theta));
    for (int h = 0; h < n_heads; ++h) {
      float* v = x + static_cast<int64_t>(h) * head_dim;
      const int a = p.style == RopeStyle::kNeox ? i : 2 * i;
      const int b = p.style == RopeStyle::kNeox ? i + half : 2 * i + 1;
      const float x0 = v[a], x1 = v[b];
      v[a] = x0 * c - x1 * s;
      v[b] = x0 * s + x1 * c;
    }
  }
}

void attend_head(const float* q, const KvView& kv, int64_t n_kv, int head_dim, float scale, float* scores,
                 float* out) {
  // The query is rounded to fp16 to meet the fp16 keys, as an fp16 KV cache
  // computes it (llama.cpp too); everything after is plain softmax, summed in
  // double. Fast kernels reorder it (tiles, an online softmax) and must agree
  // to rounding.
  float qh[1024];
  OSPREY_CHECK(head_dim <= 1024);  // ModelConfig rejects larger heads
  for (int d = 0; d < head_dim; ++d) qh[d] = fp16_to_fp32(fp32_to_fp16(q[d]));
  float max = -INFINITY;
  for_each_kv_run(kv, n_kv, [&](int64_t t0, int64_t count, const uint16_t* k, const uint16_t*) {
    for (int64_t i = 0; i < count; ++i) {
      const uint16_t* kt = k + i * kv.stride;
      float s = 0;
      for (int d = 0; d < head_dim; ++d) s += qh[d] * fp16_to_fp32(kt[d]);
      scores[t0 + i] = s * scale;
      max = std::fmax(max, scores[t0 + i]);
    }
  });
  double acc[1024];
  std::fill_n(acc, head_dim, 0.0);
  double sum = 0;
  for_each_kv_run(kv, n_kv, [&](int64_t t0, int64_t count, const uint16_t*, const uint16_t* v) {
    for (int64_t i = 0; i < count; ++i) {
      const uint16_t* vt = v + i * kv.stride;
      const double p = std::exp(static_cast<double>(scores[t0 + i]) - max);
      sum += p;
      for (int d = 0; d < head_dim; ++d) acc[d] += p * fp16_to_fp32(vt[d]);
    }
  });
  for (int d = 0; d < head_dim; ++d) out[d] = static_cast<float>(acc[d] / sum);
}

void attend_group(const float* const* q, int n_q, const int64_t* n_kv, const KvView& kv, int head_dim, float scale,
                  float* scores, float* const* out) {
  // The specification: each query on its own.
  for (int i = 0; i < n_q; ++i) attend_head(q[i], kv, n_kv[i], head_dim, scale, scores, out[i]);
}

}  // namespace osprey::kernels
