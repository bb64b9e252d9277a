// CPU kernels used by the model builders. Every kernel here has a plain
// scalar definition in ref/; faster per-ISA variants must agree with it.
// Shapes are given in elements; rows are contiguous unless a stride is named.
#pragma once

#include <algorithm>
#include <cstdint>

#include "core/dtype.h"

namespace osprey::kernels {

// out[i] = x[i] / rms(x) * w[i], rms over n elements. out may alias x.
void rmsnorm(float* out, const float* x, const float* w, int64_t n, float eps);

// LayerNorm: out[i] = (x[i] - mean(x)) / sqrt(var(x) + eps) * w[i] + b[i],
// over n elements (BERT-style encoders). out may alias x.
void layernorm(float* out, const float* x, const float* w, const float* b, int64_t n, float eps);

// x[i] = gelu(x[i]) in its exact form, x/2 * (1 + erf(x / sqrt 2)), as BERT
// was trained with (the tanh form differs by up to about 1e-3).
void gelu_erf(float* x, int64_t n);

// out[i] = silu(gate[i]) * up[i]. out may alias either input.
void silu_mul(float* out, const float* gate, const float* up, int64_t n);

// out[i] = gelu(gate[i]) * up[i], GELU in its tanh form (Gemma):
// gelu(g) = g/2 * (1 + tanh(sqrt(2/pi) * (g + 0.044715 g^3))). out may alias either input.
void gelu_mul(float* out, const float* gate, const float* up, int64_t n);

// gpt-oss's gate: g = min(gate, 7), u = clamp(up, -7, 7),
// out = g * sigmoid(1.702 g) * (u + 1). out may alias either input.
void swiglu_oai_mul(float* out, const float* gate, const float* up, int64_t n);

// The gate of a gated feed-forward block: silu (Llama, Qwen, Phi), gelu
// (Gemma) or gpt-oss's clamped swiglu.
enum class Activation { kSilu, kGelu, kSwigluOai };

// In-place softmax over n values.
void softmax(float* x, int64_t n);

// x[i] += y[i]
void add(float* x, const float* y, int64_t n);

// A low-rank update of one row (LoRA): y += s * B (A x), with A [r][n_in]
// and B given transposed, bt [r][n_out], so that both steps stream their
// matrix row by row. `mid` holds r floats.
void low_rank_update(float* y, const float* x, const float* a, const float* bt, int64_t r, int64_t n_in,
                     int64_t n_out, float s, float* mid);

enum class RopeStyle {
  kInterleaved,  // rotates pairs (2i, 2i+1): GGUF llama, mistral
  kNeox,         // rotates pairs (i, i + d/2): qwen2, phi3, gemma
};

// Rotary embedding applied in place to `n_heads` heads of `head_dim` values
// laid out back to back. Only the first rope_dim values of each head rotate.
// theta_i = pos * base^(-2i/rope_dim) / freq_factor[i] / linear_scale, and
// the rotated pair is multiplied by attn_factor. freq_factors may be null (all 1).
struct RopeParams {
  RopeStyle style = RopeStyle::kInterleaved;
  int rope_dim = 0;
  float freq_base = 10000.0f;
  float linear_scale = 1.0f;
  const float* freq_factors = nullptr;  // [rope_dim / 2]
  float attn_factor = 1.0f;  // scales the rotated values (LongRoPE's magnitude correction); 1 leaves them
  // YaRN (yarn_ext > 0): pairs below yarn_low keep their original angle
  // (theta), pairs above yarn_high take the interpolated one (theta /
  // linear_scale), and the pairs between blend linearly; the rotated values
  // are then scaled by attn_factor * (1 + 0.1 ln linear_scale).
  float yarn_ext = 0.0f;
  float yarn_low = 0.0f, yarn_high = 0.0f;
};
void rope(float* x, int n_heads, int head_dim, int64_t pos, const RopeParams& p);
// The (cos, sin) pairs rope rotates by at `pos`, scales included:
// cs[2i], cs[2i + 1] for pair i < rope_dim / 2 (the GPU back ends apply them).
void rope_cos_sin(int64_t pos, const RopeParams& p, float* cs);

// Where the keys and values of one KV head live. Positions come in blocks
// of `block_size` rows: position t is row blocks[t / block_size] *
// block_size + t % block_size of the storage, whose row r starts at byte
// k + r * k_stride (likewise v). A contiguous cache has blocks == nullptr.
// Rows are stored as k_type / v_type (kernels/kv_row.h); fp16 by default.
struct KvView {
  const uint8_t* k = nullptr;
  const uint8_t* v = nullptr;
  int64_t k_stride = 0, v_stride = 0;  // bytes
  DType k_type = DType::kF16, v_type = DType::kF16;
  const int32_t* blocks = nullptr;
  int64_t block_size = 0;

  // fp16 rows `stride` values apart.
  static KvView f16(const uint16_t* k, const uint16_t* v, int64_t stride, const int32_t* blocks = nullptr,
                    int64_t block_size = 0) {
    return {reinterpret_cast<const uint8_t*>(k), reinterpret_cast<const uint8_t*>(v), 2 * stride, 2 * stride,
            DType::kF16, DType::kF16, blocks, block_size};
  }
};

// The storage row of position t (see KvView).
inline int64_t kv_storage_row(const KvView& kv, int64_t t) {
  return kv.blocks == nullptr ? t : static_cast<int64_t>(kv.blocks[t / kv.block_size]) * kv.block_size + t % kv.block_size;
}

// Positions [begin, end) of the cache that one query sees. Causal attention
// ends just past the query's own position; a sliding window also begins
// late (Gemma's local layers, Mistral's window).
struct KvSpan {
  int64_t begin = 0, end = 0;
};

// How scores become weights. s = q.k * scale; with softcap > 0 it is then
// squashed to softcap * tanh(s / softcap) (Gemma 2). With sinks, query i's
// softmax denominator also counts e^sinks[i], a learned "attend to nothing"
// logit (gpt-oss), so its weights may sum to less than one.
struct AttendParams {
  float scale = 1.0f;
  float softcap = 0.0f;
  const float* sinks = nullptr;  // [n_q] or null
};

// Attention of one query head over positions `span` of one KV head:
// softmax(q.K * scale).V with q rounded to fp16 (to meet fp16 keys; the same
// whatever the cache type) and the rest in fp32 or wider, each K and V row
// decoded from its cache type first. The fast kernels are flash-style (tiles of
// positions, an online softmax) and leave `scores` untouched; they agree with
// this definition to rounding. A query that sees no position gets zeros.
//   q:      [head_dim]
//   scores: scratch of span.end floats
//   out:    [head_dim]
void attend_one(const float* q, const KvView& kv, KvSpan span, int head_dim, const AttendParams& p, float* scores,
                float* out);
// The common case: causal over [0, n_kv), plain scale.
inline void attend_head(const float* q, const KvView& kv, int64_t n_kv, int head_dim, float scale, float* scores,
                        float* out) {
  AttendParams p;
  p.scale = scale;
  attend_one(q, kv, KvSpan{0, n_kv}, head_dim, p, scores, out);
}

// Several queries over the same KV head at once: the heads of a
// grouped-query group, for one or more tokens of a sequence. Each K and V row
// is read once for all of them instead of once per query, which is what keeps
// long prompts from falling off a cliff. Query i sees spans[i] (and, with
// sinks, p.sinks[i]), and its result is bit for bit what it gets alone,
// whatever queries share the call.
//   q[i], out[i]: [head_dim] each, i < n_q <= kMaxGroupQueries
//   scores:       scratch of n_q * max(end) floats
constexpr int kMaxGroupQueries = 64;
void attend_group(const float* const* q, int n_q, const KvSpan* spans, const KvView& kv, int head_dim,
                  const AttendParams& p, float* scores, float* const* out);

// The queries of n_heads adjacent KV heads at once: kv views the first, and
// head h's part of a row starts kv_row_bytes(type, h * head_dim) bytes
// further (heads start on block boundaries). Queries are head-major, n_q /
// n_heads per head, and each gets bit for bit what attend_group gives it.
// This is for calls whose grouped-query group fills only part of a vector of
// queries (decode: one token, a group of 2 to 8): the heads share the vector,
// and a row's heads are read side by side. Only levels whose lanes outnumber
// a group have it (dispatch.h: attend_heads_kernel).

}  // namespace osprey::kernels
