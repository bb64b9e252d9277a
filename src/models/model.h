// A loaded model ready to evaluate tokens: the runtime around a family's
// forward pass. It holds the mapped file, the config and weights, a paged KV
// cache shared by up to n_seq_max sequences, and all activation buffers,
// sized once at load so that evaluation allocates nothing; it packs the
// tokens of a batch into passes and hands each to the family
// (models/family.h), which computes it from the shared blocks.
//
// Sequences are numbered slots [0, n_seq_max). One forward pass can carry
// tokens of several sequences (continuous batching); every row is computed
// the same way whatever else is in the batch, so a sequence's logits do not
// depend on its neighbours.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "core/trace.h"
#include "formats/gguf.h"
#include "kernels/dispatch.h"
#include "models/blocks.h"
#include "models/device_pass.h"
#include "models/kv_cache.h"
#include "models/model_config.h"
#include "models/model_weights.h"

namespace osprey {

struct ModelOptions {
  int n_threads = 0;     // 0: all available cores
  std::optional<kernels::Isa> isa;  // kernel level; default: the best this CPU runs
  int64_t n_ctx = 0;     // 0: the training context, capped at 4096
  int64_t n_batch = 64;  // tokens evaluated per forward pass
  int n_seq_max = 1;     // sequences held at once
  int64_t kv_blocks = 0;  // KV pool size in blocks; 0: room for n_seq_max full contexts
  bool prefix_cache = false;  // publish full blocks for reuse by later sequences
  // Sliding-window layers keep only their window (plus one pass) of keys and
  // values, in a pool of their own. With this set they keep every position,
  // as global layers do, which a prefix cache needs to reuse their blocks.
  bool full_window_cache = false;
  // How keys and values are stored (f16, bf16, f32, q8_0, q5_1, q5_0, q4_1,
  // q4_0): q8_0 halves the cache for a small error, q4_0 about quarters it.
  DType cache_type_k = DType::kF16, cache_type_v = DType::kF16;
  // With kv_blocks 0: size the pool to this many bytes instead (serve's
  // --kv-size 2GiB), so that a smaller cache type holds more positions.
  int64_t kv_bytes_budget = 0;
  // LoRA adapters (--lora FILE[:SCALE]), applied beside the base weights;
  // every sequence starts with these scales (seq_set_lora changes them).
  std::vector<LoraSpec> lora;
  // Where the forward pass runs: "cpu" (the CPU kernels) or a GPU back end
  // ("vulkan"; backends/device.h), which holds the weights and KV cache.
  std::string device = "cpu";
  // F16 matrices are rounded to BF16 once, at load, and run on the BF16
  // kernels, which with AVX512_BF16 do two products per lane where F16 does
  // one. Each weight loses three mantissa bits, so this is opt-in (--f16-as-bf16);
  // off, F16 stays exact. CPU only; matrices no BF16 kernel repacks stay F16.
  bool f16_as_bf16 = false;
};

// `n` tokens appended to sequence `seq`; `logits`: return the logits after
// its last token; `all_logits`: after each of its tokens (perplexity scores
// every position), n rows in place of one. `embed`: these tokens end an
// input whose embedding is wanted (Model::embeddings), pooled as the model
// says; mean and first-token pooling need the whole input in this item.
struct BatchItem {
  int seq = 0;
  const int32_t* tokens = nullptr;
  int64_t n = 0;
  bool logits = true;
  bool all_logits = false;
  bool embed = false;
};

class Model {
 public:
  static Expected<std::unique_ptr<Model>> load(const std::string& path, const ModelOptions& options);
  // Builds a model from an already-parsed file (tests, tools).
  static Expected<std::unique_ptr<Model>> from_file(GgufFile file, const ModelOptions& options);

  const ModelConfig& config() const { return config_; }
  const GgufFile& file() const { return file_; }
  const ModelWeights& weights() const { return weights_; }
  int64_t n_ctx() const { return n_ctx_; }  // per sequence
  int n_threads() const { return pool_->size(); }
  int n_seq_max() const { return static_cast<int>(seqs_.size()); }
  const KvCache& kv() const { return cache_; }
  // The sliding-window layers' own pool (empty when there is none: no window
  // layers, or full_window_cache).
  const KvCache& window_kv() const { return window_cache_; }
  // Bytes of keys and values the two pools hold (on the device, when it has them).
  int64_t kv_bytes() const;
  // "cpu", or the device and its adapter: "vulkan (llvmpipe (LLVM 15.0.6, 256 bits))".
  std::string device_name() const { return device_ ? device_->name() : "cpu"; }
  // Bytes the device holds for this model (0 on the CPU).
  int64_t device_bytes() const { return device_ ? device_->device_bytes() : 0; }
  // The device pass (null on the CPU): bench times its operations through it.
  DevicePass* device_pass() { return device_.get(); }
  const DevicePass* device_pass() const { return device_.get(); }

  // Sequence 0, for single-stream use (run, bench, chat).
  // Appends tokens and returns the logits [n_vocab] after the last one.
  // Fails, leaving the sequence unchanged, if a token id is out of range or
  // the context would overflow.
  Expected<const float*> eval(const int32_t* tokens, int64_t n);
  int64_t n_past() const { return seq_n_past(0); }
  void reset() { seq_clear(0); }
  void truncate(int64_t n) { seq_truncate(0, n); }  // forgets positions >= n

  // Evaluates the items in as few forward passes as n_batch allows and
  // returns the logits of the items that asked, in item order, as rows of
  // n_vocab. Checks everything first: on error no sequence has changed.
  Expected<const float*> eval_batch(const BatchItem* items, size_t count);
  // After eval_batch: the embeddings of the items that asked, in item
  // order, as rows of n_embd, pooled but not normalised.
  const float* embeddings() const { return ws_.embd.data(); }
  // False for an encoder (BERT), which has no output head: it embeds only.
  bool can_generate() const { return weights_.output.data != nullptr; }

  // The loaded adapters, in --lora order (their ids).
  const std::vector<LoraAdapter>& adapters() const { return adapters_; }
  // Each adapter's scale for `seq` (adapters().size() values). Set on an
  // empty sequence only: its KV cache would otherwise mix two models.
  Status seq_set_lora(int seq, const float* scales);
  const float* seq_lora(int seq) const { return lora_scales_.data() + seq * adapters_.size(); }

  // Records one span per operation of every pass while set (null: off).
  void set_tracer(Tracer* tracer) { tracer_ = tracer; }
  // Records every weight matrix's inputs while set (null: off); osprey imatrix.
  void set_activation_stats(ActivationStats* stats) { stats_ = stats; }

  int64_t seq_n_past(int seq) const { return seqs_[seq].n_past; }
  void seq_clear(int seq);
  // Forgets positions >= n. When sliding-window layers have already dropped
  // keys that position n would need, the sequence is cleared instead: read
  // seq_n_past() for what it holds.
  void seq_truncate(int seq, int64_t n);
  // With the prefix cache: attaches published blocks holding a prefix of
  // `tokens` to an empty sequence, leaving at least the last token to
  // evaluate. Returns the positions now held.
  int64_t seq_attach_prefix(int seq, const int32_t* tokens, int64_t n);
  // Blocks the pool must supply for `n` more positions of `seq`.
  int64_t blocks_needed(int seq, int64_t n) const;

 private:
  struct Sequence {
    std::vector<int32_t> blocks;  // block of each kBlockSize positions
    std::vector<int32_t> window_blocks;  // the same for window layers; -1 where dropped
    int64_t window_kept = 0;      // first position the window layers still hold
    std::vector<int32_t> tokens;  // with the prefix cache: every token held
    int64_t n_past = 0;
    // Chain hash of the published full blocks. It starts from a hash of the
    // sequence's adapter scales, so that blocks are shared only between
    // sequences that ran the same adapters.
    uint64_t prefix_hash = 0;
    uint64_t hash_seed = 0;
    int64_t n_hashed = 0;         // positions covered by prefix_hash
  };

  Model() = default;
  // Rows [0, n) of the workspace: tokens with tok_seq/tok_pos set, KV blocks
  // in place; n <= n_batch. The family's forward pass leaves the wanted
  // rows' logits in `logits`.
  Status forward_batch(int64_t n, int64_t n_out, float* logits);
  Status grow_blocks(Sequence& s, int64_t n_positions);
  // Drops window-layer blocks that no query from position `next` on can see.
  void drop_out_of_window(Sequence& s, int64_t next);
  void publish_full_blocks(Sequence& s);

  GgufFile file_;
  ModelConfig config_;
  ModelWeights weights_;
  std::unique_ptr<ThreadPool> pool_;
  KvCache cache_;         // global layers (every layer without a window pool)
  KvCache window_cache_;  // sliding-window layers, when they keep only their window
  std::vector<int32_t> layer_slot_;  // each layer's index within its pool
  int64_t max_window_ = 0;           // the widest window of the window layers (0: none in their own pool)
  Workspace ws_;
  kernels::AttendGroupFn attend_group_ = nullptr;  // chosen with the matrix kernels
  kernels::AttendHeads attend_heads_;
  kernels::GatedFn gated_ = nullptr;
  kernels::UnaryFn gelu_erf_ = nullptr;
  kernels::LowRankFn low_rank_ = nullptr;
  const float* rope_factors_ = nullptr;            // the rope frequency factors in use, if any
  std::vector<const int32_t*> block_tables_, window_tables_;  // [n_seq_max] for each pass
  int64_t att_tokens_ = 1;  // tokens of one sequence per attention task
  Tracer* tracer_ = nullptr;
  ActivationStats* stats_ = nullptr;
  std::vector<LoraAdapter> adapters_;
  std::vector<float> lora_scales_;  // [n_seq_max][adapters_.size()]
  int64_t n_ctx_ = 0;
  int64_t n_batch_ = 0;
  bool prefix_cache_ = false;
  std::vector<Sequence> seqs_;
  std::unique_ptr<DevicePass> device_;  // null: the CPU runs the passes
};

}  // namespace osprey
