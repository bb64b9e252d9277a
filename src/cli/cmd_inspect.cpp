#include <algorithm>
#include <cstdio>
#include <map>

#include "cli/commands.h"
#include "formats/gguf.h"
#include "models/model_config.h"
#include "quant/quant.h"
#include "tokenizer/tokenizer.h"

namespace osprey::cli {

namespace {

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) b /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", b, units[u]);
  return buf;
}

std::string shape(const std::vector<int64_t>& d) {
  std::string s;
  for (size_t i = 0; i < d.size(); ++i) s += (i ? " x " : "") + std::to_string(d[i]);
  return s;
}

struct InspectOptions {
  std::string path;
  bool all_metadata = false, no_tensors = false;
  int64_t ctx = 0;
};

void inspect(const InspectOptions& o) {
  auto opened = GgufFile::open(o.path);
  if (!opened.ok()) throw Failure{opened.status().message()};
  const GgufFile& f = *opened;
  std::printf("file:        %s (%s)\n", f.path().c_str(), human_bytes(static_cast<double>(f.file_size())).c_str());
  std::printf("format:      GGUF v%u, %zu tensors, %zu metadata keys, alignment %llu\n", f.version(), f.tensors().size(),
              f.metadata().size(), static_cast<unsigned long long>(f.alignment()));

  auto config = ModelConfig::from_gguf(f);
  if (config.ok()) {
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
      std::printf("  %-20s %s\n", "type", v.kind == VocabKind::kSpm ? "SentencePiece BPE (llama)" : "byte-level BPE (gpt2)");
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
    std::printf("  %-42s %s\n", k.c_str(), v.to_display(o.all_metadata ? 64 : 8).c_str());
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
  }
  if (config.ok()) {
    const ModelConfig& c = *config;
    const int64_t n_ctx = o.ctx > 0 ? o.ctx : std::min<int64_t>(c.n_ctx_train, 4096);
    const double kv = 2.0 * c.n_layer * n_ctx * c.n_head_kv * c.head_dim * 2;  // fp16 K and V
    const int64_t nb = 64;
    const double act = 4.0 * (nb * (4 * c.n_embd + 2 * c.n_head * c.head_dim + 2 * c.n_head_kv * c.head_dim + 2 * c.n_ff) +
                              c.n_vocab + 2 * n_ctx);
    std::printf("memory:      %s to run with a %lld-token context (weights %s mapped, KV cache %s, activations %s)\n",
                human_bytes(static_cast<double>(total) + kv + act).c_str(), static_cast<long long>(n_ctx),
                human_bytes(static_cast<double>(total)).c_str(), human_bytes(kv).c_str(), human_bytes(act).c_str());
  }
}

}  // namespace

void register_inspect(CLI::App& app) {
  auto o = std::make_shared<InspectOptions>();
  CLI::App* cmd = app.add_subcommand("inspect", "Show a model file's architecture, tokenizer, tensors and memory needs");
  cmd->add_option("file", o->path, "GGUF file")->required();
  cmd->add_flag("--all-metadata", o->all_metadata, "Also show the tokenizer arrays, up to 64 items each");
  cmd->add_flag("--no-tensors", o->no_tensors, "Leave out the tensor table");
  cmd->add_option("-c,--ctx-size", o->ctx, "Context size for the memory estimate (0: the model's, at most 4096)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 24));
  cmd->callback([o] { inspect(*o); });
}

}  // namespace osprey::cli
