// Phi-3, Phi-3.5 and Phi-4-mini (GGUF architecture "phi3").
//   x = embedding[token]
//   per layer:  x += attention(x)   (one fused attn_qkv matrix; a window over every layer when the file sets one)
//               x += ffn(x)         (one fused ffn_up matrix: the gate's rows, then the up rows)
//   logits = output(norm(x))
// Long-context files carry LongRoPE's two factor tables: the long one is
// used when the context exceeds the original training context, the short
// one otherwise, and rope.scaling.attn_factor rescales the rotated values.
#include "models/blocks.h"
#include "models/family.h"

namespace osprey {

namespace {

Status configure(const GgufFile&, ModelConfig& c) {
  c.activation = kernels::Activation::kSilu;
  // Phi-3-mini-4k's window (2047) is smaller than its context; the 128k
  // models' windows cover it whole, which is global attention.
  if (c.n_swa > 0 && c.n_swa < c.n_ctx_train)
    for (LayerConfig& l : c.layers) l.window = c.n_swa;
  return Status::Ok();
}

void tensors(const ModelConfig& c, ModelWeights& w, TensorList& t) {
  const int64_t E = c.n_embd, q_dim = c.n_head * c.head_dim, kv_dim = c.n_head_kv * c.head_dim;
  list_embedding_and_head(c, w, t);
  t.vector("rope_factors_long.weight", c.rope_dim / 2, &w.rope_factors_long, /*optional=*/true);
  t.vector("rope_factors_short.weight", c.rope_dim / 2, &w.rope_factors_short, true);
  for (int64_t i = 0; i < c.n_layer; ++i) {
    LayerWeights& L = w.layers[i];
    const std::string p = "blk." + std::to_string(i) + ".";
    t.vector(p + "attn_norm.weight", E, &L.attn.norm);
    if (t.has(p + "attn_qkv.weight") || !t.has(p + "attn_q.weight")) {
      t.fused(p + "attn_qkv.weight", E, {{q_dim, &L.attn.wq}, {kv_dim, &L.attn.wk}, {kv_dim, &L.attn.wv}});
    } else {
      t.matrix(p + "attn_q.weight", E, q_dim, &L.attn.wq);
      t.matrix(p + "attn_k.weight", E, kv_dim, &L.attn.wk);
      t.matrix(p + "attn_v.weight", E, kv_dim, &L.attn.wv);
    }
    t.matrix(p + "attn_output.weight", q_dim, E, &L.attn.wo);
    t.vector(p + "ffn_norm.weight", E, &L.ffn.norm);
    t.fused(p + "ffn_up.weight", E, {{c.n_ff, &L.ffn.gate}, {c.n_ff, &L.ffn.up}});
    t.matrix(p + "ffn_down.weight", c.n_ff, E, &L.ffn.down);
  }
}


}  // namespace

const Family kPhi3Family{"phi3", kernels::RopeStyle::kNeox, configure, tensors, decoder_forward};

}  // namespace osprey
