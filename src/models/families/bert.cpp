// BERT-style encoders for embeddings (GGUF architecture "bert": BERT,
// MiniLM, BGE, E5 and the other sentence-transformers of that shape).
//   x = LayerNorm(embedding[token] + position[pos] + token_type[0])
//   per layer:  x = LayerNorm(x + attention(x))   (biases everywhere; every token sees the whole input)
//               x = LayerNorm(x + W_down . gelu(W_up . x + b_up) + b_down)
//   embedding = pool(x)   (mean, first token or last, as the file says)
// Post-norm rather than pre-norm, learned positions rather than rotary ones,
// and no output head: the model embeds and cannot generate.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "models/blocks.h"
#include "models/family.h"

namespace osprey {

namespace {

Status configure(const GgufFile& file, ModelConfig& c) {
  c.causal = false;
  c.post_layer_norm = true;
  c.rope_dim = 0;  // positions are learned rows, added to the input
  c.activation = kernels::Activation::kGelu;
  // A file without a pooling type is averaged, as sentence-transformers
  // pools most BERT-shaped models.
  if (c.pooling == Pooling::kNone) c.pooling = Pooling::kMean;
  c.n_cls_out = 1;
  if (const GgufValue* labels = file.find("bert.classifier.output_labels")) c.n_cls_out = static_cast<int64_t>(labels->array_size());
  if (c.n_cls_out < 1 || c.n_cls_out > c.n_embd)
    return CorruptFile(file.path() + ": bert.classifier.output_labels has " + std::to_string(c.n_cls_out) +
                       " labels (1.." + std::to_string(c.n_embd) + " expected)");
  if (c.pooling == Pooling::kRank && !file.find_tensor("cls.output.weight"))
    return CorruptFile(file.path() + ": pooling_type rank (a reranker) needs the classification head cls.output.weight");
  OSPREY_ASSIGN_OR_RETURN(c.n_token_types, file.get_int("tokenizer.ggml.token_type_count", 2));
  if (c.n_token_types < 1 || c.n_token_types > 16)
    return CorruptFile(file.path() + ": tokenizer.ggml.token_type_count " + std::to_string(c.n_token_types) +
                       " is out of range (1..16)");
  return Status::Ok();
}

void list_layer_norm(TensorList& t, const std::string& name, int64_t n, LayerNormWeights& dst) {
  t.vector(name + ".weight", n, &dst.weight);
  t.vector(name + ".bias", n, &dst.bias);
}

void tensors(const ModelConfig& c, ModelWeights& w, TensorList& t) {
  const int64_t E = c.n_embd, q_dim = c.n_head * c.head_dim, kv_dim = c.n_head_kv * c.head_dim;
  t.matrix("token_embd.weight", E, c.n_vocab, &w.tok_embd, false, /*repackable=*/false);
  t.vector("position_embd.weight", {E, c.n_ctx_train}, &w.pos_embd);
  t.vector("token_types.weight", {E, c.n_token_types}, &w.token_types);
  list_layer_norm(t, "token_embd_norm", E, w.embd_norm);
  // A reranker's head: pooled first token -> dense + tanh -> scores.
  t.matrix("cls.weight", E, E, &w.cls, /*optional=*/true);
  t.vector("cls.bias", E, &w.cls_b, true);
  t.matrix("cls.output.weight", E, c.n_cls_out, &w.cls_out, true);
  t.vector("cls.output.bias", c.n_cls_out, &w.cls_out_b, true);
  for (int64_t i = 0; i < c.n_layer; ++i) {
    LayerWeights& L = w.layers[i];
    const std::string p = "blk." + std::to_string(i) + ".";
    t.matrix(p + "attn_q.weight", E, q_dim, &L.attn.wq);
    t.vector(p + "attn_q.bias", q_dim, &L.attn.bq);
    t.matrix(p + "attn_k.weight", E, kv_dim, &L.attn.wk);
    t.vector(p + "attn_k.bias", kv_dim, &L.attn.bk);
    t.matrix(p + "attn_v.weight", E, kv_dim, &L.attn.wv);
    t.vector(p + "attn_v.bias", kv_dim, &L.attn.bv);
    t.matrix(p + "attn_output.weight", q_dim, E, &L.attn.wo);
    t.vector(p + "attn_output.bias", E, &L.attn.bo);
    list_layer_norm(t, p + "attn_output_norm", E, L.attn_out_norm);
    t.matrix(p + "ffn_up.weight", E, c.n_ff, &L.ffn.up);
    t.vector(p + "ffn_up.bias", c.n_ff, &L.ffn.b_up);
    t.matrix(p + "ffn_down.weight", c.n_ff, E, &L.ffn.down);
    t.vector(p + "ffn_down.bias", E, &L.ffn.b_down);
    list_layer_norm(t, p + "layer_output_norm", E, L.out_norm);
  }
}

// x[t] += position[pos] + token_type[0], then LayerNorm.
void add_positions(Pass& p) {
  const int64_t E = p.c.n_embd;
  float* x = p.ws.x.data();
  for (int64_t t = 0; t < p.n; ++t) {
    kernels::add(x + t * E, p.w.pos_embd.data() + p.ws.tok_pos[t] * E, E);
    kernels::add(x + t * E, p.w.token_types.data(), E);
  }
  layer_norm_rows(p, p.w.embd_norm);
}

// W_down . gelu(W_up . x + b_up) + b_down, left in ws.proj.
void encoder_feed_forward(Pass& p, int64_t l) {
  const FfnWeights& F = p.w.layers[l].ffn;
  const int64_t n = p.n, n_ff = F.up.n_out;
  Workspace& w = p.ws;
  {
    const TraceSpan span(p.tracer, "ffn_up", l, n);
    kernels::matmul(p.pool, F.up, w.x.data(), n, w.up.data(), w.act.data());
    apply_adapters(p, F.up, w.x.data(), nullptr, n, w.up.data());
    kernels::add_bias(w.up.data(), F.b_up.data(), n, n_ff);
    p.pool.parallel_for(n * n_ff, 16, [&](int64_t b, int64_t e, int) { p.gelu_erf(w.up.data() + b, e - b); });
  }
  const TraceSpan span(p.tracer, "ffn_down", l, n);
  kernels::matmul(p.pool, F.down, w.up.data(), n, w.proj.data(), w.act.data());
  apply_adapters(p, F.down, w.up.data(), nullptr, n, w.proj.data());
  kernels::add_bias(w.proj.data(), F.b_down.data(), n, p.c.n_embd);
}

// A reranker: each pooled row of this pass (an encoder's input is whole in
// one pass) becomes its scores, left at the front of its embedding row.
void rank_head(Pass& p) {
  const int64_t E = p.c.n_embd, n_out = p.c.n_cls_out;
  Workspace& w = p.ws;
  int64_t k = 0;
  for (const Workspace::PoolRow& r : w.pool_rows)
    if (k == 0 || w.pool_rows[k - 1].dest != r.dest) w.pool_rows[k++] = r;  // one per input (first-token pooling)
  if (k == 0) return;
  const TraceSpan span(p.tracer, "rank_head", -1, k);
  for (int64_t i = 0; i < k; ++i) std::copy_n(&w.embd[w.pool_rows[i].dest * E], E, &w.proj[i * E]);
  const float* h = w.proj.data();
  if (p.w.cls.data != nullptr) {
    kernels::matmul(p.pool, p.w.cls, w.proj.data(), k, w.q.data(), w.act.data());
    if (!p.w.cls_b.empty()) kernels::add_bias(w.q.data(), p.w.cls_b.data(), k, E);
    for (int64_t i = 0; i < k * E; ++i) w.q[i] = std::tanh(w.q[i]);
    h = w.q.data();
  }
  kernels::matmul(p.pool, p.w.cls_out, h, k, w.k.data(), w.act.data());
  if (!p.w.cls_out_b.empty()) kernels::add_bias(w.k.data(), p.w.cls_out_b.data(), k, n_out);
  for (int64_t i = 0; i < k; ++i) std::copy_n(&w.k[i * n_out], n_out, &w.embd[w.pool_rows[i].dest * E]);
}

void forward(Pass& p) {
  const int64_t rows = p.n * p.c.n_embd;
  embed(p);
  add_positions(p);
  for (int64_t l = 0; l < p.c.n_layer; ++l) {
    const LayerWeights& L = p.w.layers[l];
    attention_output(p, l);
    kernels::add(p.ws.x.data(), p.ws.proj.data(), rows);
    layer_norm_rows(p, L.attn_out_norm);
    encoder_feed_forward(p, l);
    kernels::add(p.ws.x.data(), p.ws.proj.data(), rows);
    layer_norm_rows(p, L.out_norm);
  }
  pool_embeddings(p, nullptr);
  if (p.c.pooling == Pooling::kRank) rank_head(p);
}

}  // namespace

const Family kBertFamily{"bert", kernels::RopeStyle::kNeox, configure, tensors, forward};

}  // namespace osprey
