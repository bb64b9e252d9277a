// A loaded model ready to evaluate tokens: the mapped file, its config and
// weights, a KV cache for one sequence and all activation buffers, sized
// once at load so that evaluation allocates nothing.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "formats/gguf.h"
#include "kernels/dispatch.h"
#include "models/kv_cache.h"
#include "models/model_config.h"
#include "models/model_weights.h"

namespace osprey {

struct ModelOptions {
  int n_threads = 0;     // 0: all available cores
  std::optional<kernels::Isa> isa;  // kernel level; default: the best this CPU runs
  int64_t n_ctx = 0;     // 0: the training context, capped at 4096
  int64_t n_batch = 64;  // prompt tokens evaluated per forward pass
};

// Activation buffers for up to n_batch tokens. Shapes per token row.
struct Workspace {
  std::vector<float> x;       // [n_batch, n_embd] residual stream
  std::vector<float> xn;      // [n_batch, n_embd] normalised input to a block
  std::vector<float> q;       // [n_batch, n_head * head_dim]
  std::vector<float> k, v;    // [n_batch, n_head_kv * head_dim]
  std::vector<float> att;     // [n_batch, n_head * head_dim]
  std::vector<float> gate, up;  // [n_batch, n_ff]
  std::vector<float> proj;    // [n_batch, n_embd] output of wo / w_down
  std::vector<float> logits;  // [n_vocab]
  std::vector<float> scores;  // [n_threads, n_ctx] attention scratch
  std::vector<uint8_t> act;   // encoded activations for matmul
};

class Model {
 public:
  static Expected<std::unique_ptr<Model>> load(const std::string& path, const ModelOptions& options);
  // Builds a model from an already-parsed file (tests, tools).
  static Expected<std::unique_ptr<Model>> from_file(GgufFile file, const ModelOptions& options);

  const ModelConfig& config() const { return config_; }
  const GgufFile& file() const { return file_; }
  const ModelWeights& weights() const { return weights_; }
  int64_t n_ctx() const { return n_ctx_; }
  int64_t n_past() const { return n_past_; }
  int n_threads() const { return pool_->size(); }

  // Appends tokens to the sequence and returns the logits [n_vocab] after the
  // last one. Fails, leaving the sequence unchanged, if a token id is out of
  // range or the context would overflow.
  Expected<const float*> eval(const int32_t* tokens, int64_t n);
  void reset() { n_past_ = 0; }
  // Forgets positions >= n (n <= n_past).
  void truncate(int64_t n);

 private:
  Model() = default;
  void forward_batch(const int32_t* tokens, int64_t n);  // n <= n_batch, fits the context
  void compute_logits();

  GgufFile file_;
  ModelConfig config_;
  ModelWeights weights_;
  std::unique_ptr<ThreadPool> pool_;
  KvCache cache_;
  Workspace ws_;
  kernels::AttendFn attend_ = nullptr;  // chosen with the matrix kernels
  int64_t n_ctx_ = 0;
  int64_t n_batch_ = 0;
  int64_t n_past_ = 0;
};

}  // namespace osprey
