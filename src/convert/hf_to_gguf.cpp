#include "convert/hf_to_gguf.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "convert/hf_layout.h"
#include "convert/hf_tokenizer_files.h"
#include "core/thread_pool.h"
#include "formats/file_type.h"
#include "formats/json_text.h"
#include "formats/safetensors.h"
#include "quant/quant.h"
#include "tokenizer/vocab.h"

namespace osprey {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

struct PlannedTensor {
  std::string name;                     // GGUF
  const SafetensorsTensor* source;      // null for rope_freqs.weight
  std::vector<int64_t> dims;            // GGUF order: dims[0] is the row
  DType type;
  int64_t permute_heads = 0;            // Llama's Q/K: heads to interleave by
  std::vector<float> values;            // rope_freqs.weight's factors
};

Expected<json> read_config(const std::string& dir) {
  const std::string path = (fs::path(dir) / "config.json").string();
  std::error_code ec;
  if (!fs::exists(path, ec)) return IoError(path + ": missing (a Hugging Face model folder has a config.json)");
  OSPREY_ASSIGN_OR_RETURN(json j, read_json_file(path));
  if (!j.is_object()) return CorruptFile(path + ": not a JSON object");
  return j;
}

// Everything the write needs, checked before any output exists.
struct Plan {
  GgufWriter writer;
  std::vector<PlannedTensor> tensors;
};

Expected<Plan> plan(const std::string& dir, const SafetensorsModel& weights, const ConvertOptions& o) {
  const std::string config_path = (fs::path(dir) / "config.json").string();
  OSPREY_ASSIGN_OR_RETURN(const json config, read_config(dir));
  OSPREY_ASSIGN_OR_RETURN(const hf::Arch* arch, hf::arch_from_config(config, config_path));
  OSPREY_ASSIGN_OR_RETURN(auto metadata, hf::gguf_metadata(*arch, config, config_path));
  OSPREY_ASSIGN_OR_RETURN(const Vocab vocab, Vocab::from_tokenizer_json(dir));
  OSPREY_ASSIGN_OR_RETURN(const std::string chat_template, hf::folder_chat_template(dir));

  const int64_t n_head = config["num_attention_heads"].get<int64_t>();
  const int64_t n_head_kv = config.value("num_key_value_heads", n_head);
  Plan p;
  p.writer.set("general.architecture", GgufValue::str(arch->gguf));
  p.writer.set("general.name", GgufValue::str(fs::path(dir).filename().string()));
  for (auto& [k, v] : metadata) p.writer.set(k, std::move(v));

  int64_t embedding_rows = 0;
  for (const auto& [hf_name, t] : weights.tensors()) {
    bool ignored = false;
    const std::optional<std::string> name = hf::gguf_tensor_name(hf_name, ignored);
    if (ignored) continue;
    if (!name) return Unsupported(t->file + ": tensor '" + hf_name + "' has no place in a " + arch->gguf + " GGUF file");
    if (!t->type)
      return Unsupported(t->file + ": tensor '" + hf_name + "' is " + t->dtype + "; osprey converts F32, F16 and BF16");
    if (t->shape.empty() || t->shape.size() > 2)
      return CorruptFile(t->file + ": tensor '" + hf_name + "' has " + std::to_string(t->shape.size()) + " dimensions");
    PlannedTensor pt;
    pt.name = *name;
    pt.source = t;
    pt.dims.assign(t->shape.rbegin(), t->shape.rend());
    const bool matrix = pt.dims.size() == 2;
    pt.type = DType::kF32;
    if (matrix) {
      pt.type = o.type.value_or(*t->type);
      const QuantOps* ops = quant_ops(pt.type);
      if (ops == nullptr || ops->quantize == nullptr)
        return InvalidArgument(std::string("osprey cannot write ") + dtype_name(pt.type));
      if (pt.dims[0] % ops->block_len != 0) pt.type = DType::kF16;
    }
    pt.permute_heads = hf::qk_permute_heads(*arch, pt.name, n_head, n_head_kv);
    if (pt.permute_heads > 0 && (t->shape[0] % (2 * pt.permute_heads) != 0))
      return CorruptFile(t->file + ": tensor '" + hf_name + "' has " + std::to_string(t->shape[0]) + " rows for " +
                         std::to_string(pt.permute_heads) + " heads");
    if (pt.name == "token_embd.weight") embedding_rows = t->shape[0];
    p.tensors.push_back(std::move(pt));
  }
  if (embedding_rows == 0) return CorruptFile(dir + ": no model.embed_tokens.weight among the safetensors tensors");
  // Llama 3's rope scaling becomes the per-dimension factors GGUF stores.
  if (config.contains("rope_scaling") && config["rope_scaling"].is_object()) {
    const json& rs = config["rope_scaling"];
    if (rs.value("rope_type", rs.value("type", std::string())) == "llama3") {
      const int64_t n_embd = config["hidden_size"].get<int64_t>();
      const int64_t head_dim = config.value("head_dim", n_embd / n_head);
      PlannedTensor pt;
      pt.name = "rope_freqs.weight";
      pt.source = nullptr;
      pt.values = hf::llama3_rope_factors(head_dim, config.value("rope_theta", 10000.0), rs.value("factor", 8.0),
                                          rs.value("low_freq_factor", 1.0), rs.value("high_freq_factor", 4.0),
                                          rs.value("original_max_position_embeddings", 8192.0));
      pt.dims = {static_cast<int64_t>(pt.values.size())};
      pt.type = DType::kF32;
      p.tensors.push_back(std::move(pt));
    }
  }
  OSPREY_ASSIGN_OR_RETURN(auto tokenizer_kv,
                          hf::gguf_tokenizer_metadata(vocab, embedding_rows, chat_template, dir + "/tokenizer.json"));
  for (auto& [k, v] : tokenizer_kv) p.writer.set(k, std::move(v));
  // general.file_type says what most matrices are.
  if (o.type) {
    if (const auto ft = file_type_of(*o.type)) p.writer.set("general.file_type", GgufValue::u32(static_cast<uint32_t>(*ft)));
  }
  for (const PlannedTensor& t : p.tensors) OSPREY_TRY(p.writer.declare_tensor(t.name, t.type, t.dims));
  return p;
}

// The tensor's values in GGUF's row order, as floats.
void source_floats(const PlannedTensor& t, std::vector<float>& out, std::vector<float>& scratch) {
  if (t.source == nullptr) {
    out = t.values;
    return;
  }
  const SafetensorsTensor& s = *t.source;
  out.resize(static_cast<size_t>(s.n_elements));
  quant_ops(*s.type)->dequantize(s.data, out.data(), s.n_elements);
  if (t.permute_heads > 0) {
    const int64_t rows = s.shape[0], cols = s.shape.size() == 2 ? s.shape[1] : 1;
    scratch.resize(out.size());
    hf::permute_qk_rows(out.data(), scratch.data(), rows, cols, t.permute_heads, /*to_gguf=*/true);
    out.swap(scratch);
  }
}

Status write(const Plan& p, const std::string& out, const ConvertOptions& o, ConvertProgressFn progress) {
  ThreadPool pool(std::max(1, o.n_threads));
  const auto start = std::chrono::steady_clock::now();
  std::vector<float> values, scratch;
  return p.writer.write(out, [&](size_t i, std::vector<uint8_t>& bytes) -> Status {
    const PlannedTensor& t = p.tensors[i];
    const QuantOps& ops = *quant_ops(t.type);
    const int64_t n = t.dims[0];
    const uint64_t row_bytes = static_cast<uint64_t>(quant_row_bytes(ops, n));
    if (t.source != nullptr && t.permute_heads == 0) {
      // Rows decode and encode independently: each thread takes runs of
      // them straight from the mapped source into the output.
      const SafetensorsTensor& s = *t.source;
      const QuantOps& from = *quant_ops(*s.type);
      const int64_t rows = s.n_elements / n;
      const uint64_t in_row = s.n_bytes / static_cast<uint64_t>(rows);
      bytes.resize(row_bytes * static_cast<uint64_t>(rows));
      std::vector<std::vector<float>> row_scratch(static_cast<size_t>(pool.size()));
      pool.parallel_for(rows, std::max<int64_t>(1, 65536 / n), [&](int64_t r0, int64_t r1, int thread) {
        std::vector<float>& x = row_scratch[static_cast<size_t>(thread)];
        x.resize(static_cast<size_t>(n));
        for (int64_t r = r0; r < r1; ++r) {
          from.dequantize(s.data + static_cast<uint64_t>(r) * in_row, x.data(), n);
          ops.quantize(x.data(), bytes.data() + static_cast<uint64_t>(r) * row_bytes, n);
        }
      });
    } else {
      source_floats(t, values, scratch);
      const int64_t rows = static_cast<int64_t>(values.size()) / n;
      bytes.resize(row_bytes * static_cast<uint64_t>(rows));
      pool.parallel_for(rows, std::max<int64_t>(1, 65536 / n), [&](int64_t r0, int64_t r1, int) {
        for (int64_t r = r0; r < r1; ++r)
          ops.quantize(values.data() + r * n, bytes.data() + static_cast<uint64_t>(r) * row_bytes, n);
      });
    }
    progress({i + 1, p.tensors.size(), std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()});
    return Status::Ok();
  });
}

}  // namespace

Status convert_hf_folder(const std::string& dir, const std::string& out, const ConvertOptions& o,
                         ConvertProgressFn progress) {
  OSPREY_ASSIGN_OR_RETURN(const SafetensorsModel weights, SafetensorsModel::open(dir));
  Expected<Plan> p = CorruptFile(dir);
  try {
    p = plan(dir, weights, o);
  } catch (const json::exception& e) {  // a config.json field of an unexpected type
    return CorruptFile(dir + "/config.json: unexpected content: " + e.what());
  }
  if (!p.ok()) return p.status();
  return write(*p, out, o, progress);
}

Expected<GgufFile> open_model_file(const std::string& path, const ConvertOptions& o, ConvertProgressFn progress) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return GgufFile::open(path);
  // A folder: converted into a file nobody else can see, which lives on as
  // long as the mapping of it does.
  static std::atomic<int> counter{0};
  const fs::path tmp = fs::temp_directory_path(ec) /
                       ("osprey-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + ".gguf");
  if (Status s = convert_hf_folder(path, tmp.string(), o, progress); !s.ok()) return s;
  auto file = GgufFile::open(tmp.string());
  fs::remove(tmp, ec);
  return file;
}

}  // namespace osprey
