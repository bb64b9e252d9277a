// `osprey quantize`: a GGUF file in, a GGUF file out with its matrices stored
// in the types a recipe chooses. Planning is separate from writing so that
// --dry-run shows exactly what the write would do, and so that every
// refusal (an unknown type, a tensor already quantized) comes before any
// output exists.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "convert/importance_matrix.h"
#include "core/function_ref.h"
#include "formats/gguf.h"
#include "osprey/status.h"
#include "quant/quant_mix.h"

namespace osprey {

struct QuantizeOptions {
  QuantRecipe recipe;
  std::optional<DType> output_type;     // overrides the recipe for the output head
  std::optional<DType> embedding_type;  // and for token_embd
  bool allow_requantize = false;        // quantize tensors that are already quantized
  int n_threads = 1;
  // Column weights for the k-quants' error (osprey imatrix); null: none.
  const ImportanceMatrix* imatrix = nullptr;
};

struct TensorPlan {
  const GgufTensorInfo* source;
  DType to;
  uint64_t out_bytes;
  bool weighted = false;  // quantized with the importance matrix's weights
  bool copy() const { return to == source->type; }
};

struct QuantizePlan {
  std::vector<TensorPlan> tensors;  // in the input's order
  uint64_t in_bytes = 0, out_bytes = 0;
  // Of the tensors the importance matrix has data for and that are quantized:
  // how many use it, and how many go to a type whose encoder has no weights.
  int64_t weighted = 0, imatrix_unused = 0;
};

Expected<QuantizePlan> plan_quantize(const GgufFile& in, const QuantizeOptions& options);

struct QuantizeProgress {
  size_t tensors_done, tensors_total;
  uint64_t bytes_done, bytes_total;  // of the output
  double seconds;
};

// Writes `out` atomically (nothing under that name until it is complete).
// Fails, naming the tensor and row, on a NaN or infinity in the input.
Status write_quantized(const GgufFile& in, const QuantizePlan& plan, const QuantizeOptions& options,
                       const std::string& out, FunctionRef<void(const QuantizeProgress&)> progress);

}  // namespace osprey
