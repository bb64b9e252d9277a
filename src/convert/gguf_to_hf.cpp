#include "convert/gguf_to_hf.h"

#include <cstdio>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "convert/hf_layout.h"
#include "convert/hf_tokenizer_files.h"
#include "core/atomic_file.h"
#include "formats/safetensors_writer.h"
#include "quant/quant.h"
#include "tokenizer/vocab.h"

namespace osprey {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

Status write_json(const fs::path& path, const json& j) {
  const std::string text = j.dump(2) + "\n";
  return write_file_atomically(path.string(), std::vector<uint8_t>(text.begin(), text.end()));
}

const char* safetensors_dtype(DType t) {
  switch (t) {
    case DType::kF32: return "F32";
    case DType::kF16: return "F16";
    case DType::kBF16: return "BF16";
    default: return nullptr;
  }
}

struct Exported {
  const GgufTensorInfo* source;
  std::string name;              // Hugging Face
  std::vector<int64_t> shape;    // row-major
  int64_t permute_heads;
};

}  // namespace

Status export_hf_folder(const GgufFile& f, const std::string& dir, const ExportOptions& o) {
  const char* dtype = safetensors_dtype(o.dtype);
  if (dtype == nullptr) return InvalidArgument(std::string("a Hugging Face folder holds F32, F16 or BF16, not ") + dtype_name(o.dtype));
  OSPREY_ASSIGN_OR_RETURN(const std::string gguf_arch, f.get_string("general.architecture"));
  const hf::Arch* arch = hf::arch_from_gguf(gguf_arch);
  if (arch == nullptr) return Unsupported(f.path() + ": architecture '" + gguf_arch + "' has no Hugging Face layout here yet");
  OSPREY_ASSIGN_OR_RETURN(json config, hf::hf_config(*arch, f));
  config["torch_dtype"] = o.dtype == DType::kF32 ? "float32" : o.dtype == DType::kF16 ? "float16" : "bfloat16";
  OSPREY_ASSIGN_OR_RETURN(const Vocab vocab, Vocab::from_gguf(f));
  OSPREY_ASSIGN_OR_RETURN(const json tokenizer, hf::tokenizer_json(vocab, f.path()));
  OSPREY_ASSIGN_OR_RETURN(const std::string chat_template, f.get_string("tokenizer.chat_template", ""));

  const int64_t n_head = config["num_attention_heads"].get<int64_t>();
  const int64_t n_head_kv = config["num_key_value_heads"].get<int64_t>();
  std::vector<Exported> tensors;
  for (const GgufTensorInfo& t : f.tensors()) {
    if (t.name == "rope_freqs.weight") continue;  // config.json's rope_scaling says it (hf_config checked it)
    const std::optional<std::string> name = hf::hf_tensor_name(t.name);
    if (!name) return Unsupported(f.path() + ": tensor '" + t.name + "' has no Hugging Face name here yet");
    const QuantOps* ops = quant_ops(t.type);
    if (ops == nullptr || ops->dequantize == nullptr)
      return Unsupported(f.path() + ": tensor '" + t.name + "' is " + dtype_name(t.type) + ", which osprey cannot decode");
    tensors.push_back({&t, *name, std::vector<int64_t>(t.dims.rbegin(), t.dims.rend()),
                       hf::qk_permute_heads(*arch, t.name, n_head, n_head_kv)});
  }

  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return IoError(dir + ": cannot create: " + ec.message());
  // Shards of about shard_bytes each, in the file's order.
  const uint64_t elem = static_cast<uint64_t>(o.dtype == DType::kF32 ? 4 : 2);
  std::vector<std::vector<size_t>> shards(1);
  uint64_t in_shard = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const uint64_t bytes = static_cast<uint64_t>(tensors[i].source->n_elements) * elem;
    if (o.shard_bytes > 0 && in_shard > 0 && in_shard + bytes > o.shard_bytes) {
      shards.emplace_back();
      in_shard = 0;
    }
    shards.back().push_back(i);
    in_shard += bytes;
  }
  json weight_map = json::object();
  uint64_t total = 0;
  std::vector<float> values, permuted;
  for (size_t s = 0; s < shards.size(); ++s) {
    char file[64];
    if (shards.size() == 1) std::snprintf(file, sizeof file, "model.safetensors");
    else std::snprintf(file, sizeof file, "model-%05zu-of-%05zu.safetensors", s + 1, shards.size());
    SafetensorsWriter w;
    w.set_metadata("format", "pt");
    for (size_t i : shards[s]) {
      OSPREY_TRY(w.declare(tensors[i].name, dtype, tensors[i].shape));
      weight_map[tensors[i].name] = file;
    }
    total += w.data_bytes();
    OSPREY_TRY(w.write((fs::path(dir) / file).string(), [&](size_t k, std::vector<uint8_t>& bytes) -> Status {
      const Exported& t = tensors[shards[s][k]];
      const int64_t n = t.source->n_elements;
      values.resize(static_cast<size_t>(n));
      quant_ops(t.source->type)->dequantize(t.source->data, values.data(), n);
      if (t.permute_heads > 0) {
        permuted.resize(values.size());
        const int64_t rows = t.shape[0], cols = t.shape.size() == 2 ? t.shape[1] : 1;
        hf::permute_qk_rows(values.data(), permuted.data(), rows, cols, t.permute_heads, /*to_gguf=*/false);
        values.swap(permuted);
      }
      bytes.resize(static_cast<size_t>(n) * elem);
      quant_ops(o.dtype)->quantize(values.data(), bytes.data(), n);
      return Status::Ok();
    }));
  }
  if (shards.size() > 1)
    OSPREY_TRY(write_json(fs::path(dir) / "model.safetensors.index.json",
                          {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}}));
  OSPREY_TRY(write_json(fs::path(dir) / "config.json", config));
  OSPREY_TRY(write_json(fs::path(dir) / "tokenizer.json", tokenizer));
  OSPREY_TRY(write_json(fs::path(dir) / "tokenizer_config.json", hf::tokenizer_config(vocab, chat_template)));
  json generation = json::object();
  if (vocab.bos >= 0) generation["bos_token_id"] = vocab.bos;
  if (vocab.eos >= 0) generation["eos_token_id"] = vocab.eos;
  return write_json(fs::path(dir) / "generation_config.json", generation);
}

}  // namespace osprey
