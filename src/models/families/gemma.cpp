// Gemma 2 and Gemma 3.
//   x = sqrt(n_embd) * embedding[token]
//   per layer:  x += post_norm(attention(x))   (sliding window or global, by layer)
//               x += post_norm(ffn(x))         (GELU-gated)
//   logits = output(norm(x))                   (tied to the embedding)
// Gemma 2 soft-caps attention scores (50) and the final logits (30) and
// alternates window and global layers, starting with a window. Gemma 3
// normalises each query and key head instead, and has five window layers
// (rope base 10000) to each global one (the file's rope base and scaling).
// The file's norm weights already include Gemma's "+1" (the converter adds it).
#include <cmath>

#include "models/blocks.h"
#include "models/family.h"

namespace osprey {

namespace {

// Scores are scaled by 1/sqrt(query_pre_attn_scalar), which config.json
// gives but GGUF does not: the head size, except for the 27B models, whose
// value is n_embd / n_head (recognised by their layer counts, as the
// reference engines do).
double query_scale(const ModelConfig& c, int64_t layers_of_27b) {
  const double scalar = c.n_layer == layers_of_27b ? static_cast<double>(c.n_embd / c.n_head) : static_cast<double>(c.head_dim);
  return 1.0 / std::sqrt(scalar);
}

Status check_window(const GgufFile& file, const ModelConfig& c) {
  if (c.n_swa <= 0)
    return CorruptFile(file.path() + ": " + c.arch + ".attention.sliding_window is missing or 0; " + c.arch +
                       " needs the size of its local layers' window");
  return Status::Ok();
}

Status configure_gemma2(const GgufFile& file, ModelConfig& c) {
  c.activation = kernels::Activation::kGelu;
  c.embd_scale = std::sqrt(static_cast<double>(c.n_embd));
  c.attn_scale = query_scale(c, 46);
  // Soft-caps default to Gemma 2's published values when a file leaves them out.
  if (file.find("gemma2.attn_logit_softcapping") == nullptr) c.attn_softcap = 50.0;
  if (file.find("gemma2.final_logit_softcapping") == nullptr) c.final_softcap = 30.0;
  if (file.find("gemma2.attention.sliding_window") == nullptr) c.n_swa = 4096;
  OSPREY_TRY(check_window(file, c));
  for (int64_t l = 0; l < c.n_layer; l += 2) c.layers[l].window = c.n_swa;
  return Status::Ok();
}

Status configure_gemma3(const GgufFile& file, ModelConfig& c) {
  c.activation = kernels::Activation::kGelu;
  c.embd_scale = std::sqrt(static_cast<double>(c.n_embd));
  c.attn_scale = query_scale(c, 62);
  OSPREY_TRY(check_window(file, c));
  for (int64_t l = 0; l < c.n_layer; ++l)
    if ((l + 1) % 6 != 0) c.layers[l] = LayerConfig{c.n_swa, 10000.0, 1.0};
  return Status::Ok();
}

void tensors(const ModelConfig& c, ModelWeights& w, TensorList& t, bool qk_norm) {
  const int64_t E = c.n_embd;
  list_embedding_and_head(c, w, t);
  for (int64_t i = 0; i < c.n_layer; ++i) {
    LayerWeights& L = w.layers[i];
    const std::string p = "blk." + std::to_string(i) + ".";
    list_attention(c, i, L, t);
    if (qk_norm) {
      t.vector(p + "attn_q_norm.weight", c.head_dim, &L.attn.q_norm);
      t.vector(p + "attn_k_norm.weight", c.head_dim, &L.attn.k_norm);
    }
    t.vector(p + "post_attention_norm.weight", E, &L.attn.post_norm);
    list_feed_forward(c, i, L, t);
    t.vector(p + "post_ffw_norm.weight", E, &L.ffn.post_norm);
  }
}

void tensors_gemma2(const ModelConfig& c, ModelWeights& w, TensorList& t) { tensors(c, w, t, false); }
void tensors_gemma3(const ModelConfig& c, ModelWeights& w, TensorList& t) { tensors(c, w, t, true); }


}  // namespace

const Family kGemma2Family{"gemma2", kernels::RopeStyle::kNeox, configure_gemma2, tensors_gemma2, decoder_forward};
const Family kGemma3Family{"gemma3", kernels::RopeStyle::kNeox, configure_gemma3, tensors_gemma3, decoder_forward};

}  // namespace osprey
