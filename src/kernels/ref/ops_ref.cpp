// Scalar definitions of the elementwise kernels. They are the specification
// that faster variants are tested against.
#include <algorithm>
#include <cmath>

#include "core/fp16.h"
#include "osprey/status.h"
#include "kernels/kv_row.h"
#include "kernels/ops.h"

namespace osprey::kernels {

void rmsnorm(float* out, const float* x, const float* w, int64_t n, float eps) {
  double ss = 0;  // double: a 4096-wide sum of squares loses bits in float
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float scale = static_cast<float>(1.0 / std::sqrt(ss / n + eps));
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * w[i];
}

void layernorm(float* out, const float* x, const float* w, const float* b, int64_t n, float eps) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += x[i];
  const double mean = sum / static_cast<double>(n);
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += (x[i] - mean) * (x[i] - mean);
  const double inv = 1.0 / std::sqrt(ss / static_cast<double>(n) + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>((x[i] - mean) * inv) * w[i] + b[i];
}

void gelu_erf(float* x, int64_t n) {
  // erfc(-x / sqrt 2) rather than 1 + erf(x / sqrt 2), which cancels to 0 for x below about -5.
  for (int64_t i = 0; i < n; ++i) x[i] = 0.5f * x[i] * std::erfc(x[i] * -0.70710678118654752f);
}

void silu_mul(float* out, const float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void gelu_mul(float* out, const float* gate, const float* up, int64_t n) {
  // g/2 * (1 + tanh(u)) = g * sigmoid(2u): one exponential, and no
  // cancellation for large negative g.
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    const float u2 = 1.5957691216057308f * (g + 0.044715f * g * g * g);  // 2 * sqrt(2/pi) * (...)
    out[i] = g / (1.0f + std::exp(-u2)) * up[i];
  }
}

void swiglu_oai_mul(float* out, const float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = std::fmin(gate[i], 7.0f);
    const float u = std::fmax(std::fmin(up[i], 7.0f), -7.0f);
    out[i] = g / (1.0f + std::exp(-1.702f * g)) * (u + 1.0f);
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

void low_rank_update(float* y, const float* x, const float* a, const float* bt, int64_t r, int64_t n_in,
                     int64_t n_out, float s, float* mid) {
  // 16 running sums in a fixed order: the compiler makes vectors of them,
  // and the result does not depend on anything but the inputs.
  constexpr int64_t kLanes = 16;
  for (int64_t j = 0; j < r; ++j) {
    const float* row = a + j * n_in;
    float acc[kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= n_in; i += kLanes)
      for (int64_t l = 0; l < kLanes; ++l) acc[l] += row[i + l] * x[i + l];
    float sum = 0;
    for (; i < n_in; ++i) sum += row[i] * x[i];
    for (int64_t l = 0; l < kLanes; ++l) sum += acc[l];
    mid[j] = s * sum;
  }
  for (int64_t j = 0; j < r; ++j) {
    const float m = mid[j];
    const float* col = bt + j * n_out;
    for (int64_t o = 0; o < n_out; ++o) y[o] += m * col[o];
  }
}

void rope_cos_sin(int64_t pos, const RopeParams& p, float* cs) {
  const int half = p.rope_dim / 2;
  float mscale = p.attn_factor;
  if (p.yarn_ext > 0) mscale *= 1.0f + 0.1f * std::log(p.linear_scale);
  for (int i = 0; i < half; ++i) {
    double extrap = static_cast<double>(pos) * std::pow(static_cast<double>(p.freq_base), -2.0 * i / p.rope_dim);
    if (p.freq_factors != nullptr) extrap /= p.freq_factors[i];
    double theta = extrap / p.linear_scale;
    if (p.yarn_ext > 0) {
      const double y = (i - p.yarn_low) / std::max(0.001, static_cast<double>(p.yarn_high - p.yarn_low));
      const double mix = (1.0 - std::clamp(y, 0.0, 1.0)) * p.yarn_ext;
      theta = theta * (1 - mix) + extrap * mix;
    }
    cs[2 * i] = static_cast<float>(std::cos(theta)) * mscale;
    cs[2 * i + 1] = static_cast<float>(std::sin(theta)) * mscale;
  }
}

void rope(float* x, int n_heads, int head_dim, int64_t pos, const RopeParams& p) {
  const int half = p.rope_dim / 2;
  float cs[2 * 1024];
  OSPREY_CHECK(half <= 1024);  // ModelConfig rejects larger heads
  rope_cos_sin(pos, p, cs);
  for (int i = 0; i < half; ++i) {
    const float c = cs[2 * i], s = cs[2 * i + 1];
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

void attend_one(const float* q, const KvView& kv, KvSpan span, int head_dim, const AttendParams& p, float* scores,
                float* out) {
  // The query is rounded to fp16 to meet the fp16 keys, as an fp16 KV cache
  // computes it (llama.cpp too); everything after is plain softmax, summed in
  // double. Fast kernels reorder it (tiles, an online softmax) and must agree
  // to rounding.
  float qh[1024];
  OSPREY_CHECK(head_dim <= 1024);  // ModelConfig rejects larger heads
  for (int d = 0; d < head_dim; ++d) qh[d] = fp16_to_fp32(fp32_to_fp16(q[d]));
  const float sink = p.sinks != nullptr ? p.sinks[0] : -INFINITY;
  float max = sink;
  for (int64_t t = span.begin; t < span.end; ++t) {
    float kt[1024];
    decode_kv_row(kv.k_type, kv.k + kv_storage_row(kv, t) * kv.k_stride, kt, head_dim);
    float s = 0;
    for (int d = 0; d < head_dim; ++d) s += qh[d] * kt[d];
    s *= p.scale;
    if (p.softcap > 0) s = p.softcap * std::tanh(s / p.softcap);
    scores[t] = s;
    max = std::fmax(max, s);
  }
  double acc[1024];
  std::fill_n(acc, head_dim, 0.0);
  double sum = std::isinf(sink) ? 0.0 : std::exp(static_cast<double>(sink) - max);
  for (int64_t t = span.begin; t < span.end; ++t) {
    float vt[1024];
    decode_kv_row(kv.v_type, kv.v + kv_storage_row(kv, t) * kv.v_stride, vt, head_dim);
    const double w = std::exp(static_cast<double>(scores[t]) - max);
    sum += w;
    for (int d = 0; d < head_dim; ++d) acc[d] += w * vt[d];
  }
  for (int d = 0; d < head_dim; ++d) out[d] = sum > 0 ? static_cast<float>(acc[d] / sum) : 0.0f;
}

void attend_group(const float* const* q, int n_q, const KvSpan* spans, const KvView& kv, int head_dim,
                  const AttendParams& p, float* scores, float* const* out) {
  // The specification: each query on its own.
  for (int i = 0; i < n_q; ++i) {
    AttendParams pi = p;
    if (p.sinks != nullptr) pi.sinks = p.sinks + i;
    attend_one(q[i], kv, spans[i], head_dim, pi, scores, out[i]);
  }
}

}  // namespace osprey::kernels
