// How a Hugging Face model folder and a GGUF file name the same model: the
// architecture classes, config.json fields and GGUF keys, tensor names, and
// the row order of Q and K. One table serves both directions (`convert`
// and `synth --format hf`), so the two cannot drift apart.
//
// Families so far: Llama (and Mistral), Qwen2 and Qwen3.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/gguf.h"
#include "osprey/status.h"

namespace osprey::hf {

struct Arch {
  const char* hf_class;   // config.json "architectures"[0]
  const char* model_type; // config.json "model_type"
  const char* gguf;       // general.architecture
  // Llama's Q and K rows are stored per head as [first halves | second
  // halves] in Hugging Face files and interleaved in GGUF (the rope pairs
  // adjacent dimensions there); Qwen's rope pairs halves in both.
  bool permute_qk;
};

// The architecture of a config.json, or an error listing the supported ones.
Expected<const Arch*> arch_from_config(const nlohmann::json& config, const std::string& where);
// The architecture for a GGUF general.architecture, or null.
const Arch* arch_from_gguf(const std::string& gguf_arch);

// GGUF metadata ("<arch>.block_count" and so on) from config.json.
Expected<std::vector<std::pair<std::string, GgufValue>>> gguf_metadata(const Arch& arch, const nlohmann::json& config,
                                                                      const std::string& where);
// config.json from a GGUF file's metadata (the inverse of gguf_metadata).
Expected<nlohmann::json> hf_config(const Arch& arch, const GgufFile& file);

// The GGUF name of a Hugging Face tensor; nullopt for one GGUF has no use for
// (rotary_emb.inv_freq). Unknown names are errors for the caller to report.
std::optional<std::string> gguf_tensor_name(const std::string& hf_name, bool& ignored);
// The Hugging Face name of a GGUF tensor, or nullopt.
std::optional<std::string> hf_tensor_name(const std::string& gguf_name);

// Q and K rows (and their biases): which heads-count they permute by, or 0
// for a tensor left as it is.
int64_t qk_permute_heads(const Arch& arch, const std::string& gguf_name, int64_t n_head, int64_t n_head_kv);
// Reorders the rows of a [rows, cols] matrix of n_head heads: to_gguf
// interleaves each head's halves, !to_gguf undoes it.
void permute_qk_rows(const float* in, float* out, int64_t rows, int64_t cols, int64_t n_head, bool to_gguf);

// Llama 3's rope frequency factors (rope_scaling.rope_type "llama3"), one per
// pair of rotated dimensions, as GGUF's rope_freqs.weight holds them.
std::vector<float> llama3_rope_factors(int64_t head_dim, double base, double factor, double low_freq_factor,
                                       double high_freq_factor, double original_context);

}  // namespace osprey::hf
