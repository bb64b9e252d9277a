#include "models/model_weights.h"

#include <charconv>
#include <numeric>
#include <string_view>
#include <unordered_set>

#include "models/family.h"

namespace osprey {

namespace {

std::string dims_str(const std::vector<int64_t>& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
  return s + "]";
}

class Binder {
 public:
  Binder(const GgufFile& f, kernels::Isa isa, bool f16_as_bf16) : file_(f), isa_(isa), f16_as_bf16_(f16_as_bf16) {}

  // A 2-D weight matrix with dims {n_in, n_out}. With `repackable`, it may
  // get a kernel that wants the rows in its own layout (done by repack()).
  // `cuts`: the row counts of the parts a fused matrix is split into; the
  // kernel's row groups must divide each, or the rows stay as stored.
  // dims: {n_in, n_out}, or {n_in, rows, n_expert} for stacked experts (n_out = rows * n_expert).
  Status matrix(const std::string& name, const std::vector<int64_t>& dims, kernels::WeightMatrix& out,
                bool repackable, const std::vector<int64_t>& cuts) {
    const GgufTensorInfo* t = file_.find_tensor(name);
    if (t == nullptr) return CorruptFile(file_.path() + ": tensor '" + name + "' is missing");
    OSPREY_TRY(check_shape(*t, dims));
    const int64_t n_in = dims[0];
    int64_t n_out = 1;
    for (size_t i = 1; i < dims.size(); ++i) n_out *= dims[i];
    const QuantOps* ops = quant_ops(t->type);
    if (ops == nullptr || ops->dot == nullptr)
      return Unsupported(file_.path() + ": tensor '" + name + "' has type " + dtype_name(t->type) +
                         ", which osprey cannot compute with yet (it runs " +
                         supported_dtype_names() + ")");
    int64_t group_rows = n_out;  // the largest row count every part is a multiple of
    for (int64_t c : cuts) group_rows = std::gcd(group_rows, c);
    kernels::RowKernel k =
        repackable ? kernels::packed_row_kernel(t->type, isa_, group_rows) : kernels::row_kernel(t->type, isa_);
    // F16 as BF16: only where the BF16 kernel repacks, since the conversion
    // happens on the way into that copy (repack below); the file stays mapped.
    if (f16_as_bf16_ && repackable && t->type == DType::kF16) {
      const kernels::RowKernel bf16 = kernels::packed_row_kernel(DType::kBF16, isa_, group_rows);
      if (bf16.repack != nullptr) ops = quant_ops(DType::kBF16), k = bf16;
    }
    out = {t->data, ops, k, n_in, n_out, quant_row_bytes(*ops, n_in), name};
    return Status::Ok();
  }

  // A 1-D vector of n floats; converted from whatever type it is stored in.
  Status vector(const std::string& name, const std::vector<int64_t>& dims, std::vector<float>& out) {
    const GgufTensorInfo* t = file_.find_tensor(name);
    if (t == nullptr) return CorruptFile(file_.path() + ": tensor '" + name + "' is missing");
    OSPREY_TRY(check_shape(*t, dims));
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
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
  bool f16_as_bf16_;
};

// Copies every matrix whose kernel has its own layout into one buffer of
// huge pages, in that layout, and points the matrix at the copy. Those in
// `from_f16` are stored F16 in the file and become BF16 on the way.
Status repack(std::vector<kernels::WeightMatrix*> mats, const std::unordered_set<const kernels::WeightMatrix*>& from_f16,
              ModelWeights& w, ThreadPool& pool) {
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
    // F16 rows become BF16 through the two formats' own converters, as
    // `osprey quantize ... BF16` converts them, so the bytes are that file's.
    const bool convert = from_f16.count(m) != 0;
    pool.parallel_for(m->n_out / g, 8, [&](int64_t g0, int64_t g1, int) {
      std::vector<float> wide(convert ? g * m->n_in : 0);
      std::vector<uint8_t> rows(convert ? g * m->row_bytes : 0);
      for (int64_t i = g0; i < g1; ++i) {
        const uint8_t* group = src + i * g * m->row_bytes;
        if (convert) {
          quant_ops(DType::kF16)->dequantize(group, wide.data(), g * m->n_in);
          m->ops->quantize(wide.data(), rows.data(), g * m->n_in);
          group = rows.data();
        }
        m->kernel.repack(group, next + i * g * m->row_bytes, m->n_in);
      }
    });
    w.n_f16_as_bf16 += convert;
    release_mapped_pages(src, static_cast<size_t>(bytes));
    m->data = next;
    next += (static_cast<size_t>(bytes) + 63) & ~size_t{63};
  }
  w.n_packed = static_cast<int64_t>(mats.size());
  w.packed = std::make_shared<PageBuffer>(std::move(buf));
  return Status::Ok();
}

}  // namespace

void list_embedding_and_head(const ModelConfig& c, ModelWeights& w, TensorList& list) {
  // An embedding that is only looked up keeps the file's layout. One that is
  // also the output matrix is repacked like the other matrices, and lookups
  // unpack its rows one at a time (blocks.cpp, embed).
  w.tied_output = !list.has("output.weight");
  list.matrix("token_embd.weight", c.n_embd, c.n_vocab, &w.tok_embd, false, /*repackable=*/w.tied_output);
  list.vector("output_norm.weight", c.n_embd, &w.output_norm);
  if (!w.tied_output) list.matrix("output.weight", c.n_embd, c.n_vocab, &w.output);
}

void list_attention(const ModelConfig& c, int64_t i, LayerWeights& L, TensorList& t) {
  const std::string p = "blk." + std::to_string(i) + ".";
  const int64_t E = c.n_embd, q_dim = c.n_head * c.head_dim, kv_dim = c.n_head_kv * c.head_dim;
  t.vector(p + "attn_norm.weight", E, &L.attn.norm);
  t.matrix(p + "attn_q.weight", E, q_dim, &L.attn.wq);
  t.matrix(p + "attn_k.weight", E, kv_dim, &L.attn.wk);
  t.matrix(p + "attn_v.weight", E, kv_dim, &L.attn.wv);
  t.matrix(p + "attn_output.weight", q_dim, E, &L.attn.wo);
}

void list_feed_forward(const ModelConfig& c, int64_t i, LayerWeights& L, TensorList& t) {
  const std::string p = "blk." + std::to_string(i) + ".";
  t.vector(p + "ffn_norm.weight", c.n_embd, &L.ffn.norm);
  if (!c.layers[i].moe) {
    t.matrix(p + "ffn_gate.weight", c.n_embd, c.n_ff, &L.ffn.gate);
    t.matrix(p + "ffn_up.weight", c.n_embd, c.n_ff, &L.ffn.up);
    t.matrix(p + "ffn_down.weight", c.n_ff, c.n_embd, &L.ffn.down);
    return;
  }
  t.matrix(p + "ffn_gate_inp.weight", c.n_embd, c.n_expert, &L.moe.router);
  t.experts(p + "ffn_gate_exps.weight", c.n_embd, c.n_ff_exp, c.n_expert, c.n_expert_used, &L.moe.gate);
  t.experts(p + "ffn_up_exps.weight", c.n_embd, c.n_ff_exp, c.n_expert, c.n_expert_used, &L.moe.up);
  t.experts(p + "ffn_down_exps.weight", c.n_ff_exp, c.n_embd, c.n_expert, c.n_expert_used, &L.moe.down);
}

Expected<ModelWeights> ModelWeights::bind(const GgufFile& file, const ModelConfig& c, kernels::Isa isa,
                                          ThreadPool& pool, bool repack_matrices, bool f16_as_bf16) {
  ModelWeights w;
  w.layers.resize(c.n_layer);
  TensorList list(&file);
  c.family->tensors(c, w, list);
  Binder b(file, isa, f16_as_bf16);
  for (TensorSpec& s : list.specs()) {
    if (s.optional && !b.has(s.name)) continue;
    s.present = true;
    if (s.vector != nullptr) {
      OSPREY_TRY(b.vector(s.name, s.dims, *s.vector));
      continue;
    }
    // Parts of a fused matrix must start on the repacked kernel's row groups.
    std::vector<int64_t> cuts;
    for (const auto& part : s.parts) cuts.push_back(part.n_rows);
    OSPREY_TRY(b.matrix(s.name, s.dims, s.whole, s.repackable && repack_matrices, cuts));
  }
  // Bound tensors the list does not name would be silently ignored weights:
  // a file of this family with extra layers or a different layout.
  std::unordered_set<std::string_view> listed;
  for (const TensorSpec& s : list.specs()) listed.insert(s.name);
  for (const GgufTensorInfo& t : file.tensors()) {
    if (listed.count(t.name) || t.name.rfind("blk.", 0) != 0) continue;
    // The layer number, read without exceptions: a file may hold any digits there.
    const std::string_view rest = std::string_view(t.name).substr(4);
    int64_t layer = 0;
    const auto [end, err] = std::from_chars(rest.data(), rest.data() + rest.size(), layer);
    const bool numbered = end != rest.data() && (end == rest.data() + rest.size() || *end == '.');
    if (numbered && (err == std::errc::result_out_of_range || (err == std::errc() && layer >= c.n_layer)))
      return CorruptFile(file.path() + ": tensor '" + t.name + "' belongs to a layer beyond block_count " +
                         std::to_string(c.n_layer));
  }
  std::vector<kernels::WeightMatrix*> mats;
  std::unordered_set<const kernels::WeightMatrix*> from_f16;
  for (TensorSpec& s : list.specs()) {
    if (!s.present || !s.is_matrix()) continue;
    mats.push_back(&s.whole);
    if (s.whole.ops->type == DType::kBF16 && file.find_tensor(s.name)->type == DType::kF16) from_f16.insert(&s.whole);
  }
  OSPREY_TRY(repack(std::move(mats), from_f16, w, pool));
  for (TensorSpec& s : list.specs()) {
    if (!s.present || !s.is_matrix()) continue;
    if (s.matrix != nullptr) *s.matrix = s.whole;
    int64_t row = 0;
    for (const auto& part : s.parts) {
      kernels::WeightMatrix view = s.whole;
      view.data = s.whole.data + row * s.whole.row_bytes;
      view.n_out = part.n_rows;
      *part.dst = view;
      row += part.n_rows;
    }
  }
  if (w.tied_output) w.output = w.tok_embd;  // the repacked copy
  // The destinations point into this object, which is about to move.
  for (TensorSpec& s : list.specs()) {
    s.matrix = nullptr;
    s.vector = nullptr;
    for (auto& part : s.parts) part.dst = nullptr;
  }
  w.tensors = std::move(list.specs());
  return w;
}

double ModelWeights::bytes_per_token() const {
  auto bytes = [](const kernels::WeightMatrix& m) { return static_cast<double>(m.row_bytes) * m.n_out; };
  double total = 0;
  for (const TensorSpec& s : tensors) {
    if (!s.present || !s.is_matrix()) continue;
    if (s.name == "token_embd.weight") {
      total += static_cast<double>(s.whole.row_bytes);   // the looked-up row
      if (tied_output) total += bytes(s.whole);          // and the whole, as the output matrix
    } else {
      total += bytes(s.whole) * s.active;
    }
  }
  return total;
}

std::vector<TensorSpec> plan_tensors(const ModelConfig& c) {
  ModelWeights w;
  w.layers.resize(c.n_layer);
  TensorList list(nullptr);
  c.family->tensors(c, w, list);
  return std::move(list.specs());
}

}  // namespace osprey
