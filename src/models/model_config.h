// Hyperparameters of a model, read from GGUF metadata. One field list drives
// parsing, validation and printing, so a new field is one line. What varies
// by layer (sliding window or global attention, rope base) is kept per layer,
// filled in by the model's family (models/family.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "formats/gguf.h"
#include "kernels/ops.h"
#include "osprey/status.h"

namespace osprey {

struct Family;

// X(type, member, gguf key suffix after "<arch>.", required, default)
#define OSPREY_MODEL_CONFIG_FIELDS(X)                                         \
  X(int64_t, n_ctx_train, "context_length", true, 0)                          \
  X(int64_t, n_embd, "embedding_length", true, 0)                             \
  X(int64_t, n_layer, "block_count", true, 0)                                 \
  X(int64_t, n_ff, "feed_forward_length", true, 0)                            \
  X(int64_t, n_head, "attention.head_count", true, 0)                         \
  X(int64_t, n_head_kv, "attention.head_count_kv", false, 0)                  \
  X(int64_t, head_dim, "attention.key_length", false, 0)                      \
  X(int64_t, head_dim_v, "attention.value_length", false, 0)                  \
  X(int64_t, rope_dim, "rope.dimension_count", false, 0)                      \
  X(double, rope_freq_base, "rope.freq_base", false, 10000.0)                 \
  X(double, rope_scale_linear, "rope.scaling.factor", false, 1.0)             \
  X(double, rope_attn_factor, "rope.scaling.attn_factor", false, 1.0)         \
  X(int64_t, n_ctx_orig, "rope.scaling.original_context_length", false, 0)    \
  X(double, yarn_beta_fast, "rope.scaling.yarn_beta_fast", false, 32.0)       \
  X(double, yarn_beta_slow, "rope.scaling.yarn_beta_slow", false, 1.0)        \
  X(double, norm_eps, "attention.layer_norm_rms_epsilon", false, 1e-5)        \
  X(double, ln_eps, "attention.layer_norm_epsilon", false, 1e-12)             \
  X(int64_t, n_swa, "attention.sliding_window", false, 0)                     \
  X(double, attn_softcap, "attn_logit_softcapping", false, 0.0)               \
  X(double, final_softcap, "final_logit_softcapping", false, 0.0)             \
  X(int64_t, n_expert, "expert_count", false, 0)                              \
  X(int64_t, n_expert_used, "expert_used_count", false, 0)                    \
  X(int64_t, n_ff_exp, "expert_feed_forward_length", false, 0)                \
  X(int64_t, n_vocab, "vocab_size", false, 0)

// What one layer does differently from the others.
struct LayerConfig {
  int64_t window = 0;       // 0: attends to every earlier position; else to the last `window` (itself included)
  double rope_base = 0;     // rotary base frequency
  double rope_scale = 1.0;  // linear position scaling (positions are divided by it)
  bool moe = false;         // a mixture-of-experts feed-forward block instead of a dense one
};

// How a sequence's hidden states become one embedding (GGUF pooling_type,
// numbered as llama.cpp writes it).
enum class Pooling {
  kNone = 0,  // no pooling in the file: a decoder's last token
  kMean = 1,  // the average over every token (BERT, MiniLM)
  kCls = 2,   // the first token's (BGE)
  kLast = 3,  // the last token's (Qwen3-Embedding, e5-mistral)
  kRank = 4,  // a reranker's classification head on the first token
};

// "mean", "first-token", "last-token" or "rank".
const char* pooling_name(Pooling p);

// How a mixture-of-experts router turns its logits into expert weights.
enum class Gating {
  kSoftmax,         // softmax over all experts, then the top k (Mixtral, Qwen3-MoE, OLMoE)
  kSoftmaxOfTopK,   // the top k logits, then a softmax over those alone (gpt-oss)
};

// YaRN's blend, worked out once from the file (kernels::RopeParams).
struct Yarn {
  double ext_factor = 0;  // 0: no YaRN
  double low = 0, high = 0;
};

struct ModelConfig {
  std::string arch;  // general.architecture
  std::string name;  // general.name, if any
  const Family* family = nullptr;
#define OSPREY_DECLARE_FIELD(type, member, key, required, def) type member = def;
  OSPREY_MODEL_CONFIG_FIELDS(OSPREY_DECLARE_FIELD)
#undef OSPREY_DECLARE_FIELD
  std::string rope_scaling_type = "none";
  kernels::RopeStyle rope_style = kernels::RopeStyle::kInterleaved;

  // Set by the family.
  kernels::Activation activation = kernels::Activation::kSilu;
  double embd_scale = 1.0;  // the looked-up embedding is multiplied by it (Gemma: sqrt(n_embd))
  double attn_scale = 0;    // scores are q.k * attn_scale (default 1/sqrt(head_dim))
  Gating gating = Gating::kSoftmax;
  Yarn yarn;
  bool renormalize_experts = false;  // the k selected weights are scaled to sum to 1
  // Encoders (BERT) attend both ways, over the whole input at once; decoders
  // see only earlier positions (GGUF attention.causal).
  bool causal = true;
  Pooling pooling = Pooling::kNone;  // as the file asks; kNone pools the last token
  // Encoders add a learned position row to each token and use LayerNorm
  // (with its bias, ln_eps) after each residual add instead of RMS pre-norms.
  bool post_layer_norm = false;
  int64_t n_cls_out = 0;      // rerankers: scores per input (classifier.output_labels), 1 when unnamed
  int64_t n_token_types = 0;  // encoders: rows of token_types.weight (tokenizer.ggml.token_type_count)
  std::vector<LayerConfig> layers;

  // Reads and validates every field; defaults derived fields (head counts,
  // head size) the way the format's writers intend, then lets the family
  // fill in what it decides.
  static Expected<ModelConfig> from_gguf(const GgufFile& file);

  // "name = value" lines, in field-list order, then the layer structure.
  std::vector<std::pair<std::string, std::string>> describe() const;
  // One line: how many layers attend globally and how many through a window.
  std::string layer_summary() const;
};

// The architecture names osprey runs, for error messages and --help.
const std::vector<std::string>& supported_architectures();

}  // namespace osprey
