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

namespace osprey {
namespace {

// A quantized KV cache costs little: q8_0 keys and values move perplexity by
// less than 0.5% from fp16; and the logits move further from fp16's with
// q4_0, a quarter of the bits, than with q8_0.
TEST(Perplexity, QuantizedCacheStaysCloseToF16) {
  for (const char* preset : {"tiny-qwen3", "tiny-gemma3", "tiny"}) {
    SCOPED_TRACE(preset);
    auto load_with = [&](DType cache) {
      ModelOptions mo;
      mo.n_threads = 2;
      mo.n_ctx = 64;
      mo.cache_type_k = mo.cache_type_v = cache;
      auto m = Model::load(test::synth_model(preset, "q8_0"), mo);
      EXPECT_TRUE(m.ok()) << m.status().message();
      return std::move(*m);
    };
    auto ppl = [&](DType cache) {
      auto m = load_with(cache);
      const auto tokens = random_tokens(64 * 6, static_cast<int32_t>(m->config().n_vocab));
      PerplexityOptions o;
      o.n_ctx = 64;
      auto r = perplexity(*m, tokens, o, [](const PerplexityResult&) {});
      EXPECT_TRUE(r.ok());
      return r->ppl;
    };
    // Every position's logits over one window.
    auto logits = [&](DType cache) {
      auto m = load_with(cache);
      const auto tokens = random_tokens(64, static_cast<int32_t>(m->config().n_vocab));
      BatchItem item{0, tokens.data(), 64, true, true};
      auto l = m->eval_batch(&item, 1);
      EXPECT_TRUE(l.ok());
      return std::vector<float>(*l, *l + 64 * m->config().n_vocab);
    };
    auto rms_diff = [](const std::vector<float>& a, const std::vector<float>& b) {
      double sum = 0;
      for (size_t i = 0; i < a.size(); ++i) sum += double(a[i] - b[i]) * (a[i] - b[i]);
      return std::sqrt(sum / static_cast<double>(a.size()));
    };
    const double f16 = ppl(DType::kF16), q8 = ppl(DType::kQ8_0);
    EXPECT_LT(std::fabs(q8 - f16) / f16, 0.005) << "f16 " << f16 << ", q8_0 " << q8;
    const auto l16 = logits(DType::kF16), l8 = logits(DType::kQ8_0), l4 = logits(DType::kQ4_0);
    EXPECT_GT(rms_diff(l8, l16), 0.0);
    EXPECT_GT(rms_diff(l4, l16), 2 * rms_diff(l8, l16));
  }
}

TEST(Perplexity, ACacheTypeThatCannotHoldTheHeadsIsNamed) {
  ModelOptions mo;
  mo.cache_type_k = DType::kQ4_K;  // not a cache type
  auto m = Model::load(test::synth_model("tiny", "q8_0"), mo);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("--cache-type-k q4_k"), std::string::npos) << m.status().message();
  EXPECT_FALSE(parse_kv_cache_type("q3_k", "--cache-type-v").ok());
  EXPECT_EQ(*parse_kv_cache_type("Q8_0", "x"), DType::kQ8_0);
}

}  // namespace
}  // namespace osprey
