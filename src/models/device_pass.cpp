#include "models/device_pass.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "backends/weight_layout.h"
#include "models/family.h"

namespace osprey {

namespace {

using backends::Buffer;

constexpr uint32_t kGridSplit = 32768;
constexpr uint32_t kRowsPerGroup = 64;  // outputs per grid row; the kernels spill the rest into the next dimension
constexpr uint32_t kTokensPerGroup = 4;  // rows of y per workgroup of matmul_tokens.kinc

uint32_t u32(int64_t v) { return static_cast<uint32_t>(v); }

// The file row a matrix starts at: 0, or a fused tensor's part's (Phi-3's
// attn_qkv holds Q, K and V rows). Parts are views into the whole, as stored
// or as the CPU repacked it, at the same row offsets either way.
int64_t first_row(const ModelWeights& w, const kernels::WeightMatrix& m) {
  for (const TensorSpec& s : w.tensors)
    if (s.present && s.name == m.tensor && s.whole.row_bytes > 0 && m.data >= s.whole.data &&
        m.data < s.whole.data + s.whole.row_bytes * s.whole.n_out)
      return (m.data - s.whole.data) / s.whole.row_bytes;
  return 0;
}

}  // namespace

std::string DevicePass::check(const GgufFile& file, const ModelConfig& c, const ModelWeights& w) {
  std::vector<std::string> missing;
  auto need = [&](bool ok, const std::string& what) {
    if (!ok && std::find(missing.begin(), missing.end(), what) == missing.end()) missing.push_back(what);
  };
  const std::string arch = c.arch;
  bool arch_ok = false;
  // The families whose forward pass is the decoder one (Mixtral is llama with
  // experts); the checks below catch what a given file adds to it.
  for (const char* family : {"llama", "mistral", "qwen2", "qwen3", "qwen3moe", "olmoe", "gpt-oss", "gemma2", "gemma3", "phi3"})
    if (arch == family) arch_ok = true;
  need(arch_ok, "the " + arch + " family");
  need(c.causal && !c.post_layer_norm, "encoders");
  need(c.head_dim <= 256 && c.head_dim % 2 == 0, "heads of " + std::to_string(c.head_dim) + " values (at most 256, even)");
  need(c.head_dim_v == 0 || c.head_dim_v == c.head_dim, "value heads of another size than key heads");
  need(c.rope_dim <= c.head_dim && c.rope_dim % 2 == 0, "a rotary dimension past the head");
  struct Unsupported {
    DType type;
    std::string first;
    int more;
  };
  std::vector<Unsupported> unsupported;
  auto matrix = [&](const kernels::WeightMatrix& m) {
    if (m.data == nullptr) return;
    const GgufTensorInfo* t = file.find_tensor(m.tensor);
    need(t != nullptr && t->dims[0] == m.n_in && t->rows() >= m.n_out, "matrices stored otherwise (" + m.tensor + ")");
    if (t == nullptr) return;
    if (backends::matrix_kernel(t->type) == nullptr) {
      // Named once per type, with the first tensor and how many more.
      auto it = std::find_if(unsupported.begin(), unsupported.end(), [&](const auto& u) { return u.type == t->type; });
      if (it == unsupported.end()) unsupported.push_back({t->type, m.tensor, 0});
      else ++it->more;
    }
    need(m.n_in % 32 == 0, "rows of " + std::to_string(m.n_in) + " values (" + m.tensor + ")");
  };
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const LayerWeights& L = w.layers[l];
    for (const kernels::WeightMatrix* m : {&L.attn.wq, &L.attn.wk, &L.attn.wv, &L.attn.wo}) matrix(*m);
    need(L.attn.sinks.empty() || static_cast<int64_t>(L.attn.sinks.size()) == c.n_head, "attention sinks of another count");
    // Q/K norms per head (Qwen3, Gemma 3) or over the whole row (OLMoE).
    for (auto [norm, heads] : {std::pair{&L.attn.q_norm, c.n_head}, {&L.attn.k_norm, c.n_head_kv}}) {
      const int64_t size = static_cast<int64_t>(norm->size());
      need(size == 0 || size == c.head_dim || size == heads * c.head_dim, "Q/K norms of another width");
    }
    if (c.layers[l].moe) {
      // Stacked experts, routed on the device: k of n_expert per token.
      const MoeWeights& M = L.moe;
      matrix(M.router);
      need(M.router.data != nullptr && !M.gate.empty() && !M.up.empty() && !M.down.empty(), "mixture-of-experts layers without stacked experts");
      need(c.n_expert_used >= 1 && c.n_expert_used <= c.n_expert, "routers choosing " + std::to_string(c.n_expert_used) + " of " + std::to_string(c.n_expert) + " experts");
      need(L.ffn.post_norm.empty(), "a post-norm after a mixture of experts");
      for (const std::vector<kernels::WeightMatrix>* stack : {&M.gate, &M.up, &M.down}) {
        if (stack->empty()) continue;
        const kernels::WeightMatrix& m = stack->front();
        matrix(m);
        const GgufTensorInfo* t = file.find_tensor(m.tensor);
        need(t != nullptr && first_row(w, m) == 0 && t->rows() == m.n_out * c.n_expert, "experts stored otherwise (" + m.tensor + ")");
      }
    } else {
      for (const kernels::WeightMatrix* m : {&L.ffn.gate, &L.ffn.up, &L.ffn.down}) matrix(*m);
      need(L.ffn.gate.data != nullptr && L.ffn.b_up.empty() && L.ffn.b_down.empty(), "ungated or biased feed-forward blocks");
    }
  }
  matrix(w.output);
  need(w.output.data != nullptr, "a model with no output head");
  for (const auto& u : unsupported)
    need(false, std::string(dtype_name(u.type)) + " weights (" + u.first +
                    (u.more > 0 ? " and " + std::to_string(u.more) + " more" : std::string()) + ")");
  std::string out;
  for (const std::string& m : missing) out += (out.empty() ? "" : "; ") + m;
  return out;
}

Expected<std::unique_ptr<DevicePass>> DevicePass::create(std::unique_ptr<backends::Device> device, const GgufFile& file,
                                                         const ModelConfig& c, const ModelWeights& w,
                                                         const float* rope_factors, const DevicePassSize& size) {
  OSPREY_CHECK(check(file, c, w).empty());  // the caller refuses such a model by name
  std::unique_ptr<DevicePass> d(new DevicePass());
  d->device_ = std::move(device);
  d->c_ = &c;
  d->size_ = size;
  for (auto [slot, name] : {std::pair{&d->rms_norm_, "rms_norm"}, {&d->rms_norm_inplace_, "rms_norm_inplace"},
                            {&d->rope_k_, "rope"}, {&d->kv_store_, "kv_store"}, {&d->attention_, "attention"},
                            {&d->silu_gate_, "silu_gate"}, {&d->add_bias_, "add_bias"}, {&d->gather_rows_, "gather_rows"},
                            {&d->gelu_gate_, "gelu_gate"}, {&d->rms_norm_add_, "rms_norm_add"}, {&d->softcap_, "softcap"},
                            {&d->moe_route_, "moe_route"}, {&d->moe_combine_, "moe_combine"},
                            {&d->swiglu_oai_, "swiglu_oai"}, {&d->expert_bias_, "expert_bias"}}) {
    *slot = backends::find_gpu_kernel(name);
    if (*slot == nullptr) return Unsupported(std::string("this build lacks the GPU kernel ") + name);
    OSPREY_TRY(d->device_->prepare(**slot));
  }
  const int64_t nb = size.n_batch, E = c.n_embd, hd = c.head_dim;
  const int64_t pair_floats = nb * std::max<int64_t>(c.rope_dim, 2);
  const int64_t q_dim = c.n_head * hd, kv_dim = c.n_head_kv * hd;
  const int64_t cache_rows = size.kv_blocks * KvCache::kBlockSize;
  int64_t n_ff = 0, n_ff_exp = 0;
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const LayerWeights& L = w.layers[l];
    const std::string p = "layer " + std::to_string(l) + " ";
    Layer D;
    // One table of angles per distinct (base, scale), as the CPU's per-layer rope.
    kernels::RopeParams rope;
    rope.style = c.rope_style;
    rope.rope_dim = static_cast<int>(c.rope_dim);
    rope.freq_base = static_cast<float>(c.layers[l].rope_base);
    rope.linear_scale = static_cast<float>(c.layers[l].rope_scale);
    rope.freq_factors = rope_factors;
    rope.attn_factor = static_cast<float>(c.rope_attn_factor);
    rope.yarn_ext = static_cast<float>(c.yarn.ext_factor);
    rope.yarn_low = static_cast<float>(c.yarn.low);
    rope.yarn_high = static_cast<float>(c.yarn.high);
    auto same = [&](const Rope& r) {
      return r.params.freq_base == rope.freq_base && r.params.linear_scale == rope.linear_scale;
    };
    auto it = std::find_if(d->ropes_.begin(), d->ropes_.end(), same);
    if (it == d->ropes_.end()) {
      OSPREY_ASSIGN_OR_RETURN(Buffer cs, d->scratch(pair_floats, "rope angles"));
      it = d->ropes_.insert(d->ropes_.end(), Rope{rope, cs});
    }
    D.rope = static_cast<int>(it - d->ropes_.begin());
    for (auto [dst, m] : {std::pair{&D.wq, &L.attn.wq}, {&D.wk, &L.attn.wk}, {&D.wv, &L.attn.wv}, {&D.wo, &L.attn.wo},
                          {&D.gate, &L.ffn.gate}, {&D.up, &L.ffn.up}, {&D.down, &L.ffn.down}, {&D.router, &L.moe.router}}) {
      OSPREY_ASSIGN_OR_RETURN(*dst, d->upload_matrix(file, w, *m));
    }
    if (c.layers[l].moe) {
      for (auto [dst, stack] : {std::pair{&D.gate_exps, &L.moe.gate}, {&D.up_exps, &L.moe.up}, {&D.down_exps, &L.moe.down}}) {
        OSPREY_ASSIGN_OR_RETURN(*dst, d->upload_matrix(file, w, stack->front(), c.n_expert));
      }
      n_ff_exp = std::max<int64_t>(n_ff_exp, L.moe.gate.front().n_out);
    }
    // Norms, biases and sinks; each may be absent (an invalid buffer).
    for (auto [dst, v, what] : {std::tuple{&D.attn_norm, &L.attn.norm, "attention norm"},
                                {&D.ffn_norm, &L.ffn.norm, "feed-forward norm"},
                                {&D.bq, &L.attn.bq, "Q bias"}, {&D.bk, &L.attn.bk, "K bias"}, {&D.bv, &L.attn.bv, "V bias"},
                                {&D.q_norm, &L.attn.q_norm, "Q norm"}, {&D.k_norm, &L.attn.k_norm, "K norm"},
                                {&D.sinks, &L.attn.sinks, "attention sinks"}, {&D.bo, &L.attn.bo, "attention output bias"},
                                {&D.attn_post_norm, &L.attn.post_norm, "attention post-norm"},
                                {&D.ffn_post_norm, &L.ffn.post_norm, "feed-forward post-norm"},
                                {&D.router_bias, &L.moe.router_bias, "router bias"},
                                {&D.gate_bias, &L.moe.gate_bias, "expert gate biases"},
                                {&D.up_bias, &L.moe.up_bias, "expert up biases"},
                                {&D.down_bias, &L.moe.down_bias, "expert down biases"}}) {
      OSPREY_ASSIGN_OR_RETURN(*dst, d->upload_vector(*v, p + what));
    }
    D.q_norm_width = static_cast<int64_t>(L.attn.q_norm.size());
    D.k_norm_width = static_cast<int64_t>(L.attn.k_norm.size());
    // fp16 keys and values, two to a word.
    OSPREY_ASSIGN_OR_RETURN(D.kc, d->device_->alloc(cache_rows * kv_dim * 2, p + "key cache"));
    OSPREY_ASSIGN_OR_RETURN(D.vc, d->device_->alloc(cache_rows * kv_dim * 2, p + "value cache"));
    d->kv_bytes_ += 2 * cache_rows * kv_dim * 2;
    n_ff = std::max<int64_t>(n_ff, L.ffn.gate.n_out);
    d->layers_.push_back(D);
  }
  OSPREY_ASSIGN_OR_RETURN(d->output_norm_, d->upload_vector(w.output_norm, "output norm"));
  OSPREY_ASSIGN_OR_RETURN(d->output_, d->upload_matrix(file, w, w.output));
  const int64_t slots = nb * std::max<int64_t>(c.n_expert_used, 1);
  // Rows of logits one pass makes: all of a pass's rows, unless a vocabulary
  // that large outgrows what the device binds (Qwen's 151936 logits of 512
  // rows are 311 MB; WebGPU binds 128 MiB by default).
  d->logit_rows_ = std::clamp<int64_t>(d->device_->max_buffer_bytes() / (c.n_vocab * 4), 1, nb);
  for (auto [buf, floats, what] : {std::tuple{&d->x_, nb * E, "residual stream"}, {&d->h_, nb * E, "normed rows"},
                                   {&d->q_, nb * q_dim, "queries"}, {&d->k_, nb * kv_dim, "keys"},
                                   {&d->v_, nb * kv_dim, "values"}, {&d->att_, nb * q_dim, "attention output"},
                                   {&d->gate_, nb * n_ff, "gate"}, {&d->up_, nb * n_ff, "up"},
                                   {&d->head_in_, nb * E, "output rows"},
                                   {&d->logits_, d->logit_rows_ * c.n_vocab, "logits"},
                                   {&d->slots_, nb, "cache slots"}, {&d->rows_, 2 * nb, "row positions"},
                                   {&d->tables_, size.n_seq_max * size.blocks_per_seq, "block tables"},
                                   {&d->out_idx_, nb, "output rows"},
                                   // Mixture-of-experts layers: router logits, each slot's expert and
                                   // weight, and the slots' gate, up and down rows.
                                   {&d->router_, nb * std::max<int64_t>(c.n_expert, 1), "router logits"},
                                   {&d->ids_, slots, "expert choices"}, {&d->wts_, slots, "expert weights"},
                                   {&d->exp_gate_, slots * n_ff_exp, "expert gate"}, {&d->exp_up_, slots * n_ff_exp, "expert up"},
                                   {&d->exp_out_, n_ff_exp > 0 ? slots * E : 0, "expert outputs"}}) {
    OSPREY_ASSIGN_OR_RETURN(*buf, d->scratch(floats, what));
  }
  d->host_cs_.resize(pair_floats);
  d->host_slots_.resize(nb);
  d->host_rows_.resize(2 * nb);
  d->host_tables_.assign(size.n_seq_max * size.blocks_per_seq, 0);
  d->host_out_.resize(nb);
  d->host_last_block_.resize(size.n_seq_max);
  return d;
}

Expected<DevicePass::Matrix> DevicePass::upload_matrix(const GgufFile& file, const ModelWeights& w,
                                                      const kernels::WeightMatrix& m, int64_t experts) {
  Matrix out;
  if (m.data == nullptr) return out;  // absent here (a mixture layer's dense feed-forward)
  const GgufTensorInfo* t = file.find_tensor(m.tensor);
  out.kernel = backends::matrix_kernel(t->type);
  OSPREY_TRY(device_->prepare(*out.kernel));
  if (experts <= 1) {  // without a four-token kernel, every pass takes the one-token one
    out.kernel_tokens = backends::matrix_kernel(t->type, /*tokens=*/true);
    if (out.kernel_tokens != nullptr) OSPREY_TRY(device_->prepare(*out.kernel_tokens));
  }
  out.n_in = u32(m.n_in);
  out.n_out = u32(m.n_out);
  out.experts = u32(experts);
  // Read from the file, as stored (the CPU may have repacked its copy); a
  // fused tensor's part starts at its own row.
  const int64_t file_row_bytes = static_cast<int64_t>(t->n_bytes) / t->rows();
  const uint8_t* first = t->data + first_row(w, m) * file_row_bytes;
  // Packed rows take the same words each, so the rows a buffer holds follow
  // from one row's size; each part is packed on its own, and holds whole experts.
  const int64_t row_bytes = backends::packed_bytes(t->type, m.n_in);
  const int64_t total_rows = m.n_out * experts;
  const int64_t unit = experts > 1 ? m.n_out : 1;  // rows a part is a multiple of
  const int64_t rows_per_part = std::min<int64_t>(total_rows, device_->max_buffer_bytes() / row_bytes / unit * unit);
  if (rows_per_part < 1)
    return Unsupported(name() + ": " + (experts > 1 ? "one expert" : "one row") + " of " + m.tensor + " (" +
                       std::to_string(row_bytes * (experts > 1 ? m.n_out : 1)) +
                       " bytes) is larger than the largest buffer the device binds");
  for (int64_t r0 = 0; r0 < total_rows; r0 += rows_per_part) {
    const int64_t rows = std::min(rows_per_part, total_rows - r0);
    const std::vector<uint32_t> packed = backends::pack_weights(t->type, first + r0 * file_row_bytes, rows * m.n_in);
    const int64_t bytes = static_cast<int64_t>(packed.size()) * 4;
    Matrix::Part part{{}, u32(r0), u32(rows)};
    const std::string what = rows == total_rows ? m.tensor : m.tensor + " rows " + std::to_string(r0) + "..";
    OSPREY_ASSIGN_OR_RETURN(part.buf, device_->alloc(bytes, what));
    OSPREY_TRY(device_->write(part.buf, 0, packed.data(), bytes));
    out.parts.push_back(part);
    ++weight_parts_;
  }
  return out;
}

Expected<Buffer> DevicePass::upload_vector(const std::vector<float>& v, const std::string& what) {
  if (v.empty()) return Buffer{};
  OSPREY_ASSIGN_OR_RETURN(Buffer b, device_->alloc(static_cast<int64_t>(v.size()) * 4, what));
  OSPREY_TRY(device_->write(b, 0, v.data(), static_cast<int64_t>(v.size()) * 4));
  return b;
}

Expected<Buffer> DevicePass::scratch(int64_t floats, const std::string& what) {
  return device_->alloc(std::max<int64_t>(floats, 1) * 4, what);
}

bool DevicePass::time_operations(bool on) {
  timing_ = device_->time_dispatches(on) && on;
  return timing_ == on;
}

std::string DevicePass::name() const { return std::string(device_->kind()) + " (" + device_->adapter() + ")"; }

void DevicePass::matmul(const Matrix& m, Buffer x, Buffer y, uint32_t rows, bool accumulate) {
  for (const Matrix::Part& part : m.parts) {
    const uint32_t params[9] = {m.n_in, part.n_out, accumulate ? 1u : 0u, part.o_base, m.n_out, 0, 1, 0, rows};
    dispatch_matmul(m, part, x, y, params, rows);
  }
}

void DevicePass::matmul_experts(const Matrix& m, Buffer x, Buffer y, uint32_t slots, uint32_t x_div) {
  for (const Matrix::Part& part : m.parts) {
    // Each slot's n_out outputs from its expert's rows, where this part holds them.
    const uint32_t params[9] = {m.n_in, part.n_out, 0, 0, m.n_out, m.n_out, x_div, part.o_base / m.n_out, slots};
    dispatch_matmul(m, part, x, y, params, slots);
  }
}

void DevicePass::dispatch_matmul(const Matrix& m, const Matrix::Part& part, Buffer x, Buffer y,
                                 const uint32_t (&params)[9], uint32_t rows) {
  // matmul.kinc's outputs per workgroup; an expert's rows when they are stacked.
  const uint32_t outputs = m.experts > 1 ? m.n_out : part.n_out;
  const uint32_t groups = (outputs + kRowsPerGroup - 1) / kRowsPerGroup;
  const uint32_t grid_x = std::min(groups, kGridSplit), grid_z = (groups + kGridSplit - 1) / kGridSplit;
  // Several rows share each weight read four at a time (matmul_tokens.kinc,
  // which reads no expert ids); a row's result is the same bits in either kernel.
  if (m.kernel_tokens != nullptr && rows > 1) {
    device_->dispatch(*m.kernel_tokens, {part.buf, x, y}, params, sizeof params, grid_x,
                      (rows + kTokensPerGroup - 1) / kTokensPerGroup, grid_z);
  } else {
    device_->dispatch(*m.kernel, {part.buf, x, y, ids_}, params, sizeof params, grid_x, rows, grid_z);
  }
}

void DevicePass::elementwise(const backends::KernelSource& k, std::initializer_list<Buffer> buffers, const void* params,
                             int param_bytes, int64_t n) {
  const int64_t groups = (n + 63) / 64;
  device_->dispatch(k, buffers, params, param_bytes, u32(std::min<int64_t>(groups, kGridSplit)),
                    u32((groups + kGridSplit - 1) / kGridSplit));
}

void DevicePass::project_into_residual(const Matrix& m, Buffer in, Buffer post_norm, uint32_t rows) {
  if (!post_norm.valid()) return matmul(m, in, x_, rows, true);
  matmul(m, in, h_, rows, false);
  const struct {
    uint32_t n;
    float eps;
  } params{u32(c_->n_embd), static_cast<float>(c_->norm_eps)};
  device_->dispatch(*rms_norm_add_, {h_, post_norm, x_}, &params, sizeof params, rows);
}

const backends::KernelSource& DevicePass::gated_activation() const {
  switch (c_->activation) {
    case kernels::Activation::kGelu: return *gelu_gate_;
    case kernels::Activation::kSwigluOai: return *swiglu_oai_;
    case kernels::Activation::kSilu: break;
  }
  return *silu_gate_;
}

void DevicePass::add_bias(Buffer y, Buffer bias, int64_t rows, int64_t width) {
  const uint32_t params[2] = {u32(rows * width), u32(width)};
  elementwise(*add_bias_, {y, bias}, params, sizeof params, rows * width);
}

void DevicePass::expert_bias(Buffer y, Buffer bias, uint32_t slots, uint32_t width) {
  const uint32_t params[2] = {slots * width, width};
  elementwise(*expert_bias_, {y, bias, ids_}, params, sizeof params, params[0]);
}

void DevicePass::output_head(uint32_t rows) {
  const ModelConfig& c = *c_;
  const uint32_t width = u32(c.n_embd);
  device_->dispatch(*gather_rows_, {x_, out_idx_, h_}, &width, sizeof width, rows);
  const struct {
    uint32_t n;
    float eps;
  } norm{width, static_cast<float>(c.norm_eps)};
  device_->dispatch(*rms_norm_, {h_, output_norm_, head_in_}, &norm, sizeof norm, rows);
  matmul(output_, head_in_, logits_, rows, false);
  if (c.final_softcap > 0) {
    const struct {
      uint32_t n;
      float cap;
    } cap{u32(rows * c.n_vocab), static_cast<float>(c.final_softcap)};
    elementwise(*softcap_, {logits_}, &cap, sizeof cap, cap.n);
  }
}

Status DevicePass::finish_pass() {
  OSPREY_TRY(device_->finish());
  if (!timing_) return Status::Ok();
  for (const backends::DispatchTime& d : device_->dispatch_times()) {
    auto it = std::find_if(op_times_.begin(), op_times_.end(), [&](const OpTime& o) { return o.kernel == d.kernel->name; });
    if (it == op_times_.end()) it = op_times_.insert(op_times_.end(), OpTime{d.kernel->name});
    ++it->calls;
    it->seconds += d.seconds;
  }
  return Status::Ok();
}

void DevicePass::mixture_of_experts(const Layer& L, uint32_t rows) {
  const ModelConfig& c = *c_;
  const uint32_t k = u32(c.n_expert_used), slots = rows * k;
  // Routing: every token's k experts and weights, left on the device.
  matmul(L.router, h_, router_, rows, false);
  if (L.router_bias.valid()) add_bias(router_, L.router_bias, rows, c.n_expert);
  const uint32_t route[5] = {rows, u32(c.n_expert), k, c.gating == Gating::kSoftmaxOfTopK ? 1u : 0u,
                             c.renormalize_experts ? 1u : 0u};
  elementwise(*moe_route_, {router_, ids_, wts_}, route, sizeof route, rows);
  // Each slot through its expert; the slots of a token share its normed row.
  matmul_experts(L.gate_exps, h_, exp_gate_, slots, k);
  matmul_experts(L.up_exps, h_, exp_up_, slots, k);
  const uint32_t n_ff = L.gate_exps.n_out, n_gate = slots * n_ff;
  if (L.gate_bias.valid()) expert_bias(exp_gate_, L.gate_bias, slots, n_ff);
  if (L.up_bias.valid()) expert_bias(exp_up_, L.up_bias, slots, n_ff);
  elementwise(gated_activation(), {exp_gate_, exp_up_}, &n_gate, sizeof n_gate, n_gate);
  matmul_experts(L.down_exps, exp_gate_, exp_out_, slots, 1);
  if (L.down_bias.valid()) expert_bias(exp_out_, L.down_bias, slots, u32(c.n_embd));
  const uint32_t combine[3] = {rows * u32(c.n_embd), u32(c.n_embd), k};
  elementwise(*moe_combine_, {x_, exp_out_, wts_}, combine, sizeof combine, combine[0]);
}

Status DevicePass::forward(Pass& p) {
  const ModelConfig& c = *c_;
  Workspace& ws = p.ws;
  const int64_t n = p.n, E = c.n_embd, hd = c.head_dim, bs = KvCache::kBlockSize;
  const int64_t q_dim = c.n_head * hd, kv_dim = c.n_head_kv * hd, pairs = c.rope_dim / 2;
  if (n > size_.n_batch) return InvalidArgument("a pass of more rows than the device pass was sized for");

  // The rows' inputs: embeddings (looked up on the host, every type and
  // scale as on the CPU), rope angles, cache slots, positions, block tables.
  embed(p);
  OSPREY_TRY(device_->write(x_, 0, ws.x.data(), n * E * 4));
  std::vector<int64_t>& last_block = host_last_block_;
  std::fill(last_block.begin(), last_block.end(), -1);
  for (int64_t t = 0; t < n; ++t) {
    const int32_t seq = ws.tok_seq[t];
    const int64_t pos = ws.tok_pos[t];
    host_slots_[t] = u32(int64_t{p.block_tables[seq][pos / bs]} * bs + pos % bs);
    host_rows_[2 * t] = u32(seq);
    host_rows_[2 * t + 1] = u32(pos);
    last_block[seq] = std::max(last_block[seq], pos / bs);
  }
  for (int s = 0; s < size_.n_seq_max; ++s)
    for (int64_t b = 0; b <= last_block[s]; ++b) host_tables_[s * size_.blocks_per_seq + b] = p.block_tables[s][b];
  for (int64_t i = 0; i < p.n_out; ++i) host_out_[i] = u32(ws.out_rows[i]);
  for (const Rope& r : ropes_) {
    for (int64_t t = 0; t < n; ++t) kernels::rope_cos_sin(ws.tok_pos[t], r.params, host_cs_.data() + t * pairs * 2);
    OSPREY_TRY(device_->write(r.cs, 0, host_cs_.data(), std::max<int64_t>(n * pairs * 2, 1) * 4));
  }
  OSPREY_TRY(device_->write(slots_, 0, host_slots_.data(), n * 4));
  OSPREY_TRY(device_->write(rows_, 0, host_rows_.data(), 2 * n * 4));
  OSPREY_TRY(device_->write(tables_, 0, host_tables_.data(), static_cast<int64_t>(host_tables_.size()) * 4));
  if (p.n_out > 0) OSPREY_TRY(device_->write(out_idx_, 0, host_out_.data(), p.n_out * 4));

  const float eps = static_cast<float>(c.norm_eps);
  const uint32_t rows = u32(n);
  struct NormParams {
    uint32_t n;
    float eps;
  };
  device_->begin();
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const Layer& L = layers_[l];
    const NormParams embd_norm{u32(E), eps};
    // Attention.
    device_->dispatch(*rms_norm_, {x_, L.attn_norm, h_}, &embd_norm, sizeof embd_norm, rows);
    matmul(L.wq, h_, q_, rows, false);
    matmul(L.wk, h_, k_, rows, false);
    matmul(L.wv, h_, v_, rows, false);
    for (auto [bias, buf, width] : {std::tuple{L.bq, q_, q_dim}, {L.bk, k_, kv_dim}, {L.bv, v_, kv_dim}})
      if (bias.valid()) add_bias(buf, bias, n, width);
    // Per head (a norm of head_dim weights) or over the whole row (OLMoE's).
    for (auto [norm, buf, width, row] : {std::tuple{L.q_norm, q_, L.q_norm_width, q_dim}, {L.k_norm, k_, L.k_norm_width, kv_dim}}) {
      if (!norm.valid()) continue;
      const NormParams np{u32(width), eps};
      device_->dispatch(*rms_norm_inplace_, {buf, norm}, &np, sizeof np, u32(n * row / width));
    }
    if (pairs > 0) {
      const uint32_t neox = c.rope_style == kernels::RopeStyle::kNeox ? 1u : 0u;
      const uint32_t rq[4] = {u32(c.n_head), u32(hd), u32(pairs), neox}, rk[4] = {u32(c.n_head_kv), u32(hd), u32(pairs), neox};
      const Buffer cs = ropes_[L.rope].cs;
      device_->dispatch(*rope_k_, {q_, cs}, rq, sizeof rq, rows);
      device_->dispatch(*rope_k_, {k_, cs}, rk, sizeof rk, rows);
    }
    const uint32_t half_dim = u32(kv_dim / 2);
    device_->dispatch(*kv_store_, {k_, v_, slots_, L.kc, L.vc}, &half_dim, sizeof half_dim, rows);
    struct {
      uint32_t n_head, q_per_kv, head_dim, kv_dim, max_blocks, window;
      float scale, softcap;
      uint32_t has_sinks;
    } ap{u32(c.n_head), u32(c.n_head / c.n_head_kv), u32(hd), u32(kv_dim), u32(size_.blocks_per_seq),
         u32(c.layers[l].window), static_cast<float>(c.attn_scale), static_cast<float>(c.attn_softcap),
         L.sinks.valid() ? 1u : 0u};
    // Without sinks any buffer the kernel only reads stands in for them.
    device_->dispatch(*attention_, {q_, L.kc, L.vc, tables_, rows_, att_, L.sinks.valid() ? L.sinks : q_}, &ap,
                      sizeof ap, u32(c.n_head), rows);
    project_into_residual(L.wo, att_, L.attn_post_norm, rows);
    if (L.bo.valid()) add_bias(x_, L.bo, n, E);
    // Feed-forward.
    device_->dispatch(*rms_norm_, {x_, L.ffn_norm, h_}, &embd_norm, sizeof embd_norm, rows);
    if (!L.router.parts.empty()) {
      mixture_of_experts(L, rows);
      continue;
    }
    matmul(L.gate, h_, gate_, rows, false);
    matmul(L.up, h_, up_, rows, false);
    const uint32_t n_gate = u32(n * L.gate.n_out);
    elementwise(gated_activation(), {gate_, up_}, &n_gate, sizeof n_gate, n_gate);
    project_into_residual(L.down, gate_, L.ffn_post_norm, rows);
  }
  // The logits of as many rows as the logits buffer holds come with the
  // pass; more (every row's, for perplexity) follow in passes of the head alone.
  const int64_t first = std::min(p.n_out, logit_rows_);
  if (first > 0) output_head(u32(first));
  OSPREY_TRY(finish_pass());
  if (first > 0) OSPREY_TRY(device_->read(logits_, 0, p.logits, first * c.n_vocab * 4));
  for (int64_t r0 = first; r0 < p.n_out; r0 += logit_rows_) {
    const int64_t count = std::min(logit_rows_, p.n_out - r0);
    OSPREY_TRY(device_->write(out_idx_, 0, host_out_.data() + r0, count * 4));
    device_->begin();
    output_head(u32(count));
    OSPREY_TRY(finish_pass());
    OSPREY_TRY(device_->read(logits_, 0, p.logits + r0 * c.n_vocab, count * c.n_vocab * 4));
  }
  if (!ws.pool_rows.empty()) {
    // Embeddings: the pass's final residual rows come back, and the host
    // pools them as the CPU pass does (through the output norm, in the
    // inputs' order), so every pooling kind works the same on both.
    OSPREY_TRY(device_->read(x_, 0, ws.x.data(), n * E * 4));
    pool_embeddings(p, &p.w.output_norm);
  }
  return Status::Ok();
}

}  // namespace osprey
