// OLMoE: a Llama-shaped mixture of experts with Q and K normalised over
// their whole rows (not per head).
//   x = embedding[token]
//   per layer:  x += attention(x)   (RMS norms over all of Q and all of K, before rope)
//               x += moe(x)         (softmax over the experts, the top k at their own weights)
//   logits = output(norm(x))
#include "models/blocks.h"
#include "models/family.h"

namespace osprey {

namespace {

Status configure(const GgufFile& file, ModelConfig& c) {
  if (c.n_expert == 0) return CorruptFile(file.path() + ": olmoe.expert_count is missing; an olmoe file has experts");
  c.activation = kernels::Activation::kSilu;
  c.gating = Gating::kSoftmax;
  c.renormalize_experts = false;
  return Status::Ok();
}

void tensors(const ModelConfig& c, ModelWeights& w, TensorList& t) {
  const int64_t q_dim = c.n_head * c.head_dim, kv_dim = c.n_head_kv * c.head_dim;
  list_embedding_and_head(c, w, t);
  for (int64_t i = 0; i < c.n_layer; ++i) {
    LayerWeights& L = w.layers[i];
    const std::string p = "blk." + std::to_string(i) + ".";
    list_attention(c, i, L, t);
    t.vector(p + "attn_q_norm.weight", q_dim, &L.attn.q_norm);
    t.vector(p + "attn_k_norm.weight", kv_dim, &L.attn.k_norm);
    list_feed_forward(c, i, L, t);
  }
}


}  // namespace

const Family kOlmoeFamily{"olmoe", kernels::RopeStyle::kNeox, configure, tensors, decoder_forward};

}  // namespace osprey
