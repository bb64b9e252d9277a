// LoRA adapters, as llama.cpp's converter writes them to GGUF
// (general.type "adapter", adapter.type "lora", adapter.lora.alpha): for an
// adapted matrix W of the model, a pair of tensors "<W's name>.lora_a"
// {n_in, r} and ".lora_b" {r, n_out}, and
//     y = W x + s * B (A x),   s = scale * alpha / r   (scale alone when alpha is 0).
// The update is applied beside the base product, never merged into W, so the
// base weights stay shared and every sequence can run with its own adapters
// and scales in the same pass (models/blocks.cpp, apply_adapters).
//
// Adapted matrices are the attention projections, the dense feed-forward
// matrices and the output head, including their parts in fused tensors
// (Phi-3's attn_qkv, its gate+up ffn_up). An adapter for anything else
// (experts, routers, the embedding) is refused, naming the tensor, rather
// than loaded and silently not applied.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "formats/gguf.h"
#include "kernels/matmul.h"
#include "models/model_config.h"
#include "models/model_weights.h"

namespace osprey {

// One adapted matrix, in floats whatever the file stores (an adapter is
// small beside its model): A [r][n_in], and the rows of B that belong to
// this matrix, transposed, bt [r][n_out].
struct LoraDelta {
  int64_t r = 0, n_in = 0, n_out = 0;
  std::vector<float> a, bt;
  float alpha_scale = 1;  // alpha / r, or 1 without alpha
};

struct LoraAdapter {
  std::string path;
  float alpha = 0;
  int64_t rank = 0;   // the largest r of its pairs
  float scale = 1;    // the scale a sequence starts with (--lora FILE:SCALE)
  std::unordered_map<const kernels::WeightMatrix*, LoraDelta> deltas;

  // The update for `m`, or null when this adapter leaves it alone.
  const LoraDelta* find(const kernels::WeightMatrix* m) const {
    const auto it = deltas.find(m);
    return it == deltas.end() ? nullptr : &it->second;
  }

  // Opens `path` and binds its pairs to the matrices of `w`, checking the
  // file is a LoRA adapter for this architecture with matching shapes.
  static Expected<LoraAdapter> load(const std::string& path, float scale, const ModelConfig& c, const ModelWeights& w);
};

// "FILE" or "FILE:SCALE" (the scale after the last colon when it parses as a
// number, so that paths with colons still work).
struct LoraSpec {
  std::string path;
  float scale = 1;
};
Expected<LoraSpec> parse_lora_spec(const std::string& arg);

}  // namespace osprey
