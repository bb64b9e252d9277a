#include "models/model_config.h"

#include "models/family.h"

#include <cmath>
#include <cstdio>

namespace osprey {

namespace {

Status read_field(const GgufFile& f, const std::string& key, bool required, int64_t& out) {
  auto v = required ? f.get_int(key) : f.get_int(key, out);
  if (!v.ok()) return v.status();
  out = *v;
  return Status::Ok();
}

Status read_field(const GgufFile& f, const std::string& key, bool required, double& out) {
  auto v = required ? f.get_float(key) : f.get_float(key, out);
  if (!v.ok()) return v.status();
  out = *v;
  return Status::Ok();
}

std::string show(int64_t v) { return std::to_string(v); }
std::string show(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

}  // namespace

const char* pooling_name(Pooling p) {
  switch (p) {
    case Pooling::kMean: return "mean";
    case Pooling::kCls: return "first-token";
    case Pooling::kRank: return "rank";
    case Pooling::kNone:
    case Pooling::kLast: break;
  }
  return "last-token";
}

const std::vector<std::string>& supported_architectures() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const Family* f : all_families()) n.push_back(f->arch);
    return n;
  }();
  return names;
}

Expected<ModelConfig> ModelConfig::from_gguf(const GgufFile& file) {
  ModelConfig c;
  OSPREY_ASSIGN_OR_RETURN(c.arch, file.get_string("general.architecture"));
  OSPREY_ASSIGN_OR_RETURN(c.name, file.get_string("general.name", ""));
  c.family = find_family(c.arch);
  if (c.family == nullptr) {
    std::string list;
    for (const std::string& a : supported_architectures()) list += (list.empty() ? "" : ", ") + a;
    return Unsupported(file.path() + ": architecture '" + c.arch + "' is not supported (supported: " + list + ")");
  }
  c.rope_style = c.family->rope_style;
  const std::string prefix = c.arch + ".";
#define OSPREY_READ_FIELD(type, member, key, required, def) \
  OSPREY_TRY(read_field(file, prefix + key, required, c.member));
  OSPREY_MODEL_CONFIG_FIELDS(OSPREY_READ_FIELD)
#undef OSPREY_READ_FIELD
  OSPREY_ASSIGN_OR_RETURN(c.rope_scaling_type, file.get_string(prefix + "rope.scaling.type", "none"));

  OSPREY_ASSIGN_OR_RETURN(c.causal, file.get_bool(prefix + "attention.causal", true));
  OSPREY_ASSIGN_OR_RETURN(const int64_t pooling, file.get_int(prefix + "pooling_type", 0));
  if (pooling < 0 || pooling > static_cast<int64_t>(Pooling::kRank))
    return CorruptFile(file.path() + ": pooling_type " + std::to_string(pooling) +
                       " is not one of 0 (none), 1 (mean), 2 (cls), 3 (last), 4 (rank)");
  c.pooling = static_cast<Pooling>(pooling);

  if (c.n_head_kv == 0) c.n_head_kv = c.n_head;
  if (c.n_head > 0 && c.head_dim == 0) c.head_dim = c.n_embd / c.n_head;
  if (c.head_dim_v == 0) c.head_dim_v = c.head_dim;
  if (c.rope_dim == 0) c.rope_dim = c.head_dim;
  if (c.n_vocab == 0) {
    if (const GgufValue* tokens = file.find("tokenizer.ggml.tokens")) c.n_vocab = static_cast<int64_t>(tokens->array_size());
    if (const GgufTensorInfo* emb = file.find_tensor("token_embd.weight"); emb && emb->dims.size() == 2)
      c.n_vocab = emb->dims[1];
  }

  auto bad = [&](const std::string& what) { return CorruptFile(file.path() + ": " + what); };
  auto in_range = [](int64_t v, int64_t lo, int64_t hi) { return v >= lo && v <= hi; };
  if (!in_range(c.n_embd, 1, 1 << 16)) return bad("embedding_length " + show(c.n_embd) + " is out of range");
  if (!in_range(c.n_layer, 1, 1024)) return bad("block_count " + show(c.n_layer) + " is out of range");
  if (!in_range(c.n_ff, 1, 1 << 20)) return bad("feed_forward_length " + show(c.n_ff) + " is out of range");
  if (!in_range(c.n_head, 1, 1024)) return bad("attention.head_count " + show(c.n_head) + " is out of range");
  if (!in_range(c.n_head_kv, 1, c.n_head) || c.n_head % c.n_head_kv != 0)
    return bad("attention.head_count_kv " + show(c.n_head_kv) + " must divide head_count " + show(c.n_head));
  if (!in_range(c.head_dim, 2, 1024) || c.head_dim % 2 != 0) return bad("head size " + show(c.head_dim) + " is invalid");
  if (c.head_dim_v != c.head_dim) return Unsupported(file.path() + ": different key and value head sizes");
  if (!in_range(c.rope_dim, 2, c.head_dim) || c.rope_dim % 2 != 0)
    return bad("rope.dimension_count " + show(c.rope_dim) + " is invalid");
  if (!in_range(c.n_ctx_train, 1, 1 << 24)) return bad("context_length " + show(c.n_ctx_train) + " is out of range");
  if (!in_range(c.n_vocab, 1, 1 << 22)) return bad("vocabulary size " + show(c.n_vocab) + " is out of range");
  if (!(c.rope_freq_base > 0) || !std::isfinite(c.rope_freq_base)) return bad("rope.freq_base must be positive");
  if (!(c.norm_eps > 0) || c.norm_eps > 1) return bad("layer_norm_rms_epsilon must be in (0, 1]");
  if (!(c.ln_eps > 0) || c.ln_eps > 1) return bad("layer_norm_epsilon must be in (0, 1]");
  if (c.rope_scaling_type == "linear") {
    if (!(c.rope_scale_linear > 0) || !std::isfinite(c.rope_scale_linear)) return bad("rope.scaling.factor must be positive");
  } else if (c.rope_scaling_type == "none") {
    c.rope_scale_linear = 1.0;
  } else if (c.rope_scaling_type == "yarn") {
    if (!(c.rope_scale_linear >= 1) || !std::isfinite(c.rope_scale_linear) || c.rope_scale_linear > 1024)
      return bad("rope.scaling.factor " + show(c.rope_scale_linear) + " must be in [1, 1024] for YaRN");
    if (!in_range(c.n_ctx_orig, 1, 1 << 24))
      return bad("YaRN needs rope.scaling.original_context_length (it is " + show(c.n_ctx_orig) + ")");
    if (!(c.yarn_beta_fast > 0) || !(c.yarn_beta_slow > 0) || !std::isfinite(c.yarn_beta_fast + c.yarn_beta_slow))
      return bad("YaRN's beta_fast and beta_slow must be positive");
    // The pairs whose wavelength fits beta_fast (beta_slow) times into the
    // original context start (finish) the blend.
    auto corr_dim = [&](double rotations) {
      return static_cast<double>(c.rope_dim) *
             std::log(static_cast<double>(c.n_ctx_orig) / (rotations * 2 * M_PI)) / (2 * std::log(c.rope_freq_base));
    };
    c.yarn.ext_factor = 1.0;
    c.yarn.low = std::max(0.0, std::floor(corr_dim(c.yarn_beta_fast)));
    c.yarn.high = std::min(static_cast<double>(c.rope_dim - 1), std::ceil(corr_dim(c.yarn_beta_slow)));
  } else {
    return Unsupported(file.path() + ": rope scaling type '" + c.rope_scaling_type +
                       "' is not supported yet (osprey runs none, linear and yarn, and LongRoPE factor tensors)");
  }
  if (!(c.rope_attn_factor > 0) || !std::isfinite(c.rope_attn_factor) || c.rope_attn_factor > 16)
    return bad("rope.scaling.attn_factor " + show(c.rope_attn_factor) + " is out of range");
  if (!in_range(c.n_swa, 0, 1 << 24)) return bad("attention.sliding_window " + show(c.n_swa) + " is out of range");
  for (double cap : {c.attn_softcap, c.final_softcap})
    if (!(cap >= 0) || !std::isfinite(cap)) return bad("a logit soft-cap must be a finite value >= 0");

  if (c.n_expert != 0 || c.n_expert_used != 0) {
    if (!in_range(c.n_expert, 1, 1024)) return bad("expert_count " + show(c.n_expert) + " is out of range (1..1024)");
    if (!in_range(c.n_expert_used, 1, c.n_expert))
      return bad("expert_used_count " + show(c.n_expert_used) + " must be between 1 and expert_count " + show(c.n_expert));
    if (c.n_ff_exp == 0) c.n_ff_exp = c.n_ff;
    if (!in_range(c.n_ff_exp, 1, 1 << 20)) return bad("expert_feed_forward_length " + show(c.n_ff_exp) + " is out of range");
  }

  // Every layer alike unless the family says otherwise; with experts, every
  // layer's feed-forward block is a mixture.
  c.layers.assign(c.n_layer, LayerConfig{0, c.rope_freq_base, c.rope_scale_linear, c.n_expert > 0});
  c.attn_scale = 1.0 / std::sqrt(static_cast<double>(c.head_dim));
  OSPREY_TRY(c.family->configure(file, c));
  if (c.pooling == Pooling::kRank && c.causal)
    return Unsupported(file.path() + ": pooling_type rank on a decoder (a " + c.arch +
                       " reranker) is not supported; osprey reranks with bert-style cross-encoders");
  return c;
}

std::vector<std::pair<std::string, std::string>> ModelConfig::describe() const {
  std::vector<std::pair<std::string, std::string>> out;
  out.emplace_back("arch", arch);
#define OSPREY_DESCRIBE_FIELD(type, member, key, required, def) out.emplace_back(#member, show(member));
  OSPREY_MODEL_CONFIG_FIELDS(OSPREY_DESCRIBE_FIELD)
#undef OSPREY_DESCRIBE_FIELD
  out.emplace_back("rope_scaling", rope_scaling_type);
  out.emplace_back("rope_style", rope_style == kernels::RopeStyle::kNeox ? "neox" : "interleaved");
  out.emplace_back("activation", post_layer_norm                            ? "gelu (erf)"
                                 : activation == kernels::Activation::kGelu ? "gelu (tanh)"
                                                                            : "silu");
  if (embd_scale != 1.0) out.emplace_back("embedding_scale", show(embd_scale));
  out.emplace_back("attention_scale", show(attn_scale));
  if (!causal) out.emplace_back("attention", "bidirectional (encoder)");
  out.emplace_back("pooling", pooling_name(pooling));
  if (n_expert > 0) {
    out.emplace_back("experts", std::to_string(n_expert_used) + " of " + std::to_string(n_expert) + " active, " +
                                    std::to_string(n_ff_exp) + " wide (" +
                                    (gating == Gating::kSoftmax ? "softmax then top-k" : "top-k then softmax") +
                                    (renormalize_experts ? ", renormalized" : "") + ")");
  }
  out.emplace_back("layers", layer_summary());
  return out;
}

std::string ModelConfig::layer_summary() const {
  // Runs of identical layers, e.g. "5 x window 512 (rope 10000), 1 x global (rope 1e+06), ..." collapsed by kind.
  int64_t global = 0, windowed = 0;
  for (const LayerConfig& l : layers) (l.window > 0 ? windowed : global) += 1;
  std::string s;
  if (global > 0) {
    s += std::to_string(global) + " global";
    for (const LayerConfig& l : layers)
      if (l.window == 0) {
        s += " (rope base " + show(l.rope_base) + (l.rope_scale != 1.0 ? ", scale " + show(l.rope_scale) : "") + ")";
        break;
      }
  }
  if (windowed > 0) {
    for (const LayerConfig& l : layers)
      if (l.window > 0) {
        s += (s.empty() ? "" : ", ") + std::to_string(windowed) + " sliding-window of " + std::to_string(l.window) +
             " (rope base " + show(l.rope_base) + ")";
        break;
      }
    // The pattern, as a string of G (global) and W (window) per layer.
    s += ": ";
    for (const LayerConfig& l : layers) s += l.window > 0 ? 'W' : 'G';
  }
  return s;
}

}  // namespace osprey
