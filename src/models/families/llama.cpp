// The Llama-shaped families: llama (and Mixtral, llama with experts),
// mistral, qwen2, qwen3 and qwen3moe.
//   x = embedding[token]
//   per layer:  x += attention(x)      (QKV biases in qwen2; per-head Q/K norms in qwen3)
//               x += ffn(x)            (SiLU-gated; a mixture of experts when the file has them)
//   logits = output(norm(x))
// What differs between them follows from the tensors present, except the
// rotary pairing, which is a property of the family.
#include "models/blocks.h"
#include "models/family.h"

namespace osprey {

namespace {

Status configure(const GgufFile&, ModelConfig& c) {
  // Global attention in every layer: a sliding_window key, which some
  // conversions copy from config.json, is ignored as the reference engines
  // ignore it for these families.
  c.activation = kernels::Activation::kSilu;
  // Mixtral and Qwen3-MoE: softmax over the experts, the top k renormalized.
  c.gating = Gating::kSoftmax;
  c.renormalize_experts = true;
  return Status::Ok();
}

Status configure_qwen3moe(const GgufFile& file, ModelConfig& c) {
  if (c.n_expert == 0) return CorruptFile(file.path() + ": qwen3moe.expert_count is missing; a qwen3moe file has experts");
  return configure(file, c);
}

void list_layer(const ModelConfig& c, int64_t i, LayerWeights& L, TensorList& t, bool qk_norm) {
  const std::string p = "blk." + std::to_string(i) + ".";
  const int64_t q_dim = c.n_head * c.head_dim, kv_dim = c.n_head_kv * c.head_dim;
  list_attention(c, i, L, t);
  t.vector(p + "attn_q.bias", q_dim, &L.attn.bq, /*optional=*/true);
  t.vector(p + "attn_k.bias", kv_dim, &L.attn.bk, true);
  t.vector(p + "attn_v.bias", kv_dim, &L.attn.bv, true);
  if (qk_norm) {
    t.vector(p + "attn_q_norm.weight", c.head_dim, &L.attn.q_norm);
    t.vector(p + "attn_k_norm.weight", c.head_dim, &L.attn.k_norm);
  }
  list_feed_forward(c, i, L, t);
}

void tensors(const ModelConfig& c, ModelWeights& w, TensorList& t, bool qk_norm) {
  list_embedding_and_head(c, w, t);
  t.vector("rope_freqs.weight", c.rope_dim / 2, &w.rope_freq_factors, /*optional=*/true);  // Llama 3.1+
  for (int64_t i = 0; i < c.n_layer; ++i) list_layer(c, i, w.layers[i], t, qk_norm);
}

void tensors_llama(const ModelConfig& c, ModelWeights& w, TensorList& t) { tensors(c, w, t, false); }
void tensors_qwen3(const ModelConfig& c, ModelWeights& w, TensorList& t) { tensors(c, w, t, true); }


}  // namespace

const Family kLlamaFamily{"llama", kernels::RopeStyle::kInterleaved, configure, tensors_llama, decoder_forward};
const Family kMistralFamily{"mistral", kernels::RopeStyle::kInterleaved, configure, tensors_llama, decoder_forward};
const Family kQwen2Family{"qwen2", kernels::RopeStyle::kNeox, configure, tensors_llama, decoder_forward};
const Family kQwen3Family{"qwen3", kernels::RopeStyle::kNeox, configure, tensors_qwen3, decoder_forward};
const Family kQwen3MoeFamily{"qwen3moe", kernels::RopeStyle::kNeox, configure_qwen3moe, tensors_qwen3, decoder_forward};

}  // namespace osprey
