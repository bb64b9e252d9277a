// The tensors of a llama-style model, bound by name from a GGUF file and
// checked against the config. Matrices stay in the file mapping unless their
// kernel wants its own layout: those are repacked once at load into one
// buffer, and the file's pages for them are released, so memory holds each
// weight once. Small vectors (norms, biases) are converted to f32 once.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/page_buffer.h"
#include "core/thread_pool.h"
#include "formats/gguf.h"
#include "kernels/matmul.h"
#include "models/model_config.h"

namespace osprey {

struct LayerWeights {
  std::vector<float> attn_norm;          // [n_embd]
  kernels::WeightMatrix wq, wk, wv, wo;  // [n_head*hd, n_embd], [n_kv*hd, n_embd] x2, [n_embd, n_head*hd]
  std::vector<float> bq, bk, bv;         // empty when the model has no QKV bias
  std::vector<float> ffn_norm;           // [n_embd]
  kernels::WeightMatrix w_gate, w_up, w_down;  // [n_ff, n_embd] x2, [n_embd, n_ff]
};

struct ModelWeights {
  kernels::WeightMatrix tok_embd;  // [n_vocab, n_embd]; rows are looked up, not multiplied
  std::vector<float> output_norm;  // [n_embd]
  kernels::WeightMatrix output;    // [n_vocab, n_embd]; the embedding when tied
  bool tied_output = false;
  std::vector<float> rope_freq_factors;  // [rope_dim/2], empty unless the file has rope_freqs
  std::vector<LayerWeights> layers;
  std::shared_ptr<PageBuffer> packed;  // the repacked matrices, if any
  int64_t n_packed = 0;                // how many matrices were repacked

  // Matrices get the fastest kernels of `isa`; `pool` repacks those that need it.
  static Expected<ModelWeights> bind(const GgufFile& file, const ModelConfig& config, kernels::Isa isa,
                                     ThreadPool& pool);
};

}  // namespace osprey
