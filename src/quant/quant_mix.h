// What `osprey quantize` stores each tensor as. A user asks for a recipe by
// name: a single type ("q4_0", "q6_k": every matrix in that type) or one of
// llama.cpp's mixes ("q4_k_m"), which spend more bits where a model is most
// sensitive: the output head, attention V and some FFN down projections.
// The rules are data here, apart from the tensors themselves, so that
// `quantize --dry-run` and the writer agree by construction.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/dtype.h"
#include "osprey/status.h"

namespace osprey {

enum class QuantMix { kNone, kQ2_K, kQ3_K_S, kQ3_K_M, kQ3_K_L, kQ4_K_S, kQ4_K_M, kQ5_K_S, kQ5_K_M };

struct QuantRecipe {
  std::string name;   // as llama.cpp's general.file_type names it: "Q4_K_M", "Q8_0"
  DType base;         // what most matrices become
  QuantMix mix = QuantMix::kNone;
  int64_t file_type;  // general.file_type
  bool pure = false;  // every matrix in `base`, the output head too (--pure)
};

// Case-insensitive: "q4_k_m", "Q8_0", "f16". The error lists every name.
Expected<QuantRecipe> parse_quant_recipe(std::string_view name);
std::string quant_recipe_names();

// A tensor as the rules see it.
struct TensorRole {
  std::string_view name;   // "blk.3.attn_v.weight"
  int n_dims = 2;
  int64_t row_len = 0;     // dims[0]
  int64_t n_layer = 1;     // the model's block_count
  int64_t n_expert = 0;    // experts per MoE layer, 0 for a dense model
  int64_t n_gqa = 1;       // query heads per KV head
  bool tied_output = false;  // the model has no output.weight, so token_embd is also the output head
};

// The tensor's stored type, or nullopt to copy it unchanged: norms, biases,
// routers and other vectors and small tables stay as they are, as they do in
// llama.cpp's files. A type whose blocks do not divide the row falls back to
// the nearest legacy block type that does; if none does, the tensor is kept.
std::optional<DType> choose_quant_type(const QuantRecipe& recipe, const TensorRole& t);

}  // namespace osprey
