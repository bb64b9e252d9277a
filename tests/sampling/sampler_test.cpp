#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <algorithm>
#include <map>
#include <random>
#include <vector>

#include "sampling/sampler.h"

namespace osprey {
namespace {

std::vector<TokenCandidate> cands(const std::vector<float>& logits) {
  std::vector<TokenCandidate> c;
  for (size_t i = 0; i < logits.size(); ++i) c.push_back({static_cast<int32_t>(i), logits[i], 0});
  return c;
}

TEST(SamplingStages, TopKKeepsTheLargest) {
  auto c = cands({1, 5, 3, 4, 2});
  sampling::top_k(c, 2);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].id, 1);
  EXPECT_EQ(c[1].id, 3);
}

// The radix sort behind softmax must give exactly the order of the
// comparison it replaced: descending logit (-0 equal to +0), then ascending id.
TEST(SamplingStages, SoftmaxOrderEqualsTheComparisonSort) {
  std::mt19937 rng(5);
  std::vector<float> logits(70000);
  const float specials[] = {0.0f, -0.0f, 1.0f, -1.0f, 1e-38f, -1e-38f, std::numeric_limits<float>::max(),
                           -std::numeric_limits<float>::max()};
  for (size_t i = 0; i < logits.size(); ++i) {
    // Many exact ties (coarse values) mixed with finely spread ones and edge cases.
    const uint32_t r = rng();
    logits[i] = r % 5 == 0 ? specials[r % 8] : r % 5 == 1 ? static_cast<float>(static_cast<int>(r % 21) - 10)
                                                           : std::ldexp(static_cast<float>(r % 100000) - 50000.0f, -12);
  }
  auto got = cands(logits);
  // A permuted, truncated input, as after top-k: ids out of order.
  std::shuffle(got.begin(), got.end(), rng);
  got.resize(50000);
  auto want = got;
  std::sort(want.begin(), want.end(), [](const TokenCandidate& a, const TokenCandidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  });
  sampling::softmax(got);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i].id, want[i].id) << "position " << i;
}

TEST(SamplingStages, SoftmaxSortsAndNormalises) {
  auto c = cands({0, std::log(3.0f)});
  sampling::softmax(c);
  EXPECT_EQ(c[0].id, 1);
  EXPECT_NEAR(c[0].p, 0.75f, 1e-6);
  EXPECT_NEAR(c[1].p, 0.25f, 1e-6);
}

TEST(SamplingStages, TopPKeepsTheSmallestSetReachingP) {
  auto c = cands({std::log(5.0f), std::log(3.0f), std::log(2.0f)});  // p = 0.5, 0.3, 0.2
  sampling::softmax(c);
  auto d = c;
  sampling::top_p(c, 0.75f);  // 0.5 + 0.3 reaches it
  EXPECT_EQ(c.size(), 2u);
  sampling::top_p(d, 0.85f);  // needs all three
  EXPECT_EQ(d.size(), 3u);
}

TEST(SamplingStages, MinPDropsTheUnlikely) {
  auto c = cands({std::log(10.0f), std::log(5.0f), std::log(1.0f)});
  sampling::softmax(c);
  sampling::min_p(c, 0.2f);  // threshold: 0.2 * p(best) = 2/16 > 1/16
  EXPECT_EQ(c.size(), 2u);
}

TEST(SamplingStages, PenaltiesFollowTheirDefinitions) {
  SamplingParams p;
  p.repeat_penalty = 2.0f;
  p.frequency_penalty = 0.5f;
  p.presence_penalty = 0.25f;
  auto c = cands({4, -4, 4});
  sampling::apply_penalties(c, {0, 0, 1}, p);
  EXPECT_FLOAT_EQ(c[0].logit, 4 / 2.0f - 2 * 0.5f - 0.25f);
  EXPECT_FLOAT_EQ(c[1].logit, -4 * 2.0f - 0.5f - 0.25f);
  EXPECT_FLOAT_EQ(c[2].logit, 4);  // unseen
}

TEST(Sampler, GreedyPicksArgmaxLowestIdOnTies) {
  SamplingParams p;
  p.temperature = 0;
  Sampler s(p, 4);
  const float logits[4] = {1, 3, 3, 2};
  EXPECT_EQ(s.sample(logits), 1);
}

TEST(Sampler, LogitBiasCanForbidAToken) {
  SamplingParams p;
  p.temperature = 0;
  p.logit_bias = {{1, -INFINITY}};
  Sampler s(p, 3);
  const float logits[3] = {0, 10, 1};
  EXPECT_EQ(s.sample(logits), 2);
}

TEST(Sampler, SameSeedSameTokens) {
  std::vector<float> logits(1000);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = std::sin(static_cast<float>(i)) * 3;
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0;
  p.seed = 99;
  auto run = [&](uint64_t seed) {
    p.seed = seed;
    Sampler s(p, 1000);
    std::vector<int32_t> out;
    for (int i = 0; i < 50; ++i) {
      out.push_back(s.sample(logits.data()));
      s.accept(out.back());
    }
    return out;
  };
  EXPECT_EQ(run(99), run(99));
  EXPECT_NE(run(99), run(100));
}

TEST(Sampler, FrequenciesFollowTheDistribution) {
  // p = 0.5, 0.25, 0.25 at temperature 1; 20000 draws should be within a few sigma.
  const float logits[3] = {std::log(2.0f), 0, 0};
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0;
  p.seed = 5;
  Sampler s(p, 3);
  std::map<int32_t, int> counts;
  for (int i = 0; i < 20000; ++i) counts[s.sample(logits)]++;
  EXPECT_NEAR(counts[0] / 20000.0, 0.5, 0.02);
  EXPECT_NEAR(counts[1] / 20000.0, 0.25, 0.02);
}

TEST(Sampler, LowTemperatureSharpens) {
  const float logits[2] = {1.0f, 0.0f};
  SamplingParams p;
  p.temperature = 0.05f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0;
  Sampler s(p, 2);
  int first = 0;
  for (int i = 0; i < 1000; ++i) first += s.sample(logits) == 0;
  EXPECT_GT(first, 995);
}

TEST(SamplingParams, ValidationNamesTheField) {
  SamplingParams p;
  p.temperature = NAN;
  EXPECT_NE(p.validate(10).message().find("temperature"), std::string::npos);
  p = {};
  p.top_p = 0;
  EXPECT_NE(p.validate(10).message().find("top_p"), std::string::npos);
  p = {};
  p.logit_bias = {{10, 1.0f}};
  EXPECT_NE(p.validate(10).message().find("logit_bias"), std::string::npos);
  p = {};
  p.temperature = -1;
  EXPECT_FALSE(p.validate(10).ok());
  EXPECT_TRUE(SamplingParams{}.validate(10).ok());
}

}  // namespace
}  // namespace osprey
