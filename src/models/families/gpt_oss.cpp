// gpt-oss (GGUF architecture "gpt-oss"): a mixture of experts with learned
// attention sinks.
//   x = embedding[token]
//   per layer:  x += attention(x)   (Q/K/V and output biases; one sink logit per head;
//                                    a 128-position window in even layers, global in odd ones; YaRN rope)
//               x += moe(x)         (router with a bias: the top k logits, softmax over those;
//                                    experts with biases and a clamped swiglu)
//   logits = output(norm(x))
// The experts are stored in MXFP4.
#include "models/blocks.h"
#include "models/family.h"

namespace osprey {

namespace {

Status configure(const GgufFile& file, ModelConfig& c) {
  if (c.n_expert == 0) return CorruptFile(file.path() + ": gpt-oss.expert_count is missing; a gpt-oss file has experts");
  if (c.n_swa <= 0)
    return CorruptFile(file.path() + ": gpt-oss.attention.sliding_window is missing or 0; gpt-oss needs its window");
  c.activation = kernels::Activation::kSwigluOai;
  c.gating = Gating::kSoftmaxOfTopK;
  c.renormalize_experts = false;
  for (int64_t l = 0; l < c.n_layer; l += 2) c.layers[l].window = c.n_swa;
  return Status::Ok();
}

void tensors(const ModelConfig& c, ModelWeights& w, TensorList& t) {
  const int64_t E = c.n_embd, q_dim = c.n_head * c.head_dim, kv_dim = c.n_head_kv * c.head_dim;
  const int64_t F = c.n_ff_exp, X = c.n_expert;
  list_embedding_and_head(c, w, t);
  for (int64_t i = 0; i < c.n_layer; ++i) {
    LayerWeights& L = w.layers[i];
    const std::string p = "blk." + std::to_string(i) + ".";
    list_attention(c, i, L, t);
    t.vector(p + "attn_q.bias", q_dim, &L.attn.bq);
    t.vector(p + "attn_k.bias", kv_dim, &L.attn.bk);
    t.vector(p + "attn_v.bias", kv_dim, &L.attn.bv);
    t.vector(p + "attn_output.bias", E, &L.attn.bo);
    t.vector(p + "attn_sinks.weight", c.n_head, &L.attn.sinks);
    // The FFN's pre-norm is stored under the name of a post-attention norm.
    t.vector(p + "post_attention_norm.weight", E, &L.ffn.norm);
    t.matrix(p + "ffn_gate_inp.weight", E, X, &L.moe.router);
    t.vector(p + "ffn_gate_inp.bias", X, &L.moe.router_bias);
    t.experts(p + "ffn_gate_exps.weight", E, F, X, c.n_expert_used, &L.moe.gate);
    t.experts(p + "ffn_up_exps.weight", E, F, X, c.n_expert_used, &L.moe.up);
    t.experts(p + "ffn_down_exps.weight", F, E, X, c.n_expert_used, &L.moe.down);
    t.vector(p + "ffn_gate_exps.bias", {F, X}, &L.moe.gate_bias);
    t.vector(p + "ffn_up_exps.bias", {F, X}, &L.moe.up_bias);
    t.vector(p + "ffn_down_exps.bias", {E, X}, &L.moe.down_bias);
  }
}


}  // namespace

const Family kGptOssFamily{"gpt-oss", kernels::RopeStyle::kNeox, configure, tensors, decoder_forward};

}  // namespace osprey
