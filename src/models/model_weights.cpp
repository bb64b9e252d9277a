#include "models/model_weights.h"

namespace osprey {

namespace {

std::string dims_str(const std::vector<int64_t>& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
  return s + "]";
}

class Binder {
 public:
  Binder(const GgufFile& f, kernels::Isa isa) : file_(f), isa_(isa) {}

  // A 2-D weight matrix with dims {n_in, n_out}.
  Status matrix(const std::string& name, int64_t n_in, int64_t n_out, kernels::WeightMatrix& out) {
    const GgufTensorInfo* t = file_.find_tensor(name);
    if (t == nullptr) return CorruptFile(file_.path() + ": tensor '" + name + "' is missing");
    OSPREY_TRY(check_shape(*t, {n_in, n_out}));
    const QuantOps* ops = quant_ops(t->type);
    if (ops == nullptr || ops->dot == nullptr)
      return Unsupported(file_.path() + ": tensor '" + name + "' has type " + dtype_name(t->type) +
                         ", which osprey cannot compute with yet");
    out = {t->data, ops, kernels::row_kernel(t->type, isa_), n_in, n_out, quant_row_bytes(*ops, n_in)};
    return Status::Ok();
  }

  // A 1-D vector of n floats; converted from whatever type it is stored in.
  Status vector(const std::string& name, int64_t n, std::vector<float>& out, bool optional = false) {
    const GgufTensorInfo* t = file_.find_tensor(name);
    if (t == nullptr) {
      if (optional) return Status::Ok();
      return CorruptFile(file_.path() + ": tensor '" + name + "' is missing");
    }
    OSPREY_TRY(check_shape(*t, {n}));
    const QuantOps* ops = quant_ops(t->type);
    if (ops == nullptr) return Unsupported(file_.path() + ": tensor '" + name + "' has unsupported type " + dtype_name(t->type));
    out.resize(n);
    ops->dequantize(t->data, out.data(), n);
    return Status::Ok();
  }

  bool has(const std::string& name) const { return file_.find_tensor(name) != nullptr; }

 private:
  Status check_shape(const GgufTensorInfo& t, const std::vector<int64_t>& want) {
    // Trailing dimensions of 1 are equivalent to absent ones.
    std::vector<int64_t> got = t.dims;
    while (got.size() > want.size() && got.back() == 1) got.pop_back();
    if (got != want)
      return CorruptFile(file_.path() + ": tensor '" + t.name + "' has shape " + dims_str(t.dims) + ", expected " +
                         dims_str(want));
    return Status::Ok();
  }
  const GgufFile& file_;
  kernels::Isa isa_;
};

}  // namespace

Expected<ModelWeights> ModelWeights::bind(const GgufFile& file, const ModelConfig& c, kernels::Isa isa) {
  ModelWeights w;
  Binder b(file, isa);
  const int64_t q_dim = c.n_head * c.head_dim, kv_dim = c.n_head_kv * c.head_dim;
  OSPREY_TRY(b.matrix("token_embd.weight", c.n_embd, c.n_vocab, w.tok_embd));
  OSPREY_TRY(b.vector("output_norm.weight", c.n_embd, w.output_norm));
  w.tied_output = !b.has("output.weight");
  if (w.tied_output) w.output = w.tok_embd;
  else OSPREY_TRY(b.matrix("output.weight", c.n_embd, c.n_vocab, w.output));
  OSPREY_TRY(b.vector("rope_freqs.weight", c.rope_dim / 2, w.rope_freq_factors, /*optional=*/true));

  w.layers.resize(c.n_layer);
  for (int64_t i = 0; i < c.n_layer; ++i) {
    LayerWeights& L = w.layers[i];
    const std::string p = "blk." + std::to_string(i) + ".";
    OSPREY_TRY(b.vector(p + "attn_norm.weight", c.n_embd, L.attn_norm));
    OSPREY_TRY(b.matrix(p + "attn_q.weight", c.n_embd, q_dim, L.wq));
    OSPREY_TRY(b.matrix(p + "attn_k.weight", c.n_embd, kv_dim, L.wk));
    OSPREY_TRY(b.matrix(p + "attn_v.weight", c.n_embd, kv_dim, L.wv));
    OSPREY_TRY(b.matrix(p + "attn_output.weight", q_dim, c.n_embd, L.wo));
    OSPREY_TRY(b.vector(p + "attn_q.bias", q_dim, L.bq, true));
    OSPREY_TRY(b.vector(p + "attn_k.bias", kv_dim, L.bk, true));
    OSPREY_TRY(b.vector(p + "attn_v.bias", kv_dim, L.bv, true));
    OSPREY_TRY(b.vector(p + "ffn_norm.weight", c.n_embd, L.ffn_norm));
    OSPREY_TRY(b.matrix(p + "ffn_gate.weight", c.n_embd, c.n_ff, L.w_gate));
    OSPREY_TRY(b.matrix(p + "ffn_up.weight", c.n_embd, c.n_ff, L.w_up));
    OSPREY_TRY(b.matrix(p + "ffn_down.weight", c.n_ff, c.n_embd, L.w_down));
  }
  return w;
}

}  // namespace osprey
