#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <map>
#include <vector>

#include "cli/commands.h"
#include "cli/kv_cache_flags.h"
#include "cli/load_model.h"
#include "kernels/kv_row.h"
#include "cli/progress.h"
#include "formats/file_type.h"
#include "formats/gguf.h"
#include "formats/safetensors.h"
#include "tokenizer/vocab.h"
#include "kernels/dispatch.h"
#include "models/model.h"
#include "models/model_config.h"
#include "quant/quant.h"
#include "tokenizer/tokenizer.h"

namespace osprey::cli {

namespace {

std::string shape(const std::vector<int64_t>& d) {
  std::string s;
  for (size_t i = 0; i < d.size(); ++i) s += (i ? " x " : "") + std::to_string(d[i]);
  return s;
}

struct InspectOptions {
  std::string path, against;
  std::string device = "cpu";
  bool all_metadata = false, no_tensors = false;
  int64_t ctx = 0;
  KvCacheFlags kv_cache;
};

struct ErrorSum {
  double err2 = 0, ref2 = 0;
  int tensors = 0;
  double rel() const { return ref2 > 0 ? std::sqrt(err2 / ref2) : (err2 > 0 ? INFINITY : 0.0); }
};

// Squared differences and squared reference values of tensor t against ref
// (same shape), both decoded to floats a row at a time.
ErrorSum tensor_error(const GgufTensorInfo& t, const QuantOps& ops, const GgufTensorInfo& ref, const QuantOps& ref_ops) {
  const int64_t n = t.dims[0];
  const int64_t row_bytes = quant_row_bytes(ops, n), ref_row_bytes = quant_row_bytes(ref_ops, n);
  std::vector<float> a(static_cast<size_t>(n)), b(static_cast<size_t>(n));
  ErrorSum e;
  for (int64_t r = 0; r < t.rows(); ++r) {
    ops.dequantize(t.data + r * row_bytes, a.data(), n);
    ref_ops.dequantize(ref.data + r * ref_row_bytes, b.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const double d = static_cast<double>(a[i]) - b[i];
      e.err2 += d * d;
      e.ref2 += static_cast<double>(b[i]) * b[i];
    }
  }
  return e;
}

// How far each tensor of f is from the same-named tensor of another file,
// typically the f16 or f32 file it was quantized from.
void print_error_against(const GgufFile& f, const std::string& ref_path, bool per_tensor) {
  auto opened = GgufFile::open(ref_path);
  if (!opened.ok()) throw Failure{opened.status().message()};
  const GgufFile& g = *opened;
  std::printf("\nerror against %s (relative RMS: |this - that| / |that|)\n", g.path().c_str());
  if (per_tensor) std::printf("  %-36s %-6s %-6s %s\n", "name", "type", "that", "rel rms");
  std::map<std::string, ErrorSum> by_type;
  ErrorSum all;
  int skipped = 0;
  for (const auto& t : f.tensors()) {
    const GgufTensorInfo* ref = g.find_tensor(t.name);
    const QuantOps* ops = quant_ops(t.type);
    const QuantOps* ref_ops = ref ? quant_ops(ref->type) : nullptr;
    if (ref == nullptr || ref->dims != t.dims || ops == nullptr || ref_ops == nullptr || ops->dot == nullptr ||
        ref_ops->dot == nullptr) {
      ++skipped;
      continue;
    }
    const ErrorSum e = tensor_error(t, *ops, *ref, *ref_ops);
    if (per_tensor)
      std::printf("  %-36s %-6s %-6s %.4f\n", t.name.c_str(), dtype_name(t.type), dtype_name(ref->type), e.rel());
    ErrorSum& s = by_type[dtype_name(t.type)];
    for (ErrorSum* acc : {&s, &all}) acc->err2 += e.err2, acc->ref2 += e.ref2, acc->tensors += 1;
  }
  std::printf("  by type:");
  for (const auto& [name, e] : by_type)
    std::printf(" %s %.4f (%d tensor%s),", name.c_str(), e.rel(), e.tensors, e.tensors == 1 ? "" : "s");
  std::printf(" all %.4f\n", all.rel());
  if (skipped > 0)
    std::printf("  %d tensors not compared: missing from %s, shaped differently, or of a type osprey cannot decode\n",
                skipped, ref_path.c_str());
}

// --device: whether that device opens and runs this model (a load with a
// small context, on the device).
void print_device(const std::string& path, const std::string& device) {
  ModelOptions mo;
  mo.device = device;
  mo.n_ctx = 16;
  mo.n_batch = 16;
  auto m = Model::load(path, mo);
  if (m.ok())
    std::printf("device:      %s runs this model (%s on the device with a 16-token context)\n",
                (*m)->device_name().c_str(), human_bytes(static_cast<double>((*m)->device_bytes())).c_str());
  else
    std::printf("device:      %s\n", m.status().message().c_str());
}

// Which kernel level runs here and, for each weight type among the file's
// matrices, the layout and prompt tiles its kernel uses: what load would
// pick for the first matrix of that type (row-group kernels need the row
// count to be a multiple of their group).
void print_kernels(const GgufFile& f) {
  const kernels::Isa isa = kernels::active_isa();
  std::printf("kernels:     %s (this CPU: %s)\n", kernels::isa_name(isa), kernels::cpu_feature_names().c_str());
  std::map<std::string, const GgufTensorInfo*> first_matrix;
  for (const auto& t : f.tensors())
    if (t.dims.size() == 2) first_matrix.emplace(dtype_name(t.type), &t);
  for (const auto& [name, t] : first_matrix) {
    const kernels::RowKernel k = kernels::packed_row_kernel(t->type, isa, t->dims[1]);
    std::string layout = k.repack == nullptr ? "rows as stored"
                         : k.row_group > 1   ? "rows interleaved in groups of " + std::to_string(k.row_group)
                                             : "rows repacked one by one";
    std::string prompt = k.dot_tile != nullptr ? "prompt tiles of " + std::to_string(k.tile_tokens) + " tokens"
                                               : "one token at a time";
    std::printf("  %-6s %s, %s\n", name.c_str(), layout.c_str(), prompt.c_str());
  }
}

// A Hugging Face folder or a lone .safetensors file: what the weights are.
// (Running such a folder comes with the config.json reader.)
void inspect_safetensors(const InspectOptions& o) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<const SafetensorsTensor*> tensors;
  std::optional<SafetensorsModel> folder;
  std::optional<SafetensorsFile> file;
  if (fs::is_directory(o.path, ec)) {
    auto m = SafetensorsModel::open(o.path);
    if (!m.ok()) throw Failure{m.status().message()};
    folder.emplace(std::move(*m));
    for (const auto& [name, t] : folder->tensors()) tensors.push_back(t);
    std::printf("folder:      %s (%zu safetensors file%s)\n", o.path.c_str(), folder->shards().size(),
                folder->shards().size() == 1 ? "" : "s");
    const fs::path config = fs::path(o.path) / "config.json";
    if (fs::exists(config, ec)) {
      const auto j = read_json(config.string());
      if (j.is_object() && j.contains("model_type") && j["model_type"].is_string())
        std::printf("model_type:  %s\n", j["model_type"].get<std::string>().c_str());
      if (j.is_object() && j.contains("architectures") && j["architectures"].is_array())
        std::printf("classes:     %s\n", j["architectures"].dump().c_str());
    }
    // The tokenizer as osprey reads it, or why it cannot.
    if (fs::exists(fs::path(o.path) / "tokenizer.json", ec)) {
      auto v = Vocab::from_tokenizer_json(o.path);
      if (!v.ok()) {
        std::printf("tokenizer:   %s\n", v.status().message().c_str());
      } else {
        const char* kind = v->kind == VocabKind::kBpe ? "byte-level BPE" : "BPE with byte fallback";
        std::printf("tokenizer:   %s, %d tokens, %zu merges%s%s%s\n", kind, v->size(), v->merge_rank.size(),
                    v->nfc ? ", NFC" : "", v->add_bos ? (", BOS " + v->text_of(v->bos)).c_str() : "",
                    v->eos >= 0 ? (", EOS " + v->text_of(v->eos)).c_str() : "");
      }
    }
  } else {
    auto f = SafetensorsFile::open(o.path);
    if (!f.ok()) throw Failure{f.status().message()};
    file.emplace(std::move(*f));
    for (const auto& t : file->tensors()) tensors.push_back(&t);
    std::printf("file:        %s\n", o.path.c_str());
    for (const auto& [k, v] : file->metadata()) std::printf("metadata:    %s = %s\n", k.c_str(), v.c_str());
  }
  std::map<std::string, std::pair<int, uint64_t>> by_dtype;
  uint64_t total = 0;
  int64_t params = 0;
  for (const SafetensorsTensor* t : tensors) {
    auto& [count, bytes] = by_dtype[t->dtype];
    ++count;
    bytes += t->n_bytes;
    total += t->n_bytes;
    params += t->n_elements;
  }
  char count[32];
  if (params >= 1'000'000) std::snprintf(count, sizeof count, "%.2f M", static_cast<double>(params) / 1e6);
  else std::snprintf(count, sizeof count, "%lld", static_cast<long long>(params));
  if (params >= 1'000'000'000) std::snprintf(count, sizeof count, "%.2f B", static_cast<double>(params) / 1e9);
  std::printf("format:      safetensors, %zu tensors, %s parameters, %s\n", tensors.size(), count,
              human_bytes(static_cast<double>(total)).c_str());
  for (const auto& [dtype, cb] : by_dtype)
    std::printf("  %-8s %5d tensors  %s\n", dtype.c_str(), cb.first, human_bytes(static_cast<double>(cb.second)).c_str());
  if (o.no_tensors) return;
  std::printf("\ntensors (shape as stored, row-major)\n");
  for (const SafetensorsTensor* t : tensors) {
    std::string shape_text;
    for (size_t i = 0; i < t->shape.size(); ++i) shape_text += (i ? " x " : "") + std::to_string(t->shape[i]);
    std::printf("  %-48s %-6s %-20s %s\n", t->name.c_str(), t->dtype.c_str(), shape_text.c_str(),
                fs::path(t->file).filename().c_str());
  }
}

void inspect(const InspectOptions& o) {
  std::error_code ec;
  if (std::filesystem::is_directory(o.path, ec) ||
      (o.path.size() > 12 && o.path.substr(o.path.size() - 12) == ".safetensors")) {
    if (!o.against.empty()) throw Failure{"--against compares GGUF files; " + o.path + " is not one"};
    inspect_safetensors(o);
    return;
  }
  auto opened = GgufFile::open(o.path);
  if (!opened.ok()) throw Failure{opened.status().message()};
  const GgufFile& f = *opened;
  std::printf("file:        %s (%s)\n", f.path().c_str(), human_bytes(static_cast<double>(f.file_size())).c_str());
  std::printf("format:      GGUF v%u, %zu tensors, %zu metadata keys, alignment %llu\n", f.version(), f.tensors().size(),
              f.metadata().size(), static_cast<unsigned long long>(f.alignment()));

  auto config = ModelConfig::from_gguf(f);
  const auto adapter_type = f.get_string("adapter.type", "");
  if (adapter_type.ok() && !adapter_type->empty()) {
    // An adapter has no model of its own: say what it applies to.
    const auto arch = f.get_string("general.architecture", "?");
    const auto alpha = f.get_float("adapter.lora.alpha", 0.0);
    std::printf("adapter:     %s for %s models, %zu matrices, alpha %g (run it with --lora FILE[:SCALE])\n",
                adapter_type->c_str(), arch.ok() ? arch->c_str() : "?", f.tensors().size() / 2,
                alpha.ok() ? *alpha : 0.0);
  } else if (config.ok()) {
    std::printf("model:       %s (%s)\n", config->name.empty() ? "(unnamed)" : config->name.c_str(), config->arch.c_str());
    std::printf("\nhyperparameters\n");
    for (const auto& [k, v] : config->describe()) std::printf("  %-20s %s\n", k.c_str(), v.c_str());
  } else if (!f.tensors().empty()) {
    std::printf("model:       cannot run: %s\n", config.status().message().c_str());
  }

  if (f.find("tokenizer.ggml.model")) {
    auto tok = Tokenizer::from_gguf(f);
    std::printf("\ntokenizer\n");
    if (tok.ok()) {
      const Vocab& v = (*tok)->vocab();
      auto name = [&](int32_t id) { return id < 0 ? std::string("none") : std::to_string(id) + " '" + v.tokens[id] + "'"; };
      std::printf("  %-20s %s\n", "type", v.kind == VocabKind::kSpm         ? "SentencePiece BPE (llama)"
                                                   : v.kind == VocabKind::kWordPiece ? "WordPiece (bert)"
                                                                                     : "byte-level BPE (gpt2)");
      std::printf("  %-20s %d\n", "tokens", v.size());
      if (v.kind == VocabKind::kBpe) {
        std::printf("  %-20s %zu\n", "merges", v.merge_rank.size());
        std::printf("  %-20s %s\n", "pre-tokenizer", v.pre.c_str());
      }
      std::printf("  %-20s %s%s\n", "bos", name(v.bos).c_str(), v.add_bos ? " (added)" : "");
      std::printf("  %-20s %s%s\n", "eos", name(v.eos).c_str(), v.add_eos ? " (added)" : "");
      std::string eog;
      for (int32_t id : v.end_of_generation) eog += (eog.empty() ? "" : ", ") + name(id);
      std::printf("  %-20s %s\n", "end of generation", eog.c_str());
      std::printf("  %-20s %s\n", "chat template", f.find("tokenizer.chat_template") ? "yes" : "no");
    } else {
      std::printf("  cannot use: %s\n", tok.status().message().c_str());
    }
  }

  std::printf("\nmetadata\n");
  for (const auto& [k, v] : f.metadata()) {
    if (!o.all_metadata && k.rfind("tokenizer.", 0) == 0 && v.type == GgufType::kArray) continue;
    std::string shown = v.to_display(o.all_metadata ? 64 : 8);
    if (k == "general.file_type" && gguf_type_is_integer(v.type))
      if (const char* name = file_type_name(v.i))
        shown += std::string(" (") + name + ")";
    std::printf("  %-42s %s\n", k.c_str(), shown.c_str());
  }
  if (!o.all_metadata) std::printf("  (tokenizer arrays hidden; --all-metadata shows them)\n");

  uint64_t total = 0;
  std::map<std::string, std::pair<int, uint64_t>> by_type;
  for (const auto& t : f.tensors()) {
    total += t.n_bytes;
    auto& e = by_type[dtype_name(t.type)];
    e.first++;
    e.second += t.n_bytes;
  }
  if (!o.no_tensors && !f.tensors().empty()) {
    std::printf("\ntensors\n  %-36s %-6s %-22s %s\n", "name", "type", "shape", "size");
    for (const auto& t : f.tensors())
      std::printf("  %-36s %-6s %-22s %s\n", t.name.c_str(), dtype_name(t.type), shape(t.dims).c_str(),
                  human_bytes(static_cast<double>(t.n_bytes)).c_str());
  }
  if (!f.tensors().empty()) {
    std::printf("\nweights:     %s in %zu tensors (", human_bytes(static_cast<double>(total)).c_str(), f.tensors().size());
    bool first = true;
    for (const auto& [name, e] : by_type) {
      std::printf("%s%s: %d", first ? "" : ", ", name.c_str(), e.first);
      first = false;
    }
    std::printf(")\n");
    print_kernels(f);
  }
  if (config.ok()) {
    const ModelConfig& c = *config;
    const int64_t n_ctx = o.ctx > 0 ? o.ctx : std::min<int64_t>(c.n_ctx_train, 4096);
    // K and V of the chosen types (fp16 unless told): every position for
    // global layers; sliding-window layers keep their window and one batch
    // of 64 (Model's window pool).
    ModelOptions types;
    apply_kv_cache_flags(o.kv_cache, types);
    const int64_t kv_dim = c.n_head_kv * c.head_dim;
    if (!kernels::kv_type_fits(types.cache_type_k, c.head_dim) || !kernels::kv_type_fits(types.cache_type_v, c.head_dim))
      throw Failure{"this model's heads of " + std::to_string(c.head_dim) + " values cannot be stored as " +
                    describe_kv_cache(types) + " (block formats need a multiple of 32)"};
    double kv = 0, kv_full = 0;
    for (const LayerConfig& l : c.layers) {
      const double row = static_cast<double>(kernels::kv_row_bytes(types.cache_type_k, kv_dim) +
                                             kernels::kv_row_bytes(types.cache_type_v, kv_dim));
      const int64_t held = l.window > 0 && l.window < n_ctx
                               ? std::min<int64_t>(n_ctx, ((l.window + 64 + 15) / 16 + 1) * 16)
                               : n_ctx;
      kv += row * static_cast<double>(held);
      kv_full += row * static_cast<double>(n_ctx);
    }
    const int64_t nb = 64;
    const double act = 4.0 * (nb * (4 * c.n_embd + 2 * c.n_head * c.head_dim + 2 * c.n_head_kv * c.head_dim + 2 * c.n_ff) +
                              c.n_vocab + 2 * n_ctx);
    std::printf("memory:      %s to run with a %lld-token context (weights %s mapped, KV cache %s as %s, activations %s)\n",
                human_bytes(static_cast<double>(total) + kv + act).c_str(), static_cast<long long>(n_ctx),
                human_bytes(static_cast<double>(total)).c_str(), human_bytes(kv).c_str(),
                describe_kv_cache(types).c_str(), human_bytes(act).c_str());
    if (kv < kv_full)
      std::printf("             (sliding-window layers keep only their window: the KV cache would be %s with every position)\n",
                  human_bytes(kv_full).c_str());
  }
  if (o.device != "cpu") print_device(o.path, o.device);
  if (!o.against.empty()) print_error_against(f, o.against, !o.no_tensors);
}

}  // namespace

void register_inspect(CLI::App& app) {
  auto o = std::make_shared<InspectOptions>();
  CLI::App* cmd = app.add_subcommand("inspect", "Show a model file's architecture, tokenizer, tensors and memory needs");
  cmd->add_option("file", o->path, "GGUF file, .safetensors file or Hugging Face folder")->required();
  cmd->add_flag("--all-metadata", o->all_metadata, "Also show the tokenizer arrays, up to 64 items each");
  cmd->add_flag("--no-tensors", o->no_tensors, "Leave out the tensor table (and, with --against, the per-tensor errors)");
  cmd->add_option("--against", o->against,
                  "Also decode every tensor and report its relative RMS error against the same-named tensor of this "
                  "file, e.g. the f16 file a quantized one was made from");
  add_kv_cache_options(*cmd, o->kv_cache);
  add_device_option(*cmd, o->device);
  cmd->add_option("-c,--ctx-size", o->ctx, "Context size for the memory estimate (0: the model's, at most 4096)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 24));
  cmd->callback([o] { inspect(*o); });
}

}  // namespace osprey::cli
