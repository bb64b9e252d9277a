#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <optional>

#include <unistd.h>

#include "cli/commands.h"
#include "cli/synth.h"
#include "convert/gguf_to_hf.h"
#include "convert/hf_tokenizer_files.h"
#include "tokenizer/vocab.h"
#include "core/log.h"
#include "formats/file_type.h"
#include "quant/quant.h"

namespace osprey::cli {

namespace {

// splitmix64: fast, and the same numbers on every platform and compiler.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double uniform() { return (static_cast<double>(next() >> 11) + 0.5) * (1.0 / 9007199254740992.0); }
  // Box-Muller, two values per call pair.
  float normal() {
    if (have_spare_) {
      have_spare_ = false;
      return spare_;
    }
    const double r = std::sqrt(-2.0 * std::log(uniform())), a = 6.283185307179586 * uniform();
    spare_ = static_cast<float>(r * std::sin(a));
    have_spare_ = true;
    return static_cast<float>(r * std::cos(a));
  }

 private:
  uint64_t s_;
  float spare_ = 0;
  bool have_spare_ = false;
};

uint64_t hash_name(const std::string& s, uint64_t seed) {
  uint64_t h = 1469598103934665603ull ^ seed;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// The format a matrix is stored in: the requested one when its blocks fit
// the row length, otherwise the fallback llama.cpp's quantizer also uses
// (for Q2_K and Q3_K it uses IQ4_NL, which osprey cannot run, so Q4_0).
DType storage_type(DType want, int64_t n_in) {
  const QuantOps* ops = quant_ops(want);
  if (n_in % ops->block_len == 0) return want;
  DType fallback = DType::kF16;
  if (want == DType::kQ2_K || want == DType::kQ3_K) fallback = DType::kQ4_0;
  if (want == DType::kQ4_K) fallback = DType::kQ5_0;
  if (want == DType::kQ5_K) fallback = DType::kQ5_1;
  if (want == DType::kQ6_K) fallback = DType::kQ8_0;
  return n_in % quant_ops(fallback)->block_len == 0 ? fallback : DType::kF16;
}

class SynthWriter {
 public:
  SynthWriter(GgufWriter& w, DType type, uint64_t seed) : w_(w), type_(type), seed_(seed) {}

  // dims {n_in, n_out}; row r (n_in values) comes from fill(r, row).
  // `n_expert` > 1: n_out rows per expert, stacked as GGUF dims {n_in, n_out, n_expert}; fill gets the stacked row.
  void matrix(const std::string& name, int64_t n_in, int64_t n_out, const std::function<void(int64_t, float*)>& fill,
              int64_t n_expert = 1) {
    const int64_t per_expert = n_out;
    n_out *= n_expert;
    // MXFP4 is a format for experts (as gpt-oss ships it); every other matrix then takes Q8_0.
    const DType want = type_ == DType::kMXFP4 && n_expert <= 1 ? DType::kQ8_0 : type_;
    const DType t = storage_type(want, n_in);
    if (t != want) ++fallbacks_;
    const QuantOps* ops = quant_ops(t);
    const int64_t row_bytes = quant_row_bytes(*ops, n_in);
    std::vector<uint8_t> bytes(static_cast<size_t>(row_bytes * n_out));
    std::vector<float> row(n_in);
    for (int64_t r = 0; r < n_out; ++r) {
      fill(r, row.data());
      ops->quantize(row.data(), bytes.data() + r * row_bytes, n_in);
    }
    add(name, t, n_expert > 1 ? std::vector<int64_t>{n_in, per_expert, n_expert} : std::vector<int64_t>{n_in, n_out},
        std::move(bytes));
  }

  // dims {n_in, n_out}; values std * N(0, 1).
  void random_matrix(const std::string& name, int64_t n_in, int64_t n_out, float std, int64_t n_expert = 1) {
    Rng rng(hash_name(name, seed_));
    matrix(
        name, n_in, n_out,
        [&](int64_t, float* row) {
          for (int64_t i = 0; i < n_in; ++i) row[i] = std * rng.normal();
        },
        n_expert);
  }

  // A 1-D f32 tensor from a generator.
  void vector(const std::string& name, int64_t n, const std::function<float(int64_t, Rng&)>& value) {
    tensor(name, {n}, value);
  }
  // An f32 tensor of any shape, element after element.
  void tensor(const std::string& name, std::vector<int64_t> dims, const std::function<float(int64_t, Rng&)>& value) {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    std::vector<uint8_t> bytes(n * 4);
    Rng rng(hash_name(name, seed_));
    for (int64_t i = 0; i < n; ++i) {
      const float v = value(i, rng);
      std::memcpy(bytes.data() + i * 4, &v, 4);
    }
    add(name, DType::kF32, std::move(dims), std::move(bytes));
  }

  int fallbacks() const { return fallbacks_; }
  uint64_t seed() const { return seed_; }

 private:
  void add(const std::string& name, DType t, std::vector<int64_t> dims, std::vector<uint8_t> bytes) {
    const Status s = w_.add_tensor(name, t, std::move(dims), std::move(bytes));
    if (!s.ok()) throw Failure{s.message()};
  }
  GgufWriter& w_;
  DType type_;
  uint64_t seed_;
  int fallbacks_ = 0;
};

// Why synthetic models are built with a hidden successor chain:
// with random weights, the top two logits are often close, and two engines
// that round differently (activations are re-quantized to 8 bits before every
// matrix product, which turns 1e-7 float differences into whole
// quantization steps) disagree on about 1% of the logit spread. Greedy
// comparisons over 32 tokens then fail by chance. With tied embeddings the
// output head alone cannot fix this (e_j . (w * e_t) is symmetric in j and t),
// so the asymmetry is put in the network: the last layer's feed-forward block
// is a key -> value memory in which hidden unit k recognises "active" token
// a_k and writes the embedding of its successor on one random cycle. Every
// other weight stays random (scaled so each block contributes a modest
// amount), so all of the network is exercised, while next-token distributions
// are sharply peaked.
struct SuccessorChain {
  std::vector<float> emb;         // [n_vocab, n_embd] embedding rows before quantization
  std::vector<int32_t> active;    // active[k]: the token hidden unit k recognises
  std::vector<int32_t> successor; // successor[k]: the token unit k predicts
};

SuccessorChain build_chain(const SynthPreset& p, int64_t n_ff, int64_t n_special, uint64_t seed) {
  SuccessorChain c;
  const int64_t E = p.n_embd, V = p.n_vocab;
  const int64_t n_normal = V - n_special;
  const int64_t K = std::min<int64_t>(n_ff, n_normal);
  Rng rng(seed ^ 0x5eed5eedull);
  // A random choice of K active tokens among the ordinary ones, in random order.
  std::vector<int32_t> order(n_normal);
  for (int64_t i = 0; i < n_normal; ++i) order[i] = static_cast<int32_t>(i);
  for (int64_t i = n_normal - 1; i > 0; --i) std::swap(order[i], order[rng.next() % (i + 1)]);
  c.active.assign(order.begin(), order.begin() + K);
  c.successor.resize(K);
  for (int64_t k = 0; k < K; ++k) c.successor[k] = c.active[(k + 1) % K];
  c.emb.resize(V * E);
  std::vector<bool> is_active(V, false);
  for (int32_t a : c.active) is_active[a] = true;
  for (int64_t t = 0; t < V; ++t)
    if (is_active[t])
      for (int64_t d = 0; d < E; ++d) c.emb[t * E + d] = rng.normal();
  // Other tokens point the way an active token does, at a third of its
  // length: the memory still recognises them, but they rarely win the output.
  for (int64_t t = 0; t < V; ++t) {
    if (is_active[t]) continue;
    const float* a = c.emb.data() + c.active[rng.next() % K] * E;
    const bool special = t >= n_normal;
    for (int64_t d = 0; d < E; ++d)
      c.emb[t * E + d] = special ? 0.3f * rng.normal() : 0.3f * a[d] + 0.05f * rng.normal();
  }
  return c;
}

// Llama 3's frequency factors: long wavelengths are slowed by `factor`,
// short ones kept, and the band between blended smoothly.
float llama3_rope_factor(int64_t i, int64_t rope_dim, double base) {
  const double factor = 32.0, low = 1.0, high = 4.0, original_ctx = 8192.0;
  const double freq = std::pow(base, -2.0 * i / rope_dim);
  const double wavelen = 2 * M_PI / freq;
  if (wavelen < original_ctx / high) return 1.0f;
  if (wavelen > original_ctx / low) return static_cast<float>(factor);
  const double smooth = (original_ctx / wavelen - low) / (high - low);
  return static_cast<float>(1.0 / ((1 - smooth) / factor + smooth));
}

}  // namespace

namespace {
namespace fs = std::filesystem;
// A BERT-style encoder (models/families/bert.cpp): every matrix random at
// the scale that keeps its output near unit size, LayerNorms near identity
// and small biases. Post-norms keep the stream normalised whatever the depth.
void write_encoder_tensors(SynthWriter& s, const SynthPreset& p) {
  const int64_t E = p.n_embd, F = p.n_ff;
  auto inv_sqrt = [](int64_t n) { return 1.0f / std::sqrt(static_cast<float>(n)); };
  auto near_one = [](int64_t, Rng& r) { return 1.0f + 0.05f * r.normal(); };
  auto small = [](int64_t, Rng& r) { return 0.02f * r.normal(); };
  s.random_matrix("token_embd.weight", E, p.n_vocab, 1.0f);
  s.tensor("position_embd.weight", {E, p.n_ctx}, [](int64_t, Rng& r) { return 0.3f * r.normal(); });
  s.tensor("token_types.weight", {E, 2}, [](int64_t, Rng& r) { return 0.1f * r.normal(); });
  s.vector("token_embd_norm.weight", E, near_one);
  s.vector("token_embd_norm.bias", E, small);
  if (p.shape.pooling == 4) {  // a reranker's head: dense + tanh, then one score
    s.random_matrix("cls.weight", E, E, inv_sqrt(E));
    s.vector("cls.bias", E, small);
    s.random_matrix("cls.output.weight", E, 1, 3.0f * inv_sqrt(E));
    s.vector("cls.output.bias", 1, small);
  }
  for (int64_t l = 0; l < p.n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    for (const char* m : {"attn_q", "attn_k", "attn_v"}) {
      // Queries and keys a little larger than unit scores need, so attention is not flat.
      s.random_matrix(b + m + ".weight", E, E, (m[5] == 'v' ? 1.0f : 2.0f) * inv_sqrt(E));
      s.vector(b + m + ".bias", E, small);
    }
    s.random_matrix(b + "attn_output.weight", E, E, inv_sqrt(E));
    s.vector(b + "attn_output.bias", E, small);
    s.vector(b + "attn_output_norm.weight", E, near_one);
    s.vector(b + "attn_output_norm.bias", E, small);
    s.random_matrix(b + "ffn_up.weight", E, F, inv_sqrt(E));
    s.vector(b + "ffn_up.bias", F, small);
    s.random_matrix(b + "ffn_down.weight", F, E, 2.0f * inv_sqrt(F));
    s.vector(b + "ffn_down.bias", E, small);
    s.vector(b + "layer_output_norm.weight", E, near_one);
    s.vector(b + "layer_output_norm.bias", E, small);
  }
}

bool is_tokenizer_json(const std::string& path) {
  std::error_code ec;
  return !path.empty() && (fs::is_directory(path, ec) || (path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0));
}
}  // namespace

// --type, as a type osprey computes with; throws naming the ones it does.
std::optional<DType> weight_type(const std::string& name) {
  const auto type = dtype_from_name(name);
  const QuantOps* ops = type ? quant_ops(*type) : nullptr;
  if (ops == nullptr || ops->dot == nullptr)
    throw Failure{"unknown or unsupported weight type '" + name + "' (try " + supported_dtype_names() + ")"};
  return type;
}

void write_synth_model(const SynthOptions& o) {
  const SynthPreset* pp = find_synth_preset(o.preset);
  if (pp == nullptr) {
    std::string names;
    for (const auto& p : synth_presets()) names += std::string(names.empty() ? "" : ", ") + p.name;
    throw Failure{"unknown preset '" + o.preset + "' (presets: " + names + ")"};
  }
  SynthPreset p = *pp;
  // A preset made smaller (or wider): a draft model for the preset itself.
  if (o.n_ff > 0) {
    if (o.n_ff > 262144) throw Failure{"--n-ff must be at most 262144"};
    p.n_ff = o.n_ff;
  }
  if (o.n_layer > 0) {
    if (o.n_layer > 512) throw Failure{"--n-layer must be at most 512"};
    p.n_layer = o.n_layer;
  }
  if (o.n_embd > 0) {
    if (o.n_embd > 65536 || (p.shape.head_dim == 0 && (o.n_embd % p.n_head != 0 || (o.n_embd / p.n_head) % 2 != 0)))
      throw Failure{"--n-embd " + std::to_string(o.n_embd) + " must split into " + std::to_string(p.n_head) +
                    " heads of an even size"};
    p.n_embd = o.n_embd;
  }
  const std::optional<DType> type = weight_type(o.type);

  GgufWriter w;
  w.set("general.architecture", GgufValue::str(p.arch));
  w.set("general.name", GgufValue::str(p.model_name));
  if (const auto ft = file_type_of(*type)) w.set("general.file_type", GgufValue::u32(static_cast<uint32_t>(*ft)));
  if (is_tokenizer_json(o.vocab)) {
    // A Hugging Face tokenizer: its vocabulary, written as GGUF keys.
    auto v = Vocab::from_tokenizer_json(o.vocab);
    if (!v.ok()) throw Failure{v.status().message()};
    const std::string dir = fs::is_directory(o.vocab) ? o.vocab : fs::path(o.vocab).parent_path().string();
    auto tmpl = hf::folder_chat_template(dir);
    if (!tmpl.ok()) throw Failure{tmpl.status().message()};
    auto kv = hf::gguf_tokenizer_metadata(*v, v->size(), *tmpl, o.vocab);
    if (!kv.ok()) throw Failure{kv.status().message()};
    for (auto& [k, value] : *kv) w.set(k, std::move(value));
    p.n_vocab = v->size();
  } else if (o.vocab.size() > 4 && o.vocab.compare(o.vocab.size() - 4, 4, ".txt") == 0) {
    if (p.vocab != SynthVocab::kWordPiece)
      throw Failure{o.vocab + ": a vocab.txt is a WordPiece vocabulary, for the bert presets only"};
    p.n_vocab = wordpiece_vocab_from_txt(w, o.vocab);
  } else if (!o.vocab.empty()) {
    auto vf = GgufFile::open(o.vocab);
    if (!vf.ok()) throw Failure{vf.status().message()};
    for (const auto& [k, v] : vf->metadata())
      if (k.rfind("tokenizer.", 0) == 0) w.set(k, v);
    const GgufValue* toks = vf->find("tokenizer.ggml.tokens");
    if (toks == nullptr) throw Failure{o.vocab + ": has no tokenizer.ggml.tokens"};
    const auto n = static_cast<int64_t>(toks->array_size());
    if (n != p.n_vocab)
      log::warn("the vocabulary has " + std::to_string(n) + " tokens; the preset's " + std::to_string(p.n_vocab) +
                " is replaced so the embedding matches it");
    p.n_vocab = n;
  } else {
    synth_vocab(w, p, o.seed);
  }
  const std::string a = std::string(p.arch) + ".";
  const SynthFamilyShape& fs = p.shape;
  const int64_t hd = fs.head_dim > 0 ? fs.head_dim : p.n_embd / p.n_head;
  w.set(a + "context_length", GgufValue::u32(static_cast<uint32_t>(p.n_ctx)));
  w.set(a + "embedding_length", GgufValue::u32(static_cast<uint32_t>(p.n_embd)));
  w.set(a + "block_count", GgufValue::u32(static_cast<uint32_t>(p.n_layer)));
  w.set(a + "feed_forward_length", GgufValue::u32(static_cast<uint32_t>(p.n_ff)));
  w.set(a + "attention.head_count", GgufValue::u32(static_cast<uint32_t>(p.n_head)));
  w.set(a + "attention.head_count_kv", GgufValue::u32(static_cast<uint32_t>(p.n_head_kv)));
  w.set(a + "rope.freq_base", GgufValue::f32(static_cast<float>(p.rope_base)));
  w.set(a + "rope.dimension_count", GgufValue::u32(static_cast<uint32_t>(hd)));
  w.set(a + "attention.layer_norm_rms_epsilon", GgufValue::f32(static_cast<float>(p.norm_eps)));
  w.set(a + "vocab_size", GgufValue::u32(static_cast<uint32_t>(p.n_vocab)));
  if (fs.head_dim > 0) {
    w.set(a + "attention.key_length", GgufValue::u32(static_cast<uint32_t>(hd)));
    w.set(a + "attention.value_length", GgufValue::u32(static_cast<uint32_t>(hd)));
  }
  if (fs.window > 0) w.set(a + "attention.sliding_window", GgufValue::u32(static_cast<uint32_t>(fs.window)));
  if (fs.n_expert > 0) {
    w.set(a + "expert_count", GgufValue::u32(static_cast<uint32_t>(fs.n_expert)));
    w.set(a + "expert_used_count", GgufValue::u32(static_cast<uint32_t>(fs.n_expert_used)));
    if (fs.n_ff_exp > 0) w.set(a + "expert_feed_forward_length", GgufValue::u32(static_cast<uint32_t>(fs.n_ff_exp)));
  }
  if (fs.attn_softcap > 0) w.set(a + "attn_logit_softcapping", GgufValue::f32(static_cast<float>(fs.attn_softcap)));
  if (fs.final_softcap > 0) w.set(a + "final_logit_softcapping", GgufValue::f32(static_cast<float>(fs.final_softcap)));
  if (fs.yarn_factor > 0) {
    w.set(a + "rope.scaling.type", GgufValue::str("yarn"));
    w.set(a + "rope.scaling.factor", GgufValue::f32(static_cast<float>(fs.yarn_factor)));
    w.set(a + "rope.scaling.original_context_length", GgufValue::u32(static_cast<uint32_t>(fs.n_ctx_orig)));
  } else if (fs.n_ctx_orig > 0) {
    // LongRoPE's magnitude correction, as Phi-3's converter computes it.
    const double scale = static_cast<double>(p.n_ctx) / static_cast<double>(fs.n_ctx_orig);
    w.set(a + "rope.scaling.original_context_length", GgufValue::u32(static_cast<uint32_t>(fs.n_ctx_orig)));
    w.set(a + "rope.scaling.attn_factor",
          GgufValue::f32(static_cast<float>(std::sqrt(1 + std::log(scale) / std::log(static_cast<double>(fs.n_ctx_orig))))));
  }
  w.set("general.synthetic_seed", GgufValue::u64(o.seed));
  if (o.plain) w.set("general.synthetic_plain", GgufValue::boolean(true));

  SynthWriter s(w, *type, o.seed);
  if (p.vocab == SynthVocab::kWordPiece) {
    w.set(a + "attention.layer_norm_epsilon", GgufValue::f32(static_cast<float>(p.norm_eps)));
    w.set(a + "attention.causal", GgufValue::boolean(false));
    w.set(a + "pooling_type", GgufValue::u32(static_cast<uint32_t>(fs.pooling)));
    write_encoder_tensors(s, p);
    const Status st = w.write(o.out);
    if (!st.ok()) throw Failure{st.message()};
    if (!o.quiet) std::fprintf(stderr, "synth: wrote %s (%s, %s)\n", o.out.c_str(), p.name, o.type.c_str());
    return;
  }
  const bool show_progress = !o.quiet && isatty(STDERR_FILENO);  // a counter that redraws is noise in a log
  const int64_t q_dim = p.n_head * hd, kv_dim = p.n_head_kv * hd, E = p.n_embd;
  const int64_t n_special = o.vocab.empty() ? static_cast<int64_t>(p.specials.size()) + (p.vocab == SynthVocab::kSpm ? 3 : 0) : 0;
  // The FFN width the memory lives in: each expert's, in a mixture (every expert holds it).
  const int64_t n_ff = fs.n_expert > 0 && fs.n_ff_exp > 0 ? fs.n_ff_exp : p.n_ff;
  SuccessorChain chain = build_chain(p, n_ff, n_special, o.seed);
  if (o.plain) {
    // Every row an independent normal vector: no token points the way another does.
    Rng rng(o.seed ^ 0x91a1ull);
    for (float& v : chain.emb) v = rng.normal();
  }
  auto inv_sqrt = [](int64_t n) { return 1.0f / std::sqrt(static_cast<float>(n)); };
  auto near_one = [](int64_t, Rng& r) { return 1.0f + 0.05f * r.normal(); };
  // Each random block adds about `f` of the embedding's size to the residual
  // stream in total, so context matters without drowning the chain. Plain
  // models have no chain to protect: each block moves the stream by up to
  // half its size, so that every layer shows in the logits, and less in deep
  // models, where 8-bit activations' rounding would otherwise compound.
  const float f = o.plain ? std::min(0.5f, 1.5f / std::sqrt(2.0f * static_cast<float>(p.n_layer)))
                          : 0.4f / std::sqrt(2.0f * static_cast<float>(p.n_layer));
  // Output scale: the successor's logit lands near 12, others near 0-6.
  const float out_gain = 13.5f / static_cast<float>(E);
  // Gemma multiplies looked-up rows by sqrt(n_embd): store them that much
  // smaller so the stream starts at the same size, and let the output norm
  // (tied output) make up for it.
  const bool gemma = std::string(p.arch).rfind("gemma", 0) == 0;
  const float embd_div = gemma ? std::sqrt(static_cast<float>(E)) : 1.0f;

  s.matrix("token_embd.weight", E, p.n_vocab, [&](int64_t r, float* row) {
    for (int64_t d = 0; d < E; ++d) row[d] = chain.emb[r * E + d] / embd_div;
  });
  if (p.llama3_rope)
    s.vector("rope_freqs.weight", hd / 2, [&](int64_t i, Rng&) { return llama3_rope_factor(i, hd, p.rope_base); });
  if (fs.n_ctx_orig > 0 && fs.yarn_factor == 0) {
    // LongRoPE tables: long wavelengths slowed by up to the context ratio, short ones nearly kept.
    const double ratio = static_cast<double>(p.n_ctx) / static_cast<double>(fs.n_ctx_orig);
    s.vector("rope_factors_long.weight", hd / 2, [&](int64_t i, Rng&) {
      return static_cast<float>(1.0 + (ratio - 1.0) * static_cast<double>(i) / static_cast<double>(hd / 2 - 1));
    });
    s.vector("rope_factors_short.weight", hd / 2, [&](int64_t i, Rng&) {
      return static_cast<float>(1.0 + 0.5 * static_cast<double>(i) / static_cast<double>(hd / 2));
    });
  }
  // A fused matrix: rows of each part in turn, each part with its own scale.
  auto fused_matrix = [&](const std::string& name, int64_t n_in, std::vector<std::pair<int64_t, float>> parts) {
    Rng rng(hash_name(name, o.seed));
    int64_t rows = 0;
    for (const auto& part : parts) rows += part.first;
    s.matrix(name, n_in, rows, [&](int64_t r, float* row) {
      float std = 0;
      for (int64_t at = 0; const auto& part : parts) {
        if (r < at + part.first) {
          std = part.second;
          break;
        }
        at += part.first;
      }
      for (int64_t i = 0; i < n_in; ++i) row[i] = std * rng.normal();
    });
  };
  // Post-norms set a block's output size outright: about f, as the others.
  auto post_gain = [&](float gain) { return [gain](int64_t, Rng& r) { return gain * (1.0f + 0.05f * r.normal()); }; };
  for (int64_t l = 0; l < p.n_layer; ++l) {
    if (show_progress)
      std::fprintf(stderr, "\rsynth: layer %lld/%lld", static_cast<long long>(l + 1), static_cast<long long>(p.n_layer));
    const std::string b = "blk." + std::to_string(l) + ".";
    s.vector(b + "attn_norm.weight", E, near_one);
    if (fs.fused) {
      fused_matrix(b + "attn_qkv.weight", E, {{q_dim, inv_sqrt(E)}, {kv_dim, inv_sqrt(E)}, {kv_dim, inv_sqrt(E)}});
    } else {
      s.random_matrix(b + "attn_q.weight", E, q_dim, inv_sqrt(E));
      s.random_matrix(b + "attn_k.weight", E, kv_dim, inv_sqrt(E));
      s.random_matrix(b + "attn_v.weight", E, kv_dim, inv_sqrt(E));
    }
    if (fs.qk_norm) {
      // Normalised heads make every score about sqrt(head_dim) * gain^2 /
      // sqrt(head_dim): gains near 1.5 keep attention neither flat nor one-hot
      // (1.2 in plain models, whose comparisons with other engines should not
      // hinge on a few sharply peaked scores).
      const float qk_gain = o.plain ? 1.2f : 1.5f;
      s.vector(b + "attn_q_norm.weight", fs.qk_norm_full ? q_dim : hd, post_gain(qk_gain));
      s.vector(b + "attn_k_norm.weight", fs.qk_norm_full ? kv_dim : hd, post_gain(qk_gain));
    }
    s.random_matrix(b + "attn_output.weight", q_dim, E, 2.0f * f * inv_sqrt(q_dim));
    if (fs.gpt_oss) {
      auto small = [](int64_t, Rng& r) { return 0.1f * r.normal(); };
      s.vector(b + "attn_q.bias", q_dim, small);
      s.vector(b + "attn_k.bias", kv_dim, small);
      s.vector(b + "attn_v.bias", kv_dim, small);
      s.vector(b + "attn_output.bias", E, [&](int64_t, Rng& r) { return 0.1f * f * r.normal(); });
      // Sinks near the typical score: each head sometimes attends to nothing.
      s.vector(b + "attn_sinks.weight", p.n_head, [](int64_t, Rng& r) { return r.normal(); });
    }
    if (fs.post_norms) s.vector(b + "post_attention_norm.weight", E, post_gain(f));
    if (p.qkv_bias) {
      auto small = [](int64_t, Rng& r) { return 0.1f * r.normal(); };
      s.vector(b + "attn_q.bias", q_dim, small);
      s.vector(b + "attn_k.bias", kv_dim, small);
      s.vector(b + "attn_v.bias", kv_dim, small);
    }
    s.vector(b + (fs.gpt_oss ? "post_attention_norm.weight" : "ffn_norm.weight"), E, near_one);
    const bool memory = !o.plain && l + 1 == p.n_layer;
    // The memory's output is twice an embedding row; a post-norm makes its size its gain.
    if (fs.post_norms) s.vector(b + "post_ffw_norm.weight", E, post_gain(memory ? 2.0f : f));
    const int64_t n_exp = std::max<int64_t>(1, fs.n_expert);
    // A router that spreads tokens over the experts.
    // A decisive router: its logits spread over a few units, so that 8-bit
    // activations' rounding seldom swaps which experts a token reads.
    if (fs.n_expert > 0) s.random_matrix(b + "ffn_gate_inp.weight", E, fs.n_expert, 4.0f * inv_sqrt(E));
    if (fs.gpt_oss) {
      // Router and expert biases; zero in the memory layer, whose experts must recall exactly.
      const float scale = memory ? 0.0f : 0.1f;
      s.vector(b + "ffn_gate_inp.bias", fs.n_expert, [&](int64_t, Rng& r) { return 0.5f * r.normal(); });
      s.tensor(b + "ffn_gate_exps.bias", {n_ff, fs.n_expert}, [&](int64_t, Rng& r) { return scale * r.normal(); });
      s.tensor(b + "ffn_up_exps.bias", {n_ff, fs.n_expert}, [&](int64_t, Rng& r) { return scale * r.normal(); });
      s.tensor(b + "ffn_down_exps.bias", {E, fs.n_expert}, [&](int64_t, Rng& r) { return scale * f * r.normal(); });
    }
    const std::string gate_name = b + (fs.n_expert > 0 ? "ffn_gate_exps.weight" : "ffn_gate.weight");
    const std::string up_name = b + (fs.n_expert > 0 ? "ffn_up_exps.weight" : "ffn_up.weight");
    const std::string down_name = b + (fs.n_expert > 0 ? "ffn_down_exps.weight" : "ffn_down.weight");
    if (!memory) {
      if (fs.n_expert > 0) {
        // Each token reads k experts: each is scaled so their sum moves the stream as one dense block would.
        const float share = 1.0f / std::sqrt(static_cast<float>(fs.n_expert_used));
        s.random_matrix(gate_name, E, n_ff, inv_sqrt(E), n_exp);
        s.random_matrix(up_name, E, n_ff, inv_sqrt(E), n_exp);
        s.random_matrix(down_name, n_ff, E, 2.0f * f * share * inv_sqrt(n_ff), n_exp);
        continue;
      }
      if (fs.fused) {
        fused_matrix(b + "ffn_up.weight", E, {{p.n_ff, inv_sqrt(E)}, {p.n_ff, inv_sqrt(E)}});
      } else {
        s.random_matrix(b + "ffn_gate.weight", E, p.n_ff, inv_sqrt(E));
        s.random_matrix(b + "ffn_up.weight", E, p.n_ff, inv_sqrt(E));
      }
      s.random_matrix(b + "ffn_down.weight", p.n_ff, E, 2.0f * f * inv_sqrt(p.n_ff));
      continue;
    }
    // The memory: unit k fires (gate = up = beta * cos(x, e_{a_k})) only for
    // its own token and writes twice the successor's embedding.
    const float beta = 5.0f;
    const float fired = beta * 0.97f;
    // What the gate makes of a fired unit (gate = up = fired), per family.
    const float h_match = fs.gpt_oss ? fired / (1.0f + std::exp(-1.702f * fired)) * (fired + 1.0f)
                          : gemma    ? 0.5f * fired * (1.0f + std::tanh(0.7978845608f * (fired + 0.044715f * fired * fired * fired))) * fired
                                     : fired * fired / (1.0f + std::exp(-fired));
    const int64_t K = static_cast<int64_t>(chain.active.size());
    auto memory_key = [&](int64_t k, float* row) {
      if (k >= K) {
        std::fill(row, row + E, 0.0f);
        return;
      }
      const float* e = chain.emb.data() + chain.active[k] * E;
      double norm = 0;
      for (int64_t d = 0; d < E; ++d) norm += static_cast<double>(e[d]) * e[d];
      const float scale = beta / static_cast<float>(std::sqrt(norm) * std::sqrt(static_cast<double>(E)));
      for (int64_t d = 0; d < E; ++d) row[d] = scale * e[d];
    };
    // In a mixture every expert holds the same memory, so whichever the
    // router picks, the weighted sum recalls the successor.
    if (fs.fused) {
      s.matrix(b + "ffn_up.weight", E, 2 * n_ff, [&](int64_t r, float* row) { memory_key(r % n_ff, row); });
    } else {
      s.matrix(gate_name, E, n_ff, [&](int64_t r, float* row) { memory_key(r % n_ff, row); }, n_exp);
      s.matrix(up_name, E, n_ff, [&](int64_t r, float* row) { memory_key(r % n_ff, row); }, n_exp);
    }
    s.matrix(
        down_name, n_ff, E,
        [&](int64_t d, float* row) {
          d %= E;
          for (int64_t k = 0; k < n_ff; ++k)
            row[k] = k < K ? 2.0f * chain.emb[chain.successor[k] * E + d] / h_match : 0.0f;
        },
        n_exp);
  }
  if (show_progress) std::fprintf(stderr, "\n");
  if (p.tied_output) {
    s.vector("output_norm.weight", E,
             [&](int64_t, Rng& r) { return out_gain * embd_div * (1.0f + 0.05f * r.normal()); });
  } else {
    s.vector("output_norm.weight", E, near_one);
    Rng rng(hash_name("output.weight", o.seed));
    s.matrix("output.weight", E, p.n_vocab, [&](int64_t r, float* row) {
      for (int64_t d = 0; d < E; ++d) row[d] = out_gain * (chain.emb[r * E + d] + 0.1f * rng.normal());
    });
  }
  if (s.fallbacks() > 0 && !o.quiet)
    log::info(std::to_string(s.fallbacks()) + " matrices have rows that " + o.type +
              " blocks do not divide; they use the fallback type");
  const Status st = w.write(o.out);
  if (!st.ok()) throw Failure{st.message()};
  if (!o.quiet) std::fprintf(stderr, "synth: wrote %s (%s, %s)\n", o.out.c_str(), p.name, o.type.c_str());
}

// A LoRA adapter for the model file `o.lora_base`: a random pair A {n_in, r},
// B {r, n_out} for every adapted matrix whose name the targets list. B is
// scaled so that the update moves each product by about half as much as the
// base matrix does, so that a test sees the adapter in every layer.
void write_synth_lora(const SynthOptions& o) {
  auto base = GgufFile::open(o.lora_base);
  if (!base.ok()) throw Failure{"--lora: " + base.status().message()};
  if (o.lora_rank < 1 || o.lora_rank > 4096) throw Failure{"--lora-rank must be 1..4096"};
  if (!std::isfinite(o.lora_alpha) || o.lora_alpha < 0) throw Failure{"--lora-alpha must be a finite number >= 0"};
  const std::optional<DType> type = weight_type(o.type);
  auto arch = base->get_string("general.architecture");
  if (!arch.ok()) throw Failure{o.lora_base + ": " + arch.status().message()};
  std::vector<std::string> targets;
  for (size_t b = 0; b <= o.lora_targets.size();) {
    const size_t e = std::min(o.lora_targets.find(',', b), o.lora_targets.size());
    if (e > b) targets.push_back(o.lora_targets.substr(b, e - b));
    b = e + 1;
  }
  auto wanted = [&](const std::string& name) {
    // "blk.N.<target>.weight", or "output.weight" for the target "output".
    std::string stem = name;
    if (stem.size() < 7 || stem.substr(stem.size() - 7) != ".weight") return false;
    stem.resize(stem.size() - 7);
    if (stem.rfind("blk.", 0) == 0) stem = stem.substr(std::min(stem.size(), stem.find('.', 4) + 1));
    return std::find(targets.begin(), targets.end(), stem) != targets.end();
  };
  GgufWriter w;
  w.set("general.type", GgufValue::str("adapter"));
  w.set("general.architecture", GgufValue::str(*arch));
  w.set("general.name", GgufValue::str("synth LoRA for " + fs::path(o.lora_base).filename().string()));
  w.set("adapter.type", GgufValue::str("lora"));
  w.set("adapter.lora.alpha", GgufValue::f32(static_cast<float>(o.lora_alpha)));
  SynthWriter sw(w, *type, o.seed);
  const int64_t r = o.lora_rank;
  const double ab = o.lora_alpha != 0 ? o.lora_alpha / static_cast<double>(r) : 1.0;
  int pairs = 0;
  for (const GgufTensorInfo& t : base->tensors()) {
    if (t.dims.size() != 2 || !wanted(t.name)) continue;
    const int64_t n_in = t.dims[0], n_out = t.dims[1];
    // The base matrix's element RMS, from a few of its rows.
    const QuantOps* tops = quant_ops(t.type);
    if (tops == nullptr) throw Failure{o.lora_base + ": cannot read tensor '" + t.name + "' of type " + dtype_name(t.type)};
    double sq = 0;
    int64_t count = 0;
    std::vector<float> row(n_in);
    for (int64_t i = 0; i < std::min<int64_t>(n_out, 16); ++i) {
      tops->dequantize(t.data + i * quant_row_bytes(*tops, n_in), row.data(), n_in);
      for (float v : row) sq += double{v} * v;
      count += n_in;
    }
    const double w_rms = std::sqrt(sq / std::max<int64_t>(1, count));
    // A x has unit-size elements for unit-size inputs; B A x then matches
    // half of W x, whose elements are about w_rms * sqrt(n_in).
    const float std_a = static_cast<float>(1.0 / std::sqrt(static_cast<double>(n_in)));
    const float std_b = static_cast<float>(0.5 * w_rms * std::sqrt(static_cast<double>(n_in)) / (ab * std::sqrt(double(r))));
    sw.random_matrix(t.name + ".lora_a", n_in, r, std_a);
    sw.random_matrix(t.name + ".lora_b", r, n_out, std_b);
    ++pairs;
  }
  if (pairs == 0)
    throw Failure{o.lora_base + " has no matrix named by --lora-targets (" + o.lora_targets + ")"};
  const Status st = w.write(o.out);
  if (!st.ok()) throw Failure{st.message()};
  if (!o.quiet)
    std::fprintf(stderr, "synth: wrote %s (LoRA for %s, %d matrices, rank %lld, alpha %g)\n", o.out.c_str(),
                 arch->c_str(), pairs, static_cast<long long>(r), o.lora_alpha);
}

// The GGUF file synth would write, exported as a Hugging Face folder.
void write_synth_folder(const SynthOptions& o) {
  const auto dtype = dtype_from_name(o.hf_dtype);
  if (!dtype || (*dtype != DType::kF32 && *dtype != DType::kF16 && *dtype != DType::kBF16))
    throw Failure{"--hf-dtype: '" + o.hf_dtype + "' is not f32, f16 or bf16"};
  std::error_code ec;
  const std::string tmp =
      (std::filesystem::temp_directory_path(ec) / ("osprey-synth-" + std::to_string(::getpid()) + ".gguf")).string();
  SynthOptions gguf = o;
  gguf.out = tmp;
  gguf.quiet = true;
  write_synth_model(gguf);
  auto file = GgufFile::open(tmp);
  std::filesystem::remove(tmp, ec);  // the mapping keeps it readable
  if (!file.ok()) throw Failure{file.status().message()};
  ExportOptions eo;
  eo.dtype = *dtype;
  eo.shard_bytes = o.shard_bytes;
  if (Status s = export_hf_folder(*file, o.out, eo); !s.ok()) throw Failure{s.message()};
  if (is_tokenizer_json(o.vocab)) {
    // The real tokenizer files, as they came (normalizers and all), rather
    // than the ones written back from GGUF keys.
    const fs::path src = fs::is_directory(o.vocab) ? fs::path(o.vocab) : fs::path(o.vocab).parent_path();
    for (const char* name : {"tokenizer.json", "tokenizer_config.json", "chat_template.jinja"})
      if (fs::exists(src / name)) fs::copy_file(src / name, fs::path(o.out) / name, fs::copy_options::overwrite_existing, ec);
    if (ec) throw Failure{o.out + ": cannot copy the tokenizer files: " + ec.message()};
  }
  if (!o.quiet) std::fprintf(stderr, "synth: wrote %s/ (%s, Hugging Face folder, %s)\n", o.out.c_str(), o.preset.c_str(), o.hf_dtype.c_str());
}

void register_synth(CLI::App& app) {
  auto o = std::make_shared<SynthOptions>();
  CLI::App* cmd = app.add_subcommand("synth", "Write a model with random weights in the exact shape of a real one");
  std::string names;
  for (const auto& p : synth_presets()) names += std::string(names.empty() ? "" : ", ") + p.name;
  cmd->add_option("--preset", o->preset, "Model shape (--list-presets shows them): " + names);
  cmd->add_flag("--plain", o->plain,
                "Plain random weights without the successor chain that makes greedy output stable; "
                "for comparing logits with another engine, where every layer must count");
  cmd->add_option("--type", o->type, "Weight type: " + supported_dtype_names())
      ->capture_default_str();
  cmd->add_option("-o,--output", o->out, "Output GGUF file (or folder, with --format hf)");
  cmd->add_option("--format", o->format, "gguf, or hf: a Hugging Face folder (config.json, safetensors, tokenizer.json) "
                                          "in the same shape; Llama, Qwen2 and Qwen3 presets")
      ->check(CLI::IsMember({"gguf", "hf"}))->capture_default_str();
  cmd->add_option("--hf-dtype", o->hf_dtype, "With --format hf: the safetensors dtype (f32, f16, bf16)")->capture_default_str();
  cmd->add_option("--shard-size", o->shard_bytes, "With --format hf: split the weights into shards of about this many bytes");
  cmd->add_option("--vocab", o->vocab,
                  "Take the tokenizer from this GGUF file, or a Hugging Face tokenizer.json (or the folder holding "
                  "it: byte-level BPE), instead of making one up; the vocabulary size follows it");
  cmd->add_option("--seed", o->seed, "Seed for the weights and the made-up vocabulary")->capture_default_str();
  cmd->add_option("--n-embd", o->n_embd, "Width instead of the preset's (the heads stay, smaller)");
  cmd->add_option("--n-layer", o->n_layer, "Layers instead of the preset's");
  cmd->add_option("--n-ff", o->n_ff,
                  "Feed-forward width instead of the preset's. With --n-embd and --n-layer this makes a small draft "
                  "model for the preset (--draft-model): the same vocabulary and seed, and with the same --n-ff the "
                  "same successor chain, since the chain links one token per hidden unit of the last feed-forward block");
  cmd->add_flag("--list-presets", o->list, "List the presets and their shapes");
  cmd->add_option("--lora", o->lora_base,
                  "Instead of a model: write a LoRA adapter (GGUF) with random weights for this model file, "
                  "for testing --lora");
  cmd->add_option("--lora-rank", o->lora_rank, "With --lora: the adapter's rank r")->capture_default_str();
  cmd->add_option("--lora-alpha", o->lora_alpha, "With --lora: its alpha (the update is scaled by alpha / r; 0: by 1)")
      ->capture_default_str();
  cmd->add_option("--lora-targets", o->lora_targets,
                  "With --lora: the matrices it adapts, comma-separated")->capture_default_str();
  cmd->callback([o] {
    if (o->list) {
      std::printf("%-16s %-9s %7s %5s %6s %5s %4s %6s %8s\n", "preset", "arch", "vocab", "dim", "layers", "heads", "kv",
                  "ffn", "experts");
      for (const auto& p : synth_presets()) {
        const std::string experts = p.shape.n_expert > 0 ? std::to_string(p.shape.n_expert_used) + "/" +
                                                                std::to_string(p.shape.n_expert)
                                                          : "-";
        const int64_t ffn = p.shape.n_expert > 0 && p.shape.n_ff_exp > 0 ? p.shape.n_ff_exp : p.n_ff;
        std::printf("%-16s %-9s %7lld %5lld %6lld %5lld %4lld %6lld %8s\n", p.name, p.arch,
                    static_cast<long long>(p.n_vocab), static_cast<long long>(p.n_embd), static_cast<long long>(p.n_layer),
                    static_cast<long long>(p.n_head), static_cast<long long>(p.n_head_kv), static_cast<long long>(ffn),
                    experts.c_str());
      }
      return;
    }
    if (!o->lora_base.empty()) {
      if (o->out.empty()) throw Failure{"synth --lora needs -o for the adapter file"};
      write_synth_lora(*o);
      return;
    }
    if (o->preset.empty() || o->out.empty()) throw Failure{"synth needs --preset and -o (see --help)"};
    if (o->format == "hf") {
      write_synth_folder(*o);
      return;
    }
    write_synth_model(*o);
  });
}

}  // namespace osprey::cli
