// CPU kernels used by the model builders. Every kernel here has a plain
// scalar definition in ref/; faster per-ISA variants must agree with it.
// Shapes are given in elements; rows are contiguous unless a stride is named.
#pragma once

#include <cstdint>

namespace osprey::kernels {

// out[i] = x[i] / rms(x) * w[i], rms over n elements. out may alias x.
void rmsnorm(float* out, const float* x, const float* w, int64_t n, float eps);

// out[i] = silu(gate[i]) * up[i]. out may alias either input.
void silu_mul(float* out, const float* gate, const float* up, int64_t n);

// In-place softmax over n values.
void softmax(float* x, int64_t n);

// x[i] += y[i]
void add(float* x, const float* y, int64_t n);

enum class RopeStyle {
  kInterleaved,  // rotates pairs (2i, 2i+1): GGUF llama, mistral
  kNeox,         // rotates pairs (i, i + d/2): qwen2, phi3, gemma
};

// Rotary embedding applied in place to `n_heads` heads of `head_dim` values
// laid out back to back. Only the first rope_dim values of each head rotate.
// theta_i = pos * base^(-2i/rope_dim) / freq_factor[i] / linear_scale.
// freq_factors may be null (all 1).
struct RopeParams {
  RopeStyle style = RopeStyle::kInterleaved;
  int rope_dim = 0;
  float freq_base = 10000.0f;
  float linear_scale = 1.0f;
  const float* freq_factors = nullptr;  // [rope_dim / 2]
};
void rope(float* x, int n_heads, int head_dim, int64_t pos, const RopeParams& p);

// Causal attention of one query head over one KV head stored as fp16 rows.
//   q:      [head_dim]
//   k, v:   row t at k + t * kv_stride, [head_dim] each, t in [0, n_kv)
//   scores: scratch of n_kv floats
//   out:    [head_dim]
void attend_head(const float* q, const uint16_t* k, const uint16_t* v, int64_t kv_stride, int64_t n_kv,
                 int head_dim, float scale, float* scores, float* out);

}  // namespace osprey::kernels
