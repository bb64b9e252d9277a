// A Hugging Face model folder (config.json, safetensors shards, tokenizer.json,
// tokenizer_config.json) as a GGUF file: `osprey convert`, and the way
// run/chat/serve/bench load a folder directly (converted into an unlinked
// temporary file that only the mapping keeps alive).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/dtype.h"
#include "core/function_ref.h"
#include "formats/gguf.h"
#include "osprey/status.h"

namespace osprey {

struct ConvertOptions {
  // The matrices' type: F32, F16, BF16 or a block type (Q8_0 and the like);
  // nullopt keeps each matrix in its stored type (F32, F16 or BF16). Norms
  // and biases stay F32. A row that does not divide into the type's blocks
  // falls back to F16, as llama.cpp's converter does.
  std::optional<DType> type;
  int n_threads = 1;
};

struct ConvertProgress {
  size_t tensors_done, tensors_total;
  double seconds;
};
using ConvertProgressFn = FunctionRef<void(const ConvertProgress&)>;

Status convert_hf_folder(const std::string& dir, const std::string& out, const ConvertOptions& options,
                         ConvertProgressFn progress);

// A GGUF file or a Hugging Face folder, opened as a GGUF file.
Expected<GgufFile> open_model_file(const std::string& path, const ConvertOptions& options, ConvertProgressFn progress);

}  // namespace osprey
