// The tensors of a model, bound by name from a GGUF file through its
// family's tensor list (models/tensor_list.h) and checked against the
// config. Matrices stay in the file mapping unless their kernel wants its own
// layout: those are repacked once at load into one buffer, and the file's
// pages for them are released, so memory holds each weight once. Small
// vectors (norms, biases) are converted to f32 once.
//
// Every optional piece is empty (a vector) or has no data (a matrix) when
// the family or the file leaves it out, and the blocks skip it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/page_buffer.h"
#include "core/thread_pool.h"
#include "formats/gguf.h"
#include "kernels/matmul.h"
#include "models/model_config.h"
#include "models/tensor_list.h"

namespace osprey {

struct AttentionWeights {
  std::vector<float> norm;               // [n_embd] pre-norm
  kernels::WeightMatrix wq, wk, wv, wo;  // [n_head*hd, n_embd], [n_kv*hd, n_embd] x2, [n_embd, n_head*hd]
  std::vector<float> bq, bk, bv;         // QKV biases (qwen2)
  std::vector<float> q_norm, k_norm;     // RMS norms of Q and K: [head_dim] per head (qwen3, gemma3), or
                                         // [n_head*hd] / [n_kv*hd] over the whole row (olmoe)
  std::vector<float> post_norm;          // [n_embd] norm of the block's output before the residual add (gemma)
  std::vector<float> bo;                 // [n_embd] output bias (gpt-oss)
  std::vector<float> sinks;              // [n_head] attention sink logits (gpt-oss)
};

struct FfnWeights {
  std::vector<float> norm;                   // [n_embd] pre-norm
  kernels::WeightMatrix gate, up, down;      // [n_ff, n_embd] x2, [n_embd, n_ff]; an encoder's FFN has no gate
  std::vector<float> post_norm;              // [n_embd] (gemma)
  std::vector<float> b_up, b_down;           // [n_ff], [n_embd] biases (bert)
};

// LayerNorm's scale and shift, [n_embd] each (BERT-style encoders).
struct LayerNormWeights {
  std::vector<float> weight, bias;
};

// A mixture of experts; its pre-norm is FfnWeights::norm.
struct MoeWeights {
  kernels::WeightMatrix router;                       // [n_expert, n_embd]
  std::vector<kernels::WeightMatrix> gate, up, down;  // per expert: [n_ff_exp, n_embd] x2, [n_embd, n_ff_exp]
  // Biases (gpt-oss), or empty: the router's [n_expert], each expert's
  // [n_expert, n_ff_exp] x2 and [n_expert, n_embd].
  std::vector<float> router_bias, gate_bias, up_bias, down_bias;
};

struct LayerWeights {
  AttentionWeights attn;
  FfnWeights ffn;
  MoeWeights moe;
  // Post-norm encoders: LayerNorm after each residual add.
  LayerNormWeights attn_out_norm, out_norm;
};

struct ModelWeights {
  kernels::WeightMatrix tok_embd;  // [n_vocab, n_embd]; rows are looked up, not multiplied
  std::vector<float> output_norm;  // [n_embd]
  kernels::WeightMatrix output;    // [n_vocab, n_embd]; the embedding when tied
  bool tied_output = false;
  // Encoders: a learned row per position and the first token type's row,
  // added to each token's embedding, then LayerNorm.
  std::vector<float> pos_embd;         // [n_ctx_train, n_embd]
  std::vector<float> token_types;      // [n_token_types, n_embd]
  LayerNormWeights embd_norm;
  // A reranker's classification head on the first token (pooling rank):
  // score = cls_out . tanh(cls . x + cls_b) + cls_out_b.
  kernels::WeightMatrix cls, cls_out;   // [n_embd, n_embd], [n_cls_out, n_embd]
  std::vector<float> cls_b, cls_out_b;
  std::vector<float> rope_freq_factors;  // [rope_dim/2] Llama 3's, empty unless the file has them
  std::vector<float> rope_factors_long, rope_factors_short;  // [rope_dim/2] LongRoPE's (phi3), or empty
  std::vector<LayerWeights> layers;
  std::vector<TensorSpec> tensors;     // the family's list, as bound
  std::shared_ptr<PageBuffer> packed;  // the repacked matrices, if any
  int64_t n_packed = 0;                // how many matrices were repacked

  // Matrices get the fastest kernels of `isa`; `pool` repacks those that need
  // it. With repack_matrices false every matrix stays as the file stores it (mapped,
  // no copy): a GPU device holds its own copy, and the host only looks up
  // embedding rows. With f16_as_bf16, F16 matrices that are repacked become
  // BF16 in the copy (ModelOptions::f16_as_bf16).
  static Expected<ModelWeights> bind(const GgufFile& file, const ModelConfig& config, kernels::Isa isa,
                                     ThreadPool& pool, bool repack_matrices = true, bool f16_as_bf16 = false);
  int64_t n_f16_as_bf16 = 0;  // how many F16 matrices run as BF16

  // Bytes of weights one token's forward pass reads: every matrix it
  // multiplies, plus one embedding row.
  double bytes_per_token() const;
};

// token_embd, output_norm and output (tied to the embedding when the file
// has no output.weight): the ends every family shares.
void list_embedding_and_head(const ModelConfig& c, ModelWeights& w, TensorList& list);

// Layer i's attention projections as every family without a fused QKV has
// them: attn_norm, attn_q/k/v and attn_output. Families list their extras
// (biases, Q/K norms, post-norms, sinks) beside it.
void list_attention(const ModelConfig& c, int64_t i, LayerWeights& L, TensorList& list);

// Layer i's feed-forward block: ffn_norm, then dense ffn_gate/up/down, or
// for a mixture the router (ffn_gate_inp) and the stacked experts
// (ffn_{gate,up,down}_exps), as llama.cpp's converter writes them.
void list_feed_forward(const ModelConfig& c, int64_t i, LayerWeights& L, TensorList& list);

// The family's tensor list for `c` without a file (inspect's estimates).
std::vector<TensorSpec> plan_tensors(const ModelConfig& c);

}  // namespace osprey
