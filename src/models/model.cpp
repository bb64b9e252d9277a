#include "models/model.h"

#include <algorithm>

namespace osprey {

Expected<std::unique_ptr<Model>> Model::load(const std::string& path, const ModelOptions& options) {
  OSPREY_ASSIGN_OR_RETURN(GgufFile file, GgufFile::open(path));
  return from_file(std::move(file), options);
}

Expected<std::unique_ptr<Model>> Model::from_file(GgufFile file, const ModelOptions& options) {
  std::unique_ptr<Model> m(new Model());
  m->file_ = std::move(file);
  OSPREY_ASSIGN_OR_RETURN(m->config_, ModelConfig::from_gguf(m->file_));
  const kernels::Isa isa = options.isa.value_or(kernels::active_isa());
  OSPREY_ASSIGN_OR_RETURN(m->weights_, ModelWeights::bind(m->file_, m->config_, isa));
  const ModelConfig& c = m->config_;
  m->attend_ = kernels::attend_kernel(isa);

  if (options.n_ctx < 0 || options.n_ctx > (1 << 20))
    return InvalidArgument("context size " + std::to_string(options.n_ctx) + " is out of range (1..1048576)");
  if (options.n_batch < 1 || options.n_batch > 4096)
    return InvalidArgument("batch size " + std::to_string(options.n_batch) + " is out of range (1..4096)");
  if (options.n_threads < 0 || options.n_threads > 1024)
    return InvalidArgument("thread count " + std::to_string(options.n_threads) + " is out of range");
  m->n_ctx_ = options.n_ctx > 0 ? options.n_ctx : std::min<int64_t>(c.n_ctx_train, 4096);
  m->n_batch_ = options.n_batch;
  const int threads = options.n_threads > 0 ? options.n_threads : default_thread_count();
  m->pool_ = std::make_unique<ThreadPool>(threads);

  const int64_t q_dim = c.n_head * c.head_dim, kv_dim = c.n_head_kv * c.head_dim, nb = m->n_batch_;
  m->cache_ = KvCache(c.n_layer, m->n_ctx_, kv_dim);
  Workspace& w = m->ws_;
  w.x.resize(nb * c.n_embd);
  w.xn.resize(nb * c.n_embd);
  w.q.resize(nb * q_dim);
  w.k.resize(nb * kv_dim);
  w.v.resize(nb * kv_dim);
  w.att.resize(nb * q_dim);
  w.gate.resize(nb * c.n_ff);
  w.up.resize(nb * c.n_ff);
  w.proj.resize(nb * c.n_embd);
  w.logits.resize(c.n_vocab);
  w.scores.resize(threads * m->n_ctx_);
  int64_t act = kernels::matmul_scratch_bytes(m->weights_.output, 1);
  for (const LayerWeights& L : m->weights_.layers) {
    const kernels::WeightMatrix* qkv[3] = {&L.wq, &L.wk, &L.wv};
    const kernels::WeightMatrix* gate_up[2] = {&L.w_gate, &L.w_up};
    act = std::max({act, kernels::matmul_group_scratch_bytes(qkv, 3, nb), kernels::matmul_group_scratch_bytes(gate_up, 2, nb),
                    kernels::matmul_scratch_bytes(L.wo, nb), kernels::matmul_scratch_bytes(L.w_down, nb)});
  }
  w.act.resize(act);
  return m;
}

Expected<const float*> Model::eval(const int32_t* tokens, int64_t n) {
  if (n <= 0) return InvalidArgument("no tokens to evaluate");
  if (n_past_ + n > n_ctx_)
    return OutOfRange("context is full: " + std::to_string(n_past_) + " tokens held + " + std::to_string(n) +
                      " new exceed the context size of " + std::to_string(n_ctx_));
  for (int64_t i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= config_.n_vocab)
      return InvalidArgument("token id " + std::to_string(tokens[i]) + " is outside the vocabulary (0.." +
                             std::to_string(config_.n_vocab - 1) + ")");
  for (int64_t i = 0; i < n; i += n_batch_) forward_batch(tokens + i, std::min(n_batch_, n - i));
  compute_logits();
  return static_cast<const float*>(ws_.logits.data());
}

void Model::truncate(int64_t n) { n_past_ = std::clamp<int64_t>(n, 0, n_past_); }

}  // namespace osprey
