#include "models/lora.h"

#include <cmath>
#include <cstdlib>
#include <map>

namespace osprey {

namespace {

constexpr std::string_view kSuffixA = ".lora_a", kSuffixB = ".lora_b";

bool ends_with(std::string_view s, std::string_view tail) {
  return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

// A matrix an adapter may change: the tensor it is (or is a row range of)
// and its first row there.
struct Target {
  const kernels::WeightMatrix* m;
  int64_t row0;
};

// Every adaptable matrix by tensor name. Parts of one fused tensor follow
// each other in row order (q, k, v; gate, up), as the families list them.
std::map<std::string, std::vector<Target>> adaptable(const ModelWeights& w) {
  std::map<std::string, std::vector<Target>> out;
  auto add = [&](const kernels::WeightMatrix& m) {
    if (m.data == nullptr || m.tensor.empty()) return;
    std::vector<Target>& parts = out[m.tensor];
    const int64_t row0 = parts.empty() ? 0 : parts.back().row0 + parts.back().m->n_out;
    parts.push_back({&m, row0});
  };
  for (const LayerWeights& L : w.layers) {
    for (const kernels::WeightMatrix* m : {&L.attn.wq, &L.attn.wk, &L.attn.wv, &L.attn.wo}) add(*m);
    for (const kernels::WeightMatrix* m : {&L.ffn.gate, &L.ffn.up, &L.ffn.down}) add(*m);
  }
  // A tied output is the embedding, whose rows are also looked up: not adapted.
  if (!w.tied_output) add(w.output);
  return out;
}

const TensorSpec* find_spec(const ModelWeights& w, const std::string& name) {
  for (const TensorSpec& s : w.tensors)
    if (s.name == name && s.present) return &s;
  return nullptr;
}

std::string dims_str(const std::vector<int64_t>& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
  return s + "]";
}

}  // namespace

Expected<LoraSpec> parse_lora_spec(const std::string& arg) {
  LoraSpec spec{arg, 1.0f};
  const size_t colon = arg.rfind(':');
  if (colon != std::string::npos && colon + 1 < arg.size()) {
    const std::string tail = arg.substr(colon + 1);
    char* end = nullptr;
    const double v = std::strtod(tail.c_str(), &end);
    if (end != tail.c_str() && *end == '\0') {
      if (!std::isfinite(v) || std::fabs(v) > 1e4)
        return InvalidArgument("--lora " + arg + ": the scale " + tail + " is not a finite number of sensible size");
      spec.path = arg.substr(0, colon);
      spec.scale = static_cast<float>(v);
    }
  }
  if (spec.path.empty()) return InvalidArgument("--lora needs a file: --lora FILE or --lora FILE:SCALE");
  return spec;
}

Expected<LoraAdapter> LoraAdapter::load(const std::string& path, float scale, const ModelConfig& c,
                                        const ModelWeights& w) {
  LoraAdapter ad;
  ad.path = path;
  ad.scale = scale;
  OSPREY_ASSIGN_OR_RETURN(const GgufFile f, GgufFile::open(path));
  OSPREY_ASSIGN_OR_RETURN(const std::string type, f.get_string("general.type", "adapter"));
  if (type != "adapter")
    return InvalidArgument(path + " is not an adapter (general.type is '" + type +
                           "'); --lora takes a LoRA adapter GGUF, such as llama.cpp's convert_lora_to_gguf.py writes");
  OSPREY_ASSIGN_OR_RETURN(const std::string kind, f.get_string("adapter.type", ""));
  if (kind.empty())
    return InvalidArgument(path + " is not an adapter: it has no adapter.type (a model file?); --lora takes a LoRA "
                           "adapter GGUF, such as llama.cpp's convert_lora_to_gguf.py writes");
  if (kind != "lora")
    return Unsupported(path + ": adapter.type is '" + kind + "'; osprey runs LoRA adapters (adapter.type lora)");
  if (f.find("adapter.alora.invocation_tokens") != nullptr)
    return Unsupported(path + " is an activated LoRA (aLoRA), which osprey does not run");
  OSPREY_ASSIGN_OR_RETURN(const std::string arch, f.get_string("general.architecture", ""));
  if (arch != c.arch)
    return InvalidArgument(path + " is an adapter for '" + arch + "' models; this model is '" + c.arch + "'");
  OSPREY_ASSIGN_OR_RETURN(const double alpha, f.get_float("adapter.lora.alpha", 0.0));
  if (!std::isfinite(alpha) || alpha < 0)
    return CorruptFile(path + ": adapter.lora.alpha " + std::to_string(alpha) + " is not a finite number >= 0");
  ad.alpha = static_cast<float>(alpha);

  const auto targets = adaptable(w);
  // Pair the tensors by the matrix they adapt.
  std::map<std::string, std::pair<const GgufTensorInfo*, const GgufTensorInfo*>> pairs;
  for (const GgufTensorInfo& t : f.tensors()) {
    const bool is_a = ends_with(t.name, kSuffixA), is_b = ends_with(t.name, kSuffixB);
    if (!is_a && !is_b)
      return CorruptFile(path + ": tensor '" + t.name + "' is not a LoRA tensor (their names end in .lora_a or .lora_b)");
    auto& pair = pairs[t.name.substr(0, t.name.size() - kSuffixA.size())];
    (is_a ? pair.first : pair.second) = &t;
  }
  if (pairs.empty()) return CorruptFile(path + " holds no LoRA tensors");
  for (const auto& [base, pair] : pairs) {
    const auto [ta, tb] = pair;
    if (ta == nullptr || tb == nullptr)
      return CorruptFile(path + ": '" + base + "' has " + (ta ? "lora_a" : "lora_b") + " but no " +
                         (ta ? "lora_b" : "lora_a"));
    const auto it = targets.find(base);
    if (it == targets.end()) {
      if (find_spec(w, base) != nullptr)
        return Unsupported(path + " adapts '" + base + "'; osprey applies adapters to the attention, dense "
                           "feed-forward and output matrices only");
      return InvalidArgument(path + " adapts '" + base + "', which this model does not have (an adapter for another model?)");
    }
    const TensorSpec* spec = find_spec(w, base);
    const int64_t n_in = it->second.front().m->n_in, n_rows = spec != nullptr ? spec->dims[1] : it->second.front().m->n_out;
    // GGUF dims: A {n_in, r}, B {r, n_rows}.
    std::vector<int64_t> da = ta->dims, db = tb->dims;
    while (da.size() > 2 && da.back() == 1) da.pop_back();
    while (db.size() > 2 && db.back() == 1) db.pop_back();
    if (da.size() != 2 || db.size() != 2 || da[0] != n_in || db[1] != n_rows || da[1] != db[0] || da[1] < 1)
      return InvalidArgument(path + ": '" + base + "' has lora_a " + dims_str(ta->dims) + " and lora_b " +
                             dims_str(tb->dims) + "; this model's matrix needs [" + std::to_string(n_in) +
                             ", r] and [r, " + std::to_string(n_rows) + "]");
    const int64_t r = da[1];
    const QuantOps* oa = quant_ops(ta->type);
    const QuantOps* ob = quant_ops(tb->type);
    for (const auto& [t, ops, len] : {std::tuple{ta, oa, n_in}, std::tuple{tb, ob, r}}) {
      if (ops == nullptr || ops->dequantize == nullptr)
        return Unsupported(path + ": tensor '" + t->name + "' has type " + dtype_name(t->type) +
                           ", which osprey cannot read (it reads " + supported_dtype_names() + ")");
      if (len % ops->block_len != 0)
        return CorruptFile(path + ": tensor '" + t->name + "' is " + dtype_name(t->type) + " with rows of " +
                           std::to_string(len) + ", not a whole number of its " + std::to_string(ops->block_len) +
                           "-value blocks");
    }
    ad.rank = std::max(ad.rank, r);
    std::vector<float> a(r * n_in), b(n_rows * r);
    oa->dequantize(ta->data, a.data(), r * n_in);
    ob->dequantize(tb->data, b.data(), n_rows * r);
    for (float v : a)
      if (!std::isfinite(v)) return CorruptFile(path + ": tensor '" + ta->name + "' holds a value that is not finite");
    for (float v : b)
      if (!std::isfinite(v)) return CorruptFile(path + ": tensor '" + tb->name + "' holds a value that is not finite");
    for (const Target& part : it->second) {
      LoraDelta d;
      d.r = r;
      d.n_in = n_in;
      d.n_out = part.m->n_out;
      d.a = a;
      d.bt.resize(r * d.n_out);
      for (int64_t o = 0; o < d.n_out; ++o)
        for (int64_t j = 0; j < r; ++j) d.bt[j * d.n_out + o] = b[(part.row0 + o) * r + j];
      d.alpha_scale = alpha != 0 ? static_cast<float>(alpha / static_cast<double>(r)) : 1.0f;
      ad.deltas.emplace(part.m, std::move(d));
    }
  }
  return ad;
}

}  // namespace osprey
