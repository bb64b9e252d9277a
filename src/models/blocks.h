// The shared blocks every family's forward pass is written in:
//   embed        x = scale * embedding[token]
//   attention    x += post_norm(Wo . attend(rope(qk_norm(Wq.norm(x) + bq)), rope(qk_norm(Wk.norm(x) + bk)), Wv.norm(x) + bv))
//   feed_forward x += post_norm(Wdown . (act(Wgate.norm(x)) * Wup.norm(x)))
//   moe_feed_forward  x += sum over the router's top k experts e of w_e * expert_e(norm(x))
//   output_head  logits = softcap(Wout . norm(x)), for the rows that want them
// Optional pieces (biases, Q/K norms, post-norms, soft-caps, sliding
// windows) follow from the weights present and the config: an absent piece
// costs nothing. A pass holds rows of one or more sequences; every row is
// computed the same way whatever else is in the batch.
#pragma once

#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "core/trace.h"
#include "kernels/dispatch.h"
#include "models/activation_stats.h"
#include "models/kv_cache.h"
#include "models/lora.h"
#include "models/model_config.h"
#include "models/model_weights.h"

namespace osprey {

// Activation buffers for up to n_batch tokens, sized once at load. Shapes per token row.
struct Workspace {
  std::vector<float> x;       // [n_batch, n_embd] residual stream
  std::vector<float> q;       // [n_batch, n_head * head_dim]
  std::vector<float> k, v;    // [n_batch, n_head_kv * head_dim]
  std::vector<float> att;     // [n_batch, n_head * head_dim]
  std::vector<float> gate, up;  // [n_batch, n_ff]
  std::vector<float> proj;    // [n_batch, n_embd] output of wo / w_down
  std::vector<float> logits;  // [n_seq_max, n_vocab]
  std::vector<int32_t> tokens;    // [n_batch] token of each row
  std::vector<int32_t> tok_seq;   // [n_batch] sequence of each row
  std::vector<int64_t> tok_pos;   // [n_batch] position of each row
  std::vector<int64_t> out_rows;  // rows whose logits are wanted
  // Embeddings: each pooled row adds weight * its final hidden state to
  // embd row `dest` (a mean spreads 1/n over an input's rows).
  struct PoolRow {
    int64_t row;
    int64_t dest;
    float weight;
  };
  std::vector<PoolRow> pool_rows;
  std::vector<float> embd;    // [n_seq_max, n_embd] pooled embeddings
  std::vector<int64_t> tok_end;  // [n_batch] encoders: the end of the row's input (attention sees all of it)
  std::vector<float> scores;  // [n_threads, att_tokens * group, n_ctx] attention scratch
  std::vector<int64_t> att_runs;  // [n_batch + 1] first row of each attention run
  std::vector<uint8_t> act;   // encoded activations for matmul
  std::vector<uint8_t> embd_row;  // [row_bytes of token_embd] a looked-up row in the file's layout
  // Mixture of experts: k = n_expert_used slots per token, grouped by expert.
  struct Moe {
    std::vector<float> h;             // [n_batch, n_embd] normalised input
    std::vector<float> router;        // [n_batch, n_expert] router logits, then probabilities
    std::vector<int32_t> expert;      // [n_batch, k] chosen experts, best first
    std::vector<float> weight;        // [n_batch, k] their weights
    std::vector<int32_t> slot;        // [n_batch, k] where each choice's rows are, in expert order
    std::vector<int32_t> slot_token;  // [n_batch * k] the token of each slot
    std::vector<int32_t> slot_expert; // [n_batch * k] the expert of each slot
    std::vector<int64_t> first_slot;  // [n_expert + 1] each expert's first slot
    std::vector<uint8_t> act_gate, act_up, act_down;  // encoded rows per slot
    std::vector<float> gate, up;      // [n_batch * k, n_ff_exp]
    std::vector<float> out;           // [n_batch * k, n_embd]
    std::vector<kernels::MatmulJob> jobs;  // [2 * n_expert]
  } moe;
  // LoRA adapters: the rows of a pass that run an adapter, gathered.
  struct Lora {
    std::vector<int64_t> rows;   // [n_batch] which rows of the product
    std::vector<float> scale;    // [n_batch] their scale * alpha / r
    std::vector<float> in;       // [n_batch, widest n_in] their inputs, normalised
    std::vector<float> mid;      // [n_batch, largest r] A x
  } lora;
};

// Everything one forward pass reads and writes.
struct Pass {
  const ModelConfig& c;
  const ModelWeights& w;
  Workspace& ws;
  ThreadPool& pool;
  KvCache& cache;
  const std::vector<const int32_t*>& block_tables;  // [n_seq_max] each sequence's KV blocks
  // Sliding-window layers with a pool of their own (window_cache.n_blocks() > 0) use it and these tables.
  KvCache& window_cache;
  const std::vector<const int32_t*>& window_tables;
  const std::vector<int32_t>& layer_slot;  // each layer's index within its pool
  kernels::AttendGroupFn attend_group;
  kernels::AttendHeads attend_heads;  // several KV heads per call, where the level has it
  kernels::GatedFn gated;
  kernels::UnaryFn gelu_erf;  // an encoder's ungated activation
  kernels::LowRankFn low_rank;  // LoRA updates
  const float* rope_factors;  // per-frequency divisors, or null
  int64_t att_tokens;         // tokens of one sequence per attention task
  int64_t n_ctx;
  Tracer* tracer;
  ActivationStats* stats;  // osprey imatrix: each matrix's inputs are recorded here when set
  // LoRA adapters (null or empty: none) and each sequence's scale for each,
  // [n_seq_max][adapters->size()]; a zero scale leaves the sequence's rows alone.
  const std::vector<LoraAdapter>* adapters;
  const float* lora_scales;
  int64_t n;       // rows; tokens are ws.tokens[0, n)
  int64_t n_out;   // rows that want logits: ws.out_rows[0, n_out)
  float* logits;   // [n_out, n_vocab]
};

// The pre-norm decoder every family osprey runs is built as: embed, then per
// layer attention and the feed-forward block (dense, or a mixture where the
// layer has experts), then the output head. A family whose pass differs
// writes its own from the blocks below.
void decoder_forward(Pass& p);

void embed(Pass& p);
void attention(Pass& p, int64_t layer);
// The attention block's output, left in ws.proj without the residual add
// (post-norm encoders add and then normalise).
void attention_output(Pass& p, int64_t layer);
// x[t] = LayerNorm(x[t]) for every row of the pass.
void layer_norm_rows(Pass& p, const LayerNormWeights& norm);
void feed_forward(Pass& p, int64_t layer);
void moe_feed_forward(Pass& p, int64_t layer);
void output_head(Pass& p);
// y += s * B (A x) for each adapter that changes `m`, on the rows whose
// sequence runs it with a scale s != 0 (other rows are not touched, so a
// zero scale gives the base model's bits). x and y are the product's input
// and output, [n, m.n_in] and [n, m.n_out]; with `norm`, x is normalised
// on the way in as the fused norm products do. `row_of`: the pass row each
// of the n rows is (null: row t is row t), for the output head's packed rows.
void apply_adapters(Pass& p, const kernels::WeightMatrix& m, const float* x, const std::vector<float>* norm,
                    int64_t n, float* y, const int64_t* row_of = nullptr);
// Sizes Workspace::lora for the adapters' matrices.
void size_lora_workspace(Workspace& ws, const std::vector<LoraAdapter>& adapters, int64_t n_batch);

// Adds the pass's pooled rows (ws.pool_rows) into ws.embd; decoders pool
// their final hidden state after output_norm (`rms_norm`), encoders as it is.
void pool_embeddings(Pass& p, const std::vector<float>* rms_norm);

// Scratch the blocks' matrix products need for n_batch rows (Workspace::act).
int64_t blocks_scratch_bytes(const ModelWeights& w, int64_t n_batch, int n_seq_max, int n_threads);
// Sizes the mixture-of-experts buffers, when the model has experts.
void size_moe_workspace(Workspace& ws, const ModelConfig& c, const ModelWeights& w, int64_t n_batch);

}  // namespace osprey
