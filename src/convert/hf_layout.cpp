#include "convert/hf_layout.h"

#include <cmath>
#include <cstring>

namespace osprey::hf {

namespace {

using json = nlohmann::json;

constexpr Arch kArchs[] = {
    {"LlamaForCausalLM", "llama", "llama", true},
    {"MistralForCausalLM", "mistral", "llama", true},
    {"Qwen2ForCausalLM", "qwen2", "qwen2", false},
    {"Qwen3ForCausalLM", "qwen3", "qwen3", false},
};

// Names outside the layers, then names inside layer N (after "model.layers.N.").
constexpr std::pair<const char*, const char*> kGlobalNames[] = {
    {"model.embed_tokens.weight", "token_embd.weight"},
    {"model.norm.weight", "output_norm.weight"},
    {"lm_head.weight", "output.weight"},
};
constexpr std::pair<const char*, const char*> kLayerNames[] = {
    {"input_layernorm.weight", "attn_norm.weight"},
    {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.q_proj.bias", "attn_q.bias"},
    {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.k_proj.bias", "attn_k.bias"},
    {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.v_proj.bias", "attn_v.bias"},
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"self_attn.o_proj.bias", "attn_output.bias"},
    {"self_attn.q_norm.weight", "attn_q_norm.weight"},
    {"self_attn.k_norm.weight", "attn_k_norm.weight"},
    {"post_attention_layernorm.weight", "ffn_norm.weight"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
};
constexpr const char* kIgnoredInLayer[] = {"self_attn.rotary_emb.inv_freq"};

// "<prefix><digits>.<rest>" -> (layer, rest).
bool split_layer(const std::string& name, const std::string& prefix, std::string& layer, std::string& rest) {
  if (name.rfind(prefix, 0) != 0) return false;
  size_t i = prefix.size();
  while (i < name.size() && name[i] >= '0' && name[i] <= '9') ++i;
  if (i == prefix.size() || i >= name.size() || name[i] != '.') return false;
  layer = name.substr(prefix.size(), i - prefix.size());
  rest = name.substr(i + 1);
  return true;
}

// Llama 3.2's rope scaling (what synth writes): factor 32 over an original 8192 positions.
constexpr double kLlama3Factor = 32.0, kLlama3Low = 1.0, kLlama3High = 4.0, kLlama3Original = 8192.0;

}  // namespace

Expected<const Arch*> arch_from_config(const json& config, const std::string& where) {
  std::string cls;
  if (config.contains("architectures") && config["architectures"].is_array() && !config["architectures"].empty() &&
      config["architectures"][0].is_string())
    cls = config["architectures"][0].get<std::string>();
  for (const Arch& a : kArchs)
    if (cls == a.hf_class) return &a;
  std::string known;
  for (const Arch& a : kArchs) known += std::string(known.empty() ? "" : ", ") + a.hf_class;
  return Unsupported(where + ": architecture '" + cls + "' cannot be read from a Hugging Face folder yet (osprey reads " +
                     known + "; convert other families with llama.cpp's convert_hf_to_gguf.py)");
}

const Arch* arch_from_gguf(const std::string& gguf_arch) {
  for (const Arch& a : kArchs)
    if (gguf_arch == a.gguf) return &a;
  return nullptr;
}

Expected<std::vector<std::pair<std::string, GgufValue>>> gguf_metadata(const Arch& arch, const json& config,
                                                                      const std::string& where) {
  std::vector<std::pair<std::string, GgufValue>> kv;
  const std::string p = std::string(arch.gguf) + ".";
  auto integer = [&](const char* key, std::optional<int64_t> fallback) -> Expected<int64_t> {
    if (!config.contains(key) || config[key].is_null()) {
      if (fallback) return *fallback;
      return CorruptFile(where + ": '" + key + "' is missing");
    }
    if (!config[key].is_number_integer() || config[key].get<int64_t>() <= 0 || config[key].get<int64_t>() > (int64_t{1} << 31))
      return CorruptFile(where + ": '" + key + "' is " + config[key].dump() + ", not a positive whole number");
    return config[key].get<int64_t>();
  };
  auto number = [&](const char* key, double fallback) -> Expected<double> {
    if (!config.contains(key) || config[key].is_null()) return fallback;
    if (!config[key].is_number() || !std::isfinite(config[key].get<double>()) || config[key].get<double>() <= 0)
      return CorruptFile(where + ": '" + key + "' is " + config[key].dump() + ", not a positive number");
    return config[key].get<double>();
  };
  OSPREY_ASSIGN_OR_RETURN(const int64_t n_embd, integer("hidden_size", std::nullopt));
  OSPREY_ASSIGN_OR_RETURN(const int64_t n_layer, integer("num_hidden_layers", std::nullopt));
  OSPREY_ASSIGN_OR_RETURN(const int64_t n_ff, integer("intermediate_size", std::nullopt));
  OSPREY_ASSIGN_OR_RETURN(const int64_t n_head, integer("num_attention_heads", std::nullopt));
  OSPREY_ASSIGN_OR_RETURN(const int64_t n_head_kv, integer("num_key_value_heads", n_head));
  OSPREY_ASSIGN_OR_RETURN(const int64_t n_ctx, integer("max_position_embeddings", std::nullopt));
  OSPREY_ASSIGN_OR_RETURN(const int64_t head_dim, integer("head_dim", n_embd / n_head));
  OSPREY_ASSIGN_OR_RETURN(const double rope_theta, number("rope_theta", 10000.0));
  OSPREY_ASSIGN_OR_RETURN(const double eps, number("rms_norm_eps", 1e-6));
  kv.emplace_back("general.architecture", GgufValue::str(arch.gguf));
  kv.emplace_back(p + "context_length", GgufValue::u32(static_cast<uint32_t>(n_ctx)));
  kv.emplace_back(p + "embedding_length", GgufValue::u32(static_cast<uint32_t>(n_embd)));
  kv.emplace_back(p + "block_count", GgufValue::u32(static_cast<uint32_t>(n_layer)));
  kv.emplace_back(p + "feed_forward_length", GgufValue::u32(static_cast<uint32_t>(n_ff)));
  kv.emplace_back(p + "attention.head_count", GgufValue::u32(static_cast<uint32_t>(n_head)));
  kv.emplace_back(p + "attention.head_count_kv", GgufValue::u32(static_cast<uint32_t>(n_head_kv)));
  kv.emplace_back(p + "rope.freq_base", GgufValue::f32(static_cast<float>(rope_theta)));
  kv.emplace_back(p + "attention.layer_norm_rms_epsilon", GgufValue::f32(static_cast<float>(eps)));
  kv.emplace_back(p + "rope.dimension_count", GgufValue::u32(static_cast<uint32_t>(head_dim)));
  if (head_dim * n_head != n_embd) {
    kv.emplace_back(p + "attention.key_length", GgufValue::u32(static_cast<uint32_t>(head_dim)));
    kv.emplace_back(p + "attention.value_length", GgufValue::u32(static_cast<uint32_t>(head_dim)));
  }
  if (config.contains("rope_scaling") && config["rope_scaling"].is_object()) {
    const json& rs = config["rope_scaling"];
    const std::string type = rs.value("rope_type", rs.value("type", std::string()));
    if (type == "linear") {
      kv.emplace_back(p + "rope.scaling.type", GgufValue::str("linear"));
      kv.emplace_back(p + "rope.scaling.factor", GgufValue::f32(rs.value("factor", 1.0f)));
    } else if (type != "llama3" && type != "default") {  // llama3: the caller writes rope_freqs.weight
      return Unsupported(where + ": rope_scaling type '" + type + "' is not supported yet (linear and llama3 are)");
    }
  }
  return kv;
}

Expected<json> hf_config(const Arch& arch, const GgufFile& f) {
  const std::string p = std::string(arch.gguf) + ".";
  json c;
  c["architectures"] = json::array({arch.hf_class});
  c["model_type"] = arch.model_type;
  OSPREY_ASSIGN_OR_RETURN(const int64_t n_embd, f.get_int(p + "embedding_length"));
  OSPREY_ASSIGN_OR_RETURN(const int64_t n_head, f.get_int(p + "attention.head_count"));
  c["hidden_size"] = n_embd;
  OSPREY_ASSIGN_OR_RETURN(c["num_hidden_layers"], f.get_int(p + "block_count"));
  OSPREY_ASSIGN_OR_RETURN(c["intermediate_size"], f.get_int(p + "feed_forward_length"));
  c["num_attention_heads"] = n_head;
  OSPREY_ASSIGN_OR_RETURN(c["num_key_value_heads"], f.get_int(p + "attention.head_count_kv", n_head));
  OSPREY_ASSIGN_OR_RETURN(c["max_position_embeddings"], f.get_int(p + "context_length"));
  OSPREY_ASSIGN_OR_RETURN(const int64_t head_dim, f.get_int(p + "attention.key_length", n_embd / n_head));
  c["head_dim"] = head_dim;
  OSPREY_ASSIGN_OR_RETURN(c["rope_theta"], f.get_float(p + "rope.freq_base", 10000.0));
  OSPREY_ASSIGN_OR_RETURN(c["rms_norm_eps"], f.get_float(p + "attention.layer_norm_rms_epsilon", 1e-6));
  c["tie_word_embeddings"] = f.find_tensor("output.weight") == nullptr;
  c["attention_bias"] = f.find_tensor("blk.0.attn_q.bias") != nullptr;
  if (const GgufTensorInfo* e = f.find_tensor("token_embd.weight"); e != nullptr && e->dims.size() == 2)
    c["vocab_size"] = e->dims[1];
  OSPREY_ASSIGN_OR_RETURN(const std::string scaling, f.get_string(p + "rope.scaling.type", "none"));
  if (scaling == "linear") {
    OSPREY_ASSIGN_OR_RETURN(const double factor, f.get_float(p + "rope.scaling.factor", 1.0));
    c["rope_scaling"] = {{"rope_type", "linear"}, {"factor", factor}};
  } else if (scaling != "none") {
    return Unsupported(f.path() + ": rope scaling '" + scaling + "' has no Hugging Face form here yet");
  }
  if (const GgufTensorInfo* t = f.find_tensor("rope_freqs.weight"); t != nullptr) {
    // Only Llama 3's own factors can be written back as rope_scaling.
    const std::vector<float> want = llama3_rope_factors(head_dim, c["rope_theta"].get<double>(), kLlama3Factor,
                                                        kLlama3Low, kLlama3High, kLlama3Original);
    if (t->type != DType::kF32 || t->n_elements != static_cast<int64_t>(want.size()) ||
        std::memcmp(t->data, want.data(), want.size() * sizeof(float)) != 0)
      return Unsupported(f.path() + ": rope_freqs.weight holds factors other than Llama 3's");
    c["rope_scaling"] = {{"rope_type", "llama3"},          {"factor", kLlama3Factor},
                         {"low_freq_factor", kLlama3Low},  {"high_freq_factor", kLlama3High},
                         {"original_max_position_embeddings", static_cast<int64_t>(kLlama3Original)}};
  }
  OSPREY_ASSIGN_OR_RETURN(const int64_t bos, f.get_int("tokenizer.ggml.bos_token_id", -1));
  OSPREY_ASSIGN_OR_RETURN(const int64_t eos, f.get_int("tokenizer.ggml.eos_token_id", -1));
  if (bos >= 0) c["bos_token_id"] = bos;
  if (eos >= 0) c["eos_token_id"] = eos;
  return c;
}

std::optional<std::string> gguf_tensor_name(const std::string& hf_name, bool& ignored) {
  ignored = false;
  for (const auto& [hf, gguf] : kGlobalNames)
    if (hf_name == hf) return std::string(gguf);
  std::string layer, rest;
  if (!split_layer(hf_name, "model.layers.", layer, rest)) return std::nullopt;
  for (const auto& [hf, gguf] : kLayerNames)
    if (rest == hf) return "blk." + layer + "." + gguf;
  for (const char* skip : kIgnoredInLayer)
    if (rest == skip) ignored = true;
  return std::nullopt;
}

std::optional<std::string> hf_tensor_name(const std::string& gguf_name) {
  for (const auto& [hf, gguf] : kGlobalNames)
    if (gguf_name == gguf) return std::string(hf);
  std::string layer, rest;
  if (!split_layer(gguf_name, "blk.", layer, rest)) return std::nullopt;
  for (const auto& [hf, gguf] : kLayerNames)
    if (rest == gguf) return "model.layers." + layer + "." + hf;
  return std::nullopt;
}

int64_t qk_permute_heads(const Arch& arch, const std::string& gguf_name, int64_t n_head, int64_t n_head_kv) {
  if (!arch.permute_qk) return 0;
  std::string layer, rest;
  if (!split_layer(gguf_name, "blk.", layer, rest)) return 0;
  if (rest == "attn_q.weight" || rest == "attn_q.bias") return n_head;
  if (rest == "attn_k.weight" || rest == "attn_k.bias") return n_head_kv;
  return 0;
}

void permute_qk_rows(const float* in, float* out, int64_t rows, int64_t cols, int64_t n_head, bool to_gguf) {
  const int64_t hd = rows / n_head, half = hd / 2;
  for (int64_t h = 0; h < n_head; ++h)
    for (int64_t j = 0; j < half; ++j)
      for (int64_t s = 0; s < 2; ++s) {
        const int64_t interleaved = h * hd + 2 * j + s, halves = h * hd + s * half + j;
        const int64_t from = to_gguf ? halves : interleaved, to = to_gguf ? interleaved : halves;
        std::memcpy(out + to * cols, in + from * cols, static_cast<size_t>(cols) * sizeof(float));
      }
}

std::vector<float> llama3_rope_factors(int64_t head_dim, double base, double factor, double low_freq_factor,
                                       double high_freq_factor, double original_context) {
  std::vector<float> out;
  for (int64_t i = 0; i < head_dim / 2; ++i) {
    const double freq = std::pow(base, -2.0 * static_cast<double>(i) / static_cast<double>(head_dim));
    const double wavelen = 2 * M_PI / freq;
    if (wavelen < original_context / high_freq_factor) {
      out.push_back(1.0f);
    } else if (wavelen > original_context / low_freq_factor) {
      out.push_back(static_cast<float>(factor));
    } else {
      const double smooth = (original_context / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
      out.push_back(static_cast<float>(1.0 / ((1 - smooth) / factor + smooth)));
    }
  }
  return out;
}

}  // namespace osprey::hf
