// A GGUF file as a Hugging Face model folder: config.json, model.safetensors
// (or shards with model.safetensors.index.json), tokenizer.json and
// tokenizer_config.json. `osprey synth --format hf` makes its folders this
// way, so that the folder path is tested on models of real shapes without a
// download; `osprey convert` is the way back.
#pragma once

#include <cstdint>
#include <string>

#include "core/dtype.h"
#include "formats/gguf.h"
#include "osprey/status.h"

namespace osprey {

struct ExportOptions {
  DType dtype = DType::kBF16;      // the tensors' safetensors dtype: F32, F16 or BF16
  uint64_t shard_bytes = 0;        // split into shards of about this size; 0: one file
};

Status export_hf_folder(const GgufFile& file, const std::string& dir, const ExportOptions& options);

}  // namespace osprey
