// perplexity() against the definition, computed the slow way: each window
// from an empty cache, one token at a time, the next token's probability
// read off the logits after each position of the second half. Logits do not
// depend on how tokens are batched, so the two agree to rounding of the sums.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "engine/perplexity.h"
#include "test_util.h"

namespace osprey {
namespace {

std::unique_ptr<Model> load(const std::string& preset) {
  ModelOptions mo;
  mo.n_threads = 2;
  mo.n_ctx = 64;
  mo.n_batch = 16;  // windows of 32 then take two passes: the batching differs from the slow way's
  auto m = Model::load(test::synth_model(preset, "q8_0"), mo);
  EXPECT_TRUE(m.ok()) << m.status().message();
  return std::move(*m);
}

std::vector<int32_t> random_tokens(int64_t n, int32_t n_vocab) {
  std::mt19937 rng(5);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& id : t) id = static_cast<int32_t>(rng() % static_cast<uint32_t>(n_vocab));
  return t;
}

double slow_perplexity(Model& m, const std::vector<int32_t>& tokens, int64_t n_ctx, int64_t chunks, int32_t bos) {
  double nll = 0;
  int64_t count = 0;
  const int64_t V = m.config().n_vocab;
  for (int64_t c = 0; c < chunks; ++c) {
    std::vector<int32_t> w(tokens.begin() + c * n_ctx, tokens.begin() + (c + 1) * n_ctx);
    if (bos >= 0) w[0] = bos;
    m.reset();
    for (int64_t j = 0; j < n_ctx - 1; ++j) {
      auto logits = m.eval(&w[static_cast<size_t>(j)], 1);
      EXPECT_TRUE(logits.ok());
      if (j < n_ctx / 2) continue;
      double max = -INFINITY, sum = 0;
      for (int64_t i = 0; i < V; ++i) max = std::max(max, static_cast<double>((*logits)[i]));
      for (int64_t i = 0; i < V; ++i) sum += std::exp((*logits)[i] - max);
      nll += std::log(sum) - ((*logits)[w[static_cast<size_t>(j + 1)]] - max);
      ++count;
    }
  }
  return std::exp(nll / static_cast<double>(count));
}

TEST(Perplexity, EqualsTheDefinitionComputedTokenByToken) {
  for (const char* preset : {"tiny", "tiny-gemma3"}) {  // tiny-gemma3: sliding windows shorter than the text
    auto m = load(preset);
    const auto tokens = random_tokens(32 * 3 + 7, static_cast<int32_t>(m->config().n_vocab));
    PerplexityOptions o;
    o.n_ctx = 32;
    o.bos = 1;
    int calls = 0;
    auto r = perplexity(*m, tokens, o, [&](const PerplexityResult& so_far) { EXPECT_EQ(so_far.chunks, ++calls); });
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(r->chunks, 3);  // the 7 left over make no window
    EXPECT_EQ(r->scored, 3 * 15);
    EXPECT_EQ(calls, 3);
    EXPECT_EQ(m->n_past(), 0) << "the sequence is left empty";
    const double want = slow_perplexity(*m, tokens, 32, 3, 1);
    EXPECT_NEAR(r->ppl, want, want * 1e-9) << preset;
    EXPECT_GT(r->ppl_error, 0);
    EXPECT_LT(r->ppl_error, r->ppl);
  }
}

TEST(Perplexity, ChunkLimitAndBosChoice) {
  auto m = load("tiny");
  const auto tokens = random_tokens(32 * 4, static_cast<int32_t>(m->config().n_vocab));
  PerplexityOptions o;
  o.n_ctx = 32;
  o.max_chunks = 2;
  auto r = perplexity(*m, tokens, o, [](const PerplexityResult&) {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->chunks, 2);
  EXPECT_NEAR(r->ppl, slow_perplexity(*m, tokens, 32, 2, -1), r->ppl * 1e-9);
}

TEST(Perplexity, BadSettingsAreNamed) {
  auto m = load("tiny");
  const auto tokens = random_tokens(40, static_cast<int32_t>(m->config().n_vocab));
  auto none = [](const PerplexityResult&) {};
  PerplexityOptions o;
  o.n_ctx = 128;  // longer than the model's 64
  auto r = perplexity(*m, tokens, o, none);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("longer than the model's context"), std::string::npos);
  o.n_ctx = 48;  // more than the 40 tokens
  r = perplexity(*m, tokens, o, none);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("shorter than one window"), std::string::npos);
  o.n_ctx = 2;
  EXPECT_FALSE(perplexity(*m, tokens, o, none).ok());
  // A token outside the vocabulary is an error, not a read out of bounds.
  auto bad = random_tokens(64, static_cast<int32_t>(m->config().n_vocab));
  bad[40] = static_cast<int32_t>(m->config().n_vocab) + 3;
  o.n_ctx = 32;
  r = perplexity(*m, bad, o, none);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("outside the vocabulary"), std::string::npos);
}

}  // namespace
}  // namespace osprey
