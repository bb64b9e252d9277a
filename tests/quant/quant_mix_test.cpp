// Which type each tensor gets under each recipe. The layer patterns were
// checked against ik_llama.cpp's llama-quantize on synthesized TinyLlama and
// Qwen3-0.6B files (scripts/compare_quantize.sh lists any tensor whose type
// differs); these tests pin the rules down without the peer.
#include <gtest/gtest.h>

#include "quant/quant_mix.h"

namespace osprey {
namespace {

QuantRecipe recipe(const char* name) {
  auto r = parse_quant_recipe(name);
  EXPECT_TRUE(r.ok()) << name;
  return *r;
}

// A TinyLlama-shaped model: 22 layers, 8 query heads per KV head, rows of 2048.
std::optional<DType> pick(const char* recipe_name, const std::string& name, int n_dims = 2, int64_t row = 2048,
                          int64_t n_gqa = 8, int64_t n_expert = 0, bool tied = false) {
  TensorRole t;
  t.name = name;
  t.n_dims = n_dims;
  t.row_len = row;
  t.n_layer = 22;
  t.n_gqa = n_gqa;
  t.n_expert = n_expert;
  t.tied_output = tied;
  return choose_quant_type(recipe(recipe_name), t);
}

TEST(QuantMix, NamesParseCaseInsensitivelyWithLlamaCppAliases) {
  EXPECT_EQ(recipe("q4_k_m").name, "Q4_K_M");
  EXPECT_EQ(recipe("Q4_K").name, "Q4_K_M");  // as in llama.cpp
  EXPECT_EQ(recipe("q5_k").file_type, 17);
  EXPECT_EQ(recipe("f16").base, DType::kF16);
  const auto bad = parse_quant_recipe("q4_k_x");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("q4_k_x"), std::string::npos);
  EXPECT_NE(bad.status().message().find("Q4_K_M"), std::string::npos) << "the error lists the choices";
}

TEST(QuantMix, VectorsNormsAndRoutersAreKept) {
  EXPECT_EQ(pick("q4_k_m", "blk.0.attn_norm.weight", 1), std::nullopt);
  EXPECT_EQ(pick("q4_k_m", "blk.0.attn_q.bias", 1), std::nullopt);
  EXPECT_EQ(pick("q4_k_m", "blk.0.ffn_gate_inp.weight"), std::nullopt);
  EXPECT_EQ(pick("q4_k_m", "blk.0.attn_sinks.weight", 1), std::nullopt);
  EXPECT_EQ(pick("q4_k_m", "rope_freqs.weight", 1), std::nullopt);
}

TEST(QuantMix, Q4_K_MSpendsBitsOnOutputVAndDownInTheLayersThatMatter) {
  EXPECT_EQ(pick("q4_k_m", "output.weight"), DType::kQ6_K);
  EXPECT_EQ(pick("q4_k_m", "token_embd.weight"), DType::kQ4_K);
  EXPECT_EQ(pick("q4_k_m", "token_embd.weight", 2, 2048, 8, 0, /*tied=*/true), DType::kQ6_K);
  EXPECT_EQ(pick("q4_k_m", "blk.3.attn_q.weight"), DType::kQ4_K);
  // First and last eighth of 22 layers (0-1, 19-21) and every third between.
  for (int l : {0, 1, 4, 7, 10, 13, 16, 19, 20, 21}) {
    EXPECT_EQ(pick("q4_k_m", "blk." + std::to_string(l) + ".ffn_down.weight"), DType::kQ6_K) << l;
    EXPECT_EQ(pick("q4_k_m", "blk." + std::to_string(l) + ".attn_v.weight"), DType::kQ6_K) << l;
  }
  EXPECT_EQ(pick("q4_k_m", "blk.2.ffn_down.weight"), DType::kQ4_K);
  // V shared by 8 query heads gets a step up; unshared V does not.
  EXPECT_EQ(pick("q4_k_m", "blk.2.attn_v.weight"), DType::kQ5_K);
  EXPECT_EQ(pick("q4_k_m", "blk.2.attn_v.weight", 2, 2048, /*n_gqa=*/2), DType::kQ4_K);
  // Experts are down projections too; 8+ experts put V at 8 bits.
  EXPECT_EQ(pick("q4_k_m", "blk.0.ffn_down_exps.weight", 3), DType::kQ6_K);
  EXPECT_EQ(pick("q4_k_m", "blk.2.attn_v.weight", 2, 2048, 8, /*n_expert=*/8), DType::kQ8_0);
}

TEST(QuantMix, OtherMixes) {
  EXPECT_EQ(pick("q2_k", "blk.5.attn_v.weight"), DType::kQ4_K);
  EXPECT_EQ(pick("q2_k", "blk.5.attn_v.weight", 2, 2048, 1), DType::kQ3_K);
  EXPECT_EQ(pick("q2_k", "blk.5.ffn_up.weight"), DType::kQ2_K);
  EXPECT_EQ(pick("q3_k_m", "blk.0.ffn_down.weight"), DType::kQ5_K);
  EXPECT_EQ(pick("q3_k_m", "blk.5.ffn_down.weight"), DType::kQ4_K);
  EXPECT_EQ(pick("q3_k_m", "blk.5.attn_output.weight"), DType::kQ4_K);
  EXPECT_EQ(pick("q3_k_l", "blk.5.attn_v.weight"), DType::kQ5_K);
  EXPECT_EQ(pick("q4_k_s", "blk.3.attn_v.weight"), DType::kQ5_K);
  EXPECT_EQ(pick("q4_k_s", "blk.3.ffn_down.weight"), DType::kQ4_K);
  EXPECT_EQ(pick("q4_k_s", "blk.1.ffn_down.weight"), DType::kQ5_K);
  EXPECT_EQ(pick("q5_k_m", "blk.2.attn_v.weight"), DType::kQ6_K);
  EXPECT_EQ(pick("q5_k_m", "blk.2.attn_qkv.weight"), DType::kQ6_K);
}

TEST(QuantMix, SingleTypesAndPure) {
  EXPECT_EQ(pick("q4_0", "blk.0.attn_v.weight"), DType::kQ4_0);
  EXPECT_EQ(pick("q4_0", "output.weight"), DType::kQ6_K);
  EXPECT_EQ(pick("q8_0", "output.weight"), DType::kQ8_0);
  EXPECT_EQ(pick("f16", "output.weight"), DType::kF16);
  QuantRecipe pure = recipe("q4_k_m");
  pure.pure = true;
  TensorRole out;
  out.name = "output.weight";
  out.row_len = 2048;
  EXPECT_EQ(choose_quant_type(pure, out), DType::kQ4_K);
  out.name = "blk.0.attn_v.weight";
  EXPECT_EQ(choose_quant_type(pure, out), DType::kQ4_K);
}

TEST(QuantMix, RowsThatBlocksDoNotDivideFallBack) {
  // 576 = 2.25 x 256: k-quants cannot store it, the legacy 32-blocks can.
  EXPECT_EQ(pick("q4_k_m", "blk.3.attn_q.weight", 2, 576), DType::kQ5_0);
  EXPECT_EQ(pick("q5_k_s", "blk.3.attn_q.weight", 2, 576), DType::kQ5_1);
  EXPECT_EQ(pick("q6_k", "blk.3.attn_q.weight", 2, 576), DType::kQ8_0);
  EXPECT_EQ(pick("q3_k_s", "blk.3.attn_q.weight", 2, 576), DType::kQ4_0);
  // Nothing divides 100: the tensor stays as it is.
  EXPECT_EQ(pick("q4_k_m", "blk.3.attn_q.weight", 2, 100), std::nullopt);
  EXPECT_EQ(pick("q4_0", "blk.3.attn_q.weight", 2, 100), std::nullopt);
}

TEST(QuantMix, MalformedLayerNumbersAreNotLayers) {
  // Names the rules cannot place get the base type rather than a crash.
  EXPECT_EQ(pick("q4_k_m", "blk.99999999999999999999.attn_v.weight"), DType::kQ4_K);
  EXPECT_EQ(pick("q4_k_m", "blk..attn_v.weight"), DType::kQ4_K);
  EXPECT_EQ(pick("q4_k_m", "blk.7"), std::nullopt);
}

}  // namespace
}  // namespace osprey
