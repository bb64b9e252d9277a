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

  // A 2-D weight matrix with dims {n_in, n_out}. With `repackable`, it may
  // get a kernel that wants the rows in its own layout (done by repack()).
  Status matrix(const std::string& name, int64_t n_in, int64_t n_out, kernels::WeightMatrix& out,
                bool repackable = true) {
    const GgufTensorInfo* t = file_.find_tensor(name);
    if (t == nullptr) return CorruptFile(file_.path() + ": tensor '" + name + "' is missing");
    OSPREY_TRY(check_shape(*t, {n_in, n_out}));
    const QuantOps* ops = quant_ops(t->type);
    if (ops == nullptr || ops->dot == nullptr)
      return Unsupported(file_.path() + ": tensor '" + name + "' has type " + dtype_name(t->type) +
                         ", which osprey cannot compute with yet (it runs " +
                         supported_dtype_names() + ")");
    const kernels::RowKernel k = repackable ? kernels::packed_row_kernel(t->type, isa_, n_out) : kernels::row_kernel(t->type, isa_);
    out = {t->data, ops, k, n_in, n_out, quant_row_bytes(*ops, n_in)};
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

// Copies every matrix whose kernel has its own layout into one buffer of
// huge pages, in that layout, and points the matrix at the copy.
Status repack(std::vector<kernels::WeightMatrix*> mats, ModelWeights& w, ThreadPool& pool) {
  std::erase_if(mats, [](const kernels::WeightMatrix* m) { return m->kernel.repack == nullptr; });
  // A matrix that is looked up by rows must be able to turn them back.
  for (const kernels::WeightMatrix* m : mats) OSPREY_CHECK(m->kernel.unpack != nullptr);
  size_t total = 0;
  for (const kernels::WeightMatrix* m : mats) total += (static_cast<size_t>(m->row_bytes * m->n_out) + 63) & ~size_t{63};
  if (mats.empty()) return Status::Ok();
  OSPREY_ASSIGN_OR_RETURN(PageBuffer buf, PageBuffer::allocate(total));
  uint8_t* next = buf.data();
  for (kernels::WeightMatrix* m : mats) {
    const uint8_t* src = m->data;
    const int64_t bytes = m->row_bytes * m->n_out;
    const int64_t g = m->kernel.row_group;  // divides n_out (packed_row_kernel)
    pool.parallel_for(m->n_out / g, 8, [&](int64_t g0, int64_t g1, int) {
      for (int64_t i = g0; i < g1; ++i)
        m->kernel.repack(src + i * g * m->row_bytes, next + i * g * m->row_bytes, m->n_in);
    });
    release_mapped_pages(src, static_cast<size_t>(bytes));
    m->data = next;
    next += (static_cast<size_t>(bytes) + 63) & ~size_t{63};
  }
  w.n_packed = static_cast<int64_t>(mats.size());
  w.packed = std::make_shared<PageBuffer>(std::move(buf));
  return Status::Ok();
}

}  // namespace

Expected<ModelWeights> ModelWeights::bind(const GgufFile& file, const ModelConfig& c, kernels::Isa isa,
                                          ThreadPool& pool) {
  ModelWeights w;
  Binder b(file, isa);
  const int64_t q_dim = c.n_head * c.head_dim, kv_dim = c.n_head_kv * c.head_dim;
  // An embedding that is only looked up keeps the file's layout. One that is
  // also the output matrix is repacked like the other matrices, and lookups
  // unpack its rows one at a time (Model::forward_batch).
  w.tied_output = !b.has("output.weight");
  OSPREY_TRY(b.matrix("token_embd.weight", c.n_embd, c.n_vocab, w.tok_embd, /*repackable=*/w.tied_output));
  OSPREY_TRY(b.vector("output_norm.weight", c.n_embd, w.output_norm));
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
  std::vector<kernels::WeightMatrix*> mats;
  mats.push_back(w.tied_output ? &w.tok_embd : &w.output);
  for (LayerWeights& L : w.layers)
    for (kernels::WeightMatrix* m : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) mats.push_back(m);
  OSPREY_TRY(repack(std::move(mats), w, pool));
  if (w.tied_output) w.output = w.tok_embd;  // the repacked copy
  return w;
}

}  // namespace osprey
