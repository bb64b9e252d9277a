// Embeddings: the pooled vectors of an encoder (bert) and of a decoder (last
// token) against the independent reference pass, their independence from
// what else shares the batch, and the errors an embedding model gives.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/embedder.h"
#include "models/model.h"
#include "reference/reference_model.h"
#include "test_util.h"

namespace osprey {
namespace {

double cosine(const float* a, const std::vector<double>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < b.size(); ++i) ab += a[i] * b[i], aa += double{a[i]} * a[i], bb += b[i] * b[i];
  return ab / std::sqrt(aa * bb);
}

double rel_rms(const float* a, const std::vector<double>& b) {
  double err = 0, ref = 0;
  for (size_t i = 0; i < b.size(); ++i) err += (a[i] - b[i]) * (a[i] - b[i]), ref += b[i] * b[i];
  return std::sqrt(err / ref);
}

struct EmbedCase {
  const char* preset;
  const char* type;
  double tol;  // relative RMS error of the pooled vector
};

class EmbeddingReference : public ::testing::TestWithParam<EmbedCase> {};

TEST_P(EmbeddingReference, PooledVectorsAgree) {
  const EmbedCase c = GetParam();
  const std::string path = test::synth_model(c.preset, c.type, 42, true);
  ASSERT_FALSE(path.empty());
  reference::Model ref;
  ASSERT_EQ(ref.load(path, 128), "");
  ModelOptions mo;
  mo.n_threads = 2;
  mo.n_ctx = 128;
  mo.n_batch = 7;  // a decoder's 20-token input spans three passes; an encoder reads it whole regardless
  mo.n_seq_max = 3;
  auto model = Model::load(path, mo);
  ASSERT_TRUE(model.ok()) << model.status().message();
  const std::vector<std::vector<int32_t>> inputs = {
      {2, 17, 300, 42, 99, 5, 250, 7, 120, 64, 3, 411, 8, 9, 10, 11, 12, 13, 14, 3}, {2, 40, 41, 3}, {2, 500, 3}};
  auto got = embed_inputs(**model, inputs, /*normalize=*/false);
  ASSERT_TRUE(got.ok()) << got.status().message();
  for (size_t i = 0; i < inputs.size(); ++i) {
    reference::Model fresh;
    ASSERT_EQ(fresh.load(path, 128), "");
    const std::vector<double> want = fresh.embed(std::vector<int>(inputs[i].begin(), inputs[i].end()));
    ASSERT_EQ(want.size(), (*got)[i].size());
    EXPECT_LT(rel_rms((*got)[i].data(), want), c.tol) << c.preset << " " << c.type << " input " << i;
    EXPECT_GT(cosine((*got)[i].data(), want), 1 - c.tol) << c.preset << " " << c.type << " input " << i;
  }
  // The same input alone gives the same bits as beside the others.
  auto alone = embed_inputs(**model, {inputs[1]}, false);
  ASSERT_TRUE(alone.ok());
  EXPECT_EQ((*alone)[0], (*got)[1]);
}

INSTANTIATE_TEST_SUITE_P(Families, EmbeddingReference,
                         // f32 weights differ from the reference only by the f16 KV cache; q8_0 also
                         // rounds every matrix's input to 8 bits, which twelve random layers compound.
                         ::testing::Values(EmbedCase{"tiny-bert", "f32", 2e-3}, EmbedCase{"tiny-bert", "q8_0", 0.03},
                                           EmbedCase{"bge-small-en", "f32", 2e-3},
                                           EmbedCase{"bge-small-en", "q8_0", 0.1},
                                           EmbedCase{"tiny-qwen3", "f32", 2e-3}),
                         [](const auto& info) {
                           return test::test_name(std::string(info.param.preset) + "_" + info.param.type);
                         });

// A reranker's scores (the classification head on the first token) against
// the reference, for pairs run together.
TEST(EmbeddingReference, RerankScoresAgree) {
  const std::string path = test::synth_model("tiny-bert-rerank", "f32", 42, true);
  ModelOptions mo;
  mo.n_threads = 2;
  mo.n_seq_max = 3;
  auto model = Model::load(path, mo);
  ASSERT_TRUE(model.ok()) << model.status().message();
  const std::vector<std::vector<int32_t>> pairs = {{2, 40, 41, 3, 50, 51, 52, 3}, {2, 40, 41, 3, 60, 3}, {2, 7, 3, 8, 3}};
  auto got = embed_inputs(**model, pairs, /*normalize=*/false);
  ASSERT_TRUE(got.ok()) << got.status().message();
  for (size_t i = 0; i < pairs.size(); ++i) {
    reference::Model ref;
    ASSERT_EQ(ref.load(path, 128), "");
    const std::vector<double> want = ref.embed(std::vector<int>(pairs[i].begin(), pairs[i].end()));
    ASSERT_EQ(want.size(), 1u);
    EXPECT_NEAR((*got)[i][0], want[0], 2e-3 * (1 + std::fabs(want[0]))) << "pair " << i;
  }
}

// Leaving out the bidirectional half of attention (each token seeing only
// itself and earlier ones) changes an encoder's vectors far beyond the
// tolerance above: the comparison would notice a causal mask.
TEST(EmbeddingReference, CausalMaskWouldBeNoticed) {
  const std::string path = test::synth_model("tiny-bert", "f32", 42, true);
  ModelOptions mo;
  mo.n_threads = 2;
  auto model = Model::load(path, mo);
  ASSERT_TRUE(model.ok());
  // The first token's vector under first-token pooling would be all a
  // causal encoder sees; with mean pooling, compare a prefix's vector
  // against the whole input's: they must differ in every position's view.
  auto whole = embed_inputs(**model, {{2, 40, 41, 42, 3}}, true);
  auto prefix = embed_inputs(**model, {{2, 40, 41}}, true);
  ASSERT_TRUE(whole.ok() && prefix.ok());
  double dot = 0;
  for (size_t i = 0; i < (*whole)[0].size(); ++i) dot += (*whole)[0][i] * (*prefix)[0][i];
  EXPECT_LT(dot, 0.999);
}

TEST(Embedding, EncoderRefusesToGenerateAndLongInputs) {
  const std::string path = test::synth_model("tiny-bert", "f32", 42, true);
  ModelOptions mo;
  mo.n_threads = 1;
  auto model = Model::load(path, mo);
  ASSERT_TRUE(model.ok());
  EXPECT_FALSE((*model)->can_generate());
  const int32_t tokens[] = {2, 40, 3};
  auto logits = (*model)->eval(tokens, 3);
  ASSERT_FALSE(logits.ok());
  EXPECT_NE(logits.status().message().find("encoder"), std::string::npos) << logits.status().message();
  std::vector<int32_t> long_input(200, 40);  // the tiny preset has 128 positions
  auto got = embed_inputs(**model, {long_input}, true);
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.status().message().find("at most 128"), std::string::npos) << got.status().message();
  auto empty = embed_inputs(**model, {{}}, true);
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("no tokens"), std::string::npos);
  mo.n_ctx = 512;
  auto too_wide = Model::load(path, mo);
  ASSERT_FALSE(too_wide.ok());
  EXPECT_NE(too_wide.status().message().find("learned positions for 128"), std::string::npos);
}

}  // namespace
}  // namespace osprey
