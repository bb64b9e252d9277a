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

// Logits with many exact ties (coarse values), finely spread ones, and edge
// cases: signed zeros, the extremes, infinities and NaN.
std::vector<float> hard_logits(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  const float specials[] = {0.0f, -0.0f, 1.0f, -1.0f, 1e-38f, -1e-38f, std::numeric_limits<float>::max(),
                           -std::numeric_limits<float>::max(), -INFINITY, INFINITY, NAN};
  std::vector<float> logits(n);
  for (auto& l : logits) {
    const uint32_t r = rng();
    l = r % 5 == 0 ? specials[r % 11] : r % 5 == 1 ? static_cast<float>(static_cast<int>(r % 21) - 10)
                                                   : std::ldexp(static_cast<float>(r % 100000) - 50000.0f, -12);
  }
  return logits;
}

// The sampler's order, as a comparison: descending logit (-0 equal to +0, NaN
// last), then ascending id.
bool before(const TokenCandidate& a, const TokenCandidate& b) {
  const bool an = std::isnan(a.logit), bn = std::isnan(b.logit);
  if (an != bn) return bn;
  if (!an && a.logit != b.logit) return a.logit > b.logit;
  return a.id < b.id;
}

// The walk must give exactly the order of a full comparison sort, whatever the
// input order (after top-k, ids are out of order), leaving out -inf and NaN.
TEST(SamplingStages, DescendingOrderEqualsTheComparisonSort) {
  std::mt19937 rng(5);
  auto c = cands(hard_logits(70000, 7));
  std::shuffle(c.begin(), c.end(), rng);
  c.resize(50000);
  std::vector<TokenCandidate> want;
  for (const auto& t : c)
    if (t.logit > -INFINITY) want.push_back(t);
  ASSERT_LT(want.size(), c.size());
  std::sort(want.begin(), want.end(), before);
  sampling::DescendingOrder order;
  for (int round = 0; round < 2; ++round) {  // reusing the buffers
    order.reset(c);
    for (size_t i = 0; i < want.size(); ++i) {
      const int64_t at = order.next();
      ASSERT_GE(at, 0) << "position " << i;
      ASSERT_EQ(c[at].id, want[i].id) << "position " << i;
    }
    EXPECT_EQ(order.next(), -1);
  }
  order.reset({});
  EXPECT_EQ(order.next(), -1);
}

TEST(SamplingStages, NucleusSortsAndNormalises) {
  auto c = cands({0, std::log(3.0f), -INFINITY});
  sampling::DescendingOrder order;
  sampling::nucleus(c, 1.0f, 0.0f, order);
  ASSERT_EQ(c.size(), 2u);  // probability 0 is never kept
  EXPECT_EQ(c[0].id, 1);
  EXPECT_NEAR(c[0].p, 0.75f, 1e-6);
  EXPECT_NEAR(c[1].p, 0.25f, 1e-6);
}

TEST(SamplingStages, TopPKeepsTheSmallestSetReachingP) {
  auto c = cands({std::log(2.0f), std::log(5.0f), std::log(3.0f)});  // p = 0.2, 0.5, 0.3
  auto d = c;
  sampling::DescendingOrder order;
  sampling::nucleus(c, 0.75f, 0.0f, order);  // 0.5 + 0.3 reaches it
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].id, 1);
  EXPECT_EQ(c[1].id, 2);
  sampling::nucleus(d, 0.85f, 0.0f, order);  // needs all three
  EXPECT_EQ(d.size(), 3u);
}

TEST(SamplingStages, MinPDropsTheUnlikely) {
  auto c = cands({std::log(1.0f), std::log(10.0f), std::log(5.0f)});
  sampling::DescendingOrder order;
  sampling::nucleus(c, 1.0f, 0.2f, order);  // threshold: 0.2 * p(best) = 2/16 > 1/16
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[1].id, 2);
}

// Floating-point sums of probabilities can fall short of 1; a draw near 1
// must still land on a token the logits allow, not on a forbidden one.
TEST(SamplingStages, DrawNeverTakesAForbiddenToken) {
  std::vector<float> logits(5000, -INFINITY);
  for (int i = 0; i < 5000; i += 7) logits[i] = std::sin(static_cast<float>(i)) * 4;
  logits[11] = NAN;
  sampling::DescendingOrder order;
  for (double r : {0.0, 0.5, 0.999999, 1.0 - 1e-16, 1.0}) {
    auto c = cands(logits);
    const int32_t id = sampling::draw(c, r, order);
    ASSERT_GE(id, 0);
    EXPECT_TRUE(std::isfinite(logits[id])) << "r=" << r << " drew " << id;
  }
  // Nothing allowed at all: the first in order, deterministically.
  auto none = cands({-INFINITY, NAN, -INFINITY});
  EXPECT_EQ(sampling::draw(none, 0.5, order), 0);
}

// The sampler equals its definition, written the slow way: sort everything,
// softmax, cut by top-p and min-p, divide by the temperature, softmax again
// and walk to the draw. The sums run in a different order, so a draw within
// rounding of a boundary could differ; over these draws none may.
TEST(Sampler, EqualsTheFullSortDefinition) {
  auto reference = [](std::vector<float> logits, const SamplingParams& p, double r) {
    auto c = cands(logits);
    for (auto& t : c)
      if (std::isnan(t.logit)) t.logit = -INFINITY;
    auto softmax = [](std::vector<TokenCandidate>& v) {
      std::sort(v.begin(), v.end(), before);
      const float max = v.front().logit;
      double sum = 0;
      for (auto& t : v) sum += (t.p = std::exp(t.logit - max));
      for (auto& t : v) t.p = static_cast<float>(t.p / sum);
    };
    if (p.top_k > 0 && p.top_k < static_cast<int32_t>(c.size())) {
      std::sort(c.begin(), c.end(), before);
      c.resize(p.top_k);
    }
    if (p.top_p < 1.0f || p.min_p > 0.0f) {
      softmax(c);
      double cum = 0;
      size_t keep = c.size();
      for (size_t i = 0; i < c.size(); ++i)
        if (p.top_p < 1.0f && (cum += c[i].p) >= p.top_p) { keep = i + 1; break; }
      c.resize(keep);
      size_t k = 1;
      while (k < c.size() && c[k].p >= c[0].p * p.min_p && c[k].p > 0) ++k;
      c.resize(k);
    }
    for (auto& t : c) t.logit /= p.temperature;
    softmax(c);
    double cum = 0;
    int32_t last = c.front().id;
    for (const auto& t : c) {
      if (t.p == 0.0f) break;
      last = t.id;
      if (r < (cum += t.p)) return t.id;
    }
    return last;
  };
  std::mt19937_64 rng(3);
  std::vector<float> logits(3000);
  int compared = 0;
  for (int trial = 0; trial < 24; ++trial) {
    std::normal_distribution<float> spread(0.0f, trial % 3 == 0 ? 0.5f : 4.0f);
    for (auto& l : logits) l = std::round(spread(rng) * 8) / 8;  // ties on purpose
    for (int i = 0; i < 40; ++i) logits[rng() % logits.size()] = -INFINITY;
    SamplingParams p;
    p.temperature = trial % 4 == 0 ? 0.5f : trial % 4 == 1 ? 1.0f : 1.7f;
    p.top_k = trial % 5 == 0 ? 50 : 0;
    p.top_p = trial % 2 ? 0.9f : 1.0f;
    p.min_p = trial % 3 == 1 ? 0.05f : 0.0f;
    p.penalty_last_n = 0;
    p.seed = trial;
    Sampler s(p, static_cast<int32_t>(logits.size()));
    std::mt19937_64 same(trial);  // the sampler's own generator, replayed
    for (int draw = 0; draw < 50; ++draw, ++compared) {
      const double r = static_cast<double>(same() >> 11) * (1.0 / 9007199254740992.0);
      ASSERT_EQ(s.sample(logits.data()), reference(logits, p, r)) << "trial " << trial << " draw " << draw;
    }
  }
  EXPECT_EQ(compared, 24 * 50);
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

// Plain greedy sampling skips the candidate list; a zero logit bias forces
// the list without changing a value, so both paths must pick the same token,
// ties, NaN and infinities included.
TEST(Sampler, GreedyWithoutCandidatesEqualsGreedyWithThem) {
  SamplingParams plain;
  plain.temperature = 0;
  SamplingParams listed = plain;
  listed.logit_bias = {{0, 0.0f}};
  const int32_t n = 257;
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> level(-3, 3);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<float> logits(n);
    for (float& l : logits) l = static_cast<float>(level(rng));  // few levels: many ties
    if (trial % 4 == 1) logits[rng() % n] = NAN;
    if (trial % 4 == 2) logits[0] = NAN;
    if (trial % 5 == 3) logits[rng() % n] = INFINITY;
    if (trial % 7 == 4) std::fill(logits.begin(), logits.end(), -INFINITY);
    Sampler a(plain, n), b(listed, n);
    ASSERT_EQ(a.sample(logits.data()), b.sample(logits.data())) << "trial " << trial;
  }
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
