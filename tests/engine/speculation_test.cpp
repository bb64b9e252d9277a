// Speculative decoding by prompt lookup: the drafter on its own, then the
// generation loop with and without speculation on fake and real models.
// The reply must be the same token for token, greedy or sampled (each token
// is still chosen from the model's logits at its own position), with fewer
// forward passes where the text repeats.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include "engine/generator.h"
#include "engine/model_draft.h"
#include "engine/ngram_draft.h"
#include "fake_token_model.h"
#include "kernels/dispatch.h"
#include "test_util.h"
#include "tiny_tokenizer.h"

namespace osprey {
namespace {

TEST(NgramDrafter, ProposesWhatFollowedTheLatestEarlierOccurrence) {
  NgramDrafter d(16);
  // ... 7 8 9 [5 6] 1 2 3 ... 7 8 9 [5 6] 4 ... 8 9 5 6 -> the latest match of "8 9 5 6" is followed by 4
  const std::vector<int32_t> h = {7, 8, 9, 5, 6, 1, 2, 3, 7, 8, 9, 5, 6, 4, 0, 8, 9, 5, 6};
  EXPECT_EQ(d.propose(h, 100), (std::vector<int32_t>{4, 0, 8, 9}));  // draft length starts at 4
  EXPECT_EQ(d.propose(h, 2), (std::vector<int32_t>{4, 0}));          // never past the limit
  EXPECT_TRUE(d.propose(h, 0).empty());
  EXPECT_TRUE(d.propose({1, 2, 3, 4, 5}, 10).empty());  // nothing repeats
  EXPECT_TRUE(d.propose({}, 10).empty());
}

TEST(NgramDrafter, FallsBackToShorterNgrams) {
  NgramDrafter d(16);
  // "3 4" occurred before, "2 3 4" did not in that order.
  EXPECT_EQ(d.propose({3, 4, 9, 9, 1, 3, 4}, 10), (std::vector<int32_t>{9, 9, 1, 3}));
}

TEST(DraftLength, NeverStartsAboveTheMaximum) {
  EXPECT_EQ(DraftLength(2).get(), 2);
  EXPECT_EQ(DraftLength(0).get(), 1);
  EXPECT_EQ(DraftLength(64).get(), 4);
}

// Single-token drafts that keep failing pause drafting for 1, 2, 4 ... steps,
// up to the cap; a draft taken ends the pauses.
TEST(DraftLength, PausesWhileSingleTokenDraftsFail) {
  DraftLength d(4);
  for (int i = 0; i < 3; ++i) d.feedback(d.get(), 0);
  ASSERT_EQ(d.get(), 1);
  auto skipped = [&] {
    int n = 0;
    while (d.next() == 0) ++n;
    return n;
  };
  EXPECT_EQ(skipped(), 1);
  d.feedback(1, 0);
  EXPECT_EQ(skipped(), 2);
  d.feedback(1, 0);
  EXPECT_EQ(skipped(), 4);
  for (int i = 0; i < 6; ++i) {
    d.feedback(1, 0);
    EXPECT_LE(skipped(), DraftLength::kMaxPause);
  }
  d.feedback(1, 1);  // taken: no more pauses, and longer drafts again
  EXPECT_EQ(d.next(), 2);
  d.feedback(2, 0);
  EXPECT_EQ(d.next(), 1);
  d.feedback(1, 0);
  EXPECT_EQ(skipped(), 1);  // the pauses start over
}

TEST(NgramDrafter, DraftLengthAdaptsToAcceptance) {
  NgramDrafter d(8);
  EXPECT_EQ(d.draft_length(), 4);
  d.feedback(4, 4);
  EXPECT_EQ(d.draft_length(), 8);
  d.feedback(8, 8);
  EXPECT_EQ(d.draft_length(), 8);  // capped
  d.feedback(8, 0);
  EXPECT_EQ(d.draft_length(), 4);
  d.feedback(4, 2);  // partly accepted: unchanged
  EXPECT_EQ(d.draft_length(), 4);
  for (int i = 0; i < 5; ++i) d.feedback(4, 0);
  EXPECT_EQ(d.draft_length(), 1);  // never below one
}

using CyclingModel = test::FakeTokenModel;

TEST(ModelDrafter, ProposesTheDraftModelsLikeliestTokensAndFollowsTheSequence) {
  auto cycle = [](int32_t t) { return t >= 10 && t < 16 ? (t == 15 ? 10 : t + 1) : 10; };
  auto owned = std::make_unique<CyclingModel>(64, 100, cycle);
  CyclingModel* draft_model = owned.get();
  ModelDrafter d(std::move(owned), 8);
  std::vector<int32_t> history = {1, 12};
  EXPECT_EQ(d.propose(history, 100), (std::vector<int32_t>{13, 14, 15, 10}));  // the first draft is 4 long
  // It read the history and all but the last draft token.
  EXPECT_EQ(draft_model->n_past(), 2 + 3);
  d.feedback(4, 2);
  // Two drafts taken, then the model chose 20 instead of 15: the draft model
  // forgets what no longer matches and reads only what is new.
  history.insert(history.end(), {13, 14, 20});
  const int before = draft_model->passes;
  EXPECT_EQ(d.propose(history, 100), (std::vector<int32_t>{10, 11, 12, 13}));
  EXPECT_EQ(draft_model->passes - before, 1 + 3);  // one pass for the new token, then one per further draft
  EXPECT_EQ(draft_model->n_past(), 5 + 3);
  d.feedback(4, 4);
  history.insert(history.end(), {10, 11, 12, 13, 14});
  EXPECT_EQ(d.propose(history, 3).size(), 3u);  // the limit wins over the draft length (now 8)
  // Nothing new since the last proposal: the last token is read again for its logits.
  EXPECT_EQ(d.propose(history, 2), (std::vector<int32_t>{15, 10}));
}

TEST(ModelDrafter, DraftsShrinkWhereTheDraftModelsContextEnds) {
  auto cycle = [](int32_t t) { return t + 1; };
  ModelDrafter d(std::make_unique<CyclingModel>(64, 6, cycle), 8);
  EXPECT_EQ(d.propose({1, 2, 3}, 100), (std::vector<int32_t>{4, 5, 6, 7}));  // 3 read + 3 drafts read = 6
  EXPECT_EQ(d.propose({1, 2, 3, 4, 5}, 100), (std::vector<int32_t>{6, 7}));   // 5 + 1
  EXPECT_TRUE(d.propose({1, 2, 3, 4, 5, 6, 7}, 100).empty());                 // past its context: no draft, no error
}

ReplyOptions greedy(int64_t max_tokens, bool speculate) {
  ReplyOptions o;
  o.max_tokens = max_tokens;
  o.sampling.temperature = 0;
  o.speculation.ngram = speculate;
  return o;
}

TEST(Speculation, RepeatingTextTakesFewerPassesForTheSameTokens) {
  auto tok = test::tiny_tokenizer();
  ASSERT_TRUE(tok);
  auto cycle = [](int32_t t) { return t >= 10 && t < 16 ? (t == 15 ? 10 : t + 1) : 10; };  // 10 11 ... 15 10 ...
  const std::vector<int32_t> prompt = {1, 10, 11, 12, 13, 14, 15, 10, 11};
  CyclingModel plain_model(512, 400, cycle), spec_model(512, 400, cycle);
  auto plain = generate(plain_model, *tok, prompt, greedy(200, false), nullptr);
  auto spec = generate(spec_model, *tok, prompt, greedy(200, true), nullptr);
  ASSERT_TRUE(plain.ok() && spec.ok());
  EXPECT_EQ(spec->tokens, plain->tokens);
  EXPECT_EQ(spec->finish, plain->finish);
  EXPECT_GT(spec->n_accepted, 150);
  EXPECT_LT(spec_model.passes * 4, plain_model.passes);  // 200 tokens in far fewer passes
  // The cache ends as it would without speculation: prompt + reply - the last token.
  EXPECT_EQ(spec_model.n_past(), plain_model.n_past());
}

TEST(Speculation, RejectedDraftsAreForgottenAndTheReplyIsUnchanged) {
  auto tok = test::tiny_tokenizer();
  ASSERT_TRUE(tok);
  // The prompt repeats "20 21 22 23", but the model continues 21 with 30 after
  // the repeat: every draft after "20 21" is wrong at its first token.
  auto next = [](int32_t t) { return t == 21 ? 30 : t == 30 ? 20 : t == 20 ? 21 : 20; };
  const std::vector<int32_t> prompt = {1, 20, 21, 22, 23, 20, 21, 22, 23, 20};
  CyclingModel plain_model(512, 400, next), spec_model(512, 400, next);
  auto plain = generate(plain_model, *tok, prompt, greedy(60, false), nullptr);
  auto spec = generate(spec_model, *tok, prompt, greedy(60, true), nullptr);
  ASSERT_TRUE(plain.ok() && spec.ok());
  EXPECT_EQ(spec->tokens, plain->tokens);
  EXPECT_GT(spec->n_drafted, 0);
  EXPECT_EQ(spec_model.n_past(), plain_model.n_past());
}

TEST(Speculation, RespectsTheContextAndMaxTokens) {
  auto tok = test::tiny_tokenizer();
  ASSERT_TRUE(tok);
  auto cycle = [](int32_t t) { return t == 40 ? 41 : 40; };
  for (int64_t ctx : {12, 13, 20}) {
    for (int64_t max_tokens : {1, 2, 3, 7, -1}) {
      CyclingModel plain_model(512, ctx, cycle), spec_model(512, ctx, cycle);
      const std::vector<int32_t> prompt = {1, 40, 41, 40, 41, 40};
      auto plain = generate(plain_model, *tok, prompt, greedy(max_tokens, false), nullptr);
      auto spec = generate(spec_model, *tok, prompt, greedy(max_tokens, true), nullptr);
      ASSERT_TRUE(plain.ok()) << plain.status().message();
      ASSERT_TRUE(spec.ok()) << spec.status().message() << " ctx " << ctx << " max " << max_tokens;
      EXPECT_EQ(spec->tokens, plain->tokens) << "ctx " << ctx << " max " << max_tokens;
      EXPECT_EQ(spec->finish, plain->finish);
      EXPECT_LE(spec_model.n_past(), ctx);
    }
  }
}

// A real model (synthesized in TinyLlama's family, a real tokenizer): the
// batched verifying pass gives the logits one-at-a-time decode gives, so the
// replies agree token for token, greedy and sampled.
class RealModelSpeculation : public ::testing::TestWithParam<const char*> {
 protected:
  void check_at(kernels::Isa isa);
};

TEST_P(RealModelSpeculation, RepliesEqualThoseWithoutSpeculation) {
  for (kernels::Isa isa : kernels::available_isas()) {
    SCOPED_TRACE(kernels::isa_name(isa));
    check_at(isa);
  }
}

void RealModelSpeculation::check_at(kernels::Isa isa) {
  ModelOptions mo;
  mo.n_threads = 2;
  mo.n_ctx = 512;
  mo.isa = isa;
  auto m = Model::load(test::synth_model("tiny", GetParam()), mo);
  ASSERT_TRUE(m.ok()) << m.status().message();
  auto tok = Tokenizer::from_gguf((*m)->file());
  ASSERT_TRUE(tok.ok());
  // Synthesized models continue each token with a fixed successor (synth's
  // chain). A prompt that already holds a run of the model's own greedy
  // reply, then the run's start again, gets drafts the model accepts; text
  // prompts mostly get drafts it rejects.
  std::vector<std::vector<int32_t>> prompts;
  for (const char* text : {"int add(int a, int b) { return a + b; }\nint sub(int a, int b) { return a - b; }\nint mul(",
                           "the cat sat on the mat. the cat sat on the mat. the cat"})
    prompts.push_back((*tok)->encode(text, true, false));
  {
    ModelRunner r(**m);
    auto chain = generate(r, **tok, prompts[1], greedy(40, false), nullptr);
    ASSERT_TRUE(chain.ok());
    std::vector<int32_t> run = prompts[1];
    run.insert(run.end(), chain->tokens.begin(), chain->tokens.end());
    run.insert(run.end(), chain->tokens.begin(), chain->tokens.begin() + 3);
    prompts.push_back(run);
  }
  int64_t accepted = 0, draft_accepted = 0, draft_drafted = 0;
  auto draft_loaded = Model::load(test::synth_model("tiny", std::string(GetParam()) == "q4_0" ? "q8_0" : "q4_0"), mo);
  ASSERT_TRUE(draft_loaded.ok()) << draft_loaded.status().message();
  const std::unique_ptr<Model> draft = std::move(draft_loaded).value();
  {
    auto draft_tok = Tokenizer::from_gguf(draft->file());
    ASSERT_TRUE(draft_tok.ok());
    EXPECT_TRUE(check_draft_model(**m, **tok, *draft, **draft_tok).ok());
  }
  for (const std::vector<int32_t>& prompt : prompts) {
    const std::string text = (*tok)->decode(prompt);
    (*m)->reset();
    for (float temperature : {0.0f, 0.8f}) {
      ReplyOptions o = greedy(48, false);
      o.sampling.temperature = temperature;
      o.sampling.seed = 7;
      (*m)->reset();
      ModelRunner r1(**m);
      auto plain = generate(r1, **tok, prompt, o, nullptr);
      ASSERT_TRUE(plain.ok()) << plain.status().message();
      const int64_t past_plain = (*m)->seq_n_past(0);
      o.speculation.ngram = true;
      (*m)->reset();
      ModelRunner r2(**m);
      auto spec = generate(r2, **tok, prompt, o, nullptr);
      ASSERT_TRUE(spec.ok()) << spec.status().message();
      EXPECT_EQ(spec->tokens, plain->tokens) << text << " at temperature " << temperature;
      EXPECT_EQ((*m)->seq_n_past(0), past_plain);
      accepted += spec->n_accepted;
      // A draft model: the same model in another weight type, loaded apart.
      o.speculation.ngram = false;
      o.speculation.draft_model = draft.get();
      (*m)->reset();
      ModelRunner r3(**m);
      auto drafted = generate(r3, **tok, prompt, o, nullptr);
      ASSERT_TRUE(drafted.ok()) << drafted.status().message();
      EXPECT_EQ(drafted->tokens, plain->tokens) << text << " at temperature " << temperature << " with a draft model";
      EXPECT_EQ((*m)->seq_n_past(0), past_plain);
      EXPECT_GT(drafted->n_drafted, 0);
      draft_accepted += drafted->n_accepted;
      draft_drafted += drafted->n_drafted;
    }
  }
  // The run prompt alone, greedy, accepts nearly all of its 48 tokens.
  EXPECT_GT(accepted, 40) << "drafts were hardly ever accepted: the comparison proved little";
  // The same model in another type agrees with itself on most greedy tokens.
  EXPECT_GT(draft_accepted * 2, draft_drafted) << draft_accepted << " of " << draft_drafted << " drafts accepted";
}

INSTANTIATE_TEST_SUITE_P(Types, RealModelSpeculation, ::testing::Values("q8_0", "q4_0", "f16"));

// The sampled distribution with speculation, against the target model's own.
// A plain random model, top-k 4 at temperature 4: the exact
// probability of each (first, second) token pair comes from the model, the
// first from the prompt's logits and the second from the logits after each
// possible first token. 3000 seeded replies of three tokens, each second token
// decided in a pass that verifies a draft model's proposal, must fit those 16
// probabilities: Pearson's chi-square over the cells below its 0.999
// quantile. The seeds are fixed, so the test cannot flake.
TEST(SpeculationSampling, AcceptedTokensFollowTheTargetsDistribution) {
  ModelOptions mo;
  mo.n_threads = 2;
  mo.n_ctx = 64;
  auto m = Model::load(test::synth_model("tiny", "q8_0", 42, /*plain=*/true), mo);
  auto d = Model::load(test::synth_model("tiny", "q4_0", 42, /*plain=*/true), mo);
  ASSERT_TRUE(m.ok() && d.ok());
  auto tok = Tokenizer::from_gguf((*m)->file());
  ASSERT_TRUE(tok.ok());
  const std::vector<int32_t> prompt = (*tok)->encode("a prompt for the test", true, false);
  const int64_t V = (*m)->config().n_vocab;
  const auto& eog = (*tok)->vocab().end_of_generation;
  // The k likeliest tokens after `tokens` (end-of-generation banned), with
  // their softmax probabilities.
  constexpr int kTopK = 4;
  constexpr double kTemperature = 4.0;  // flattens the plain model's logits so that every pair is sampled
  auto top = [&](const std::vector<int32_t>& tokens) {
    (*m)->reset();
    auto logits = (*m)->eval(tokens.data(), static_cast<int64_t>(tokens.size()));
    EXPECT_TRUE(logits.ok());
    std::vector<std::pair<double, int32_t>> c;
    for (int32_t i = 0; i < V; ++i)
      if (std::find(eog.begin(), eog.end(), i) == eog.end()) c.push_back({(*logits)[i], i});
    std::partial_sort(c.begin(), c.begin() + kTopK, c.end(), std::greater<>());
    c.resize(kTopK);
    const double top_logit = c[0].first;
    double z = 0;
    for (auto& [l, id] : c) z += std::exp((l - top_logit) / kTemperature);
    for (auto& [l, id] : c) l = std::exp((l - top_logit) / kTemperature) / z;
    return c;
  };
  std::map<std::pair<int32_t, int32_t>, double> want;
  for (const auto& [p1, x1] : top(prompt)) {
    std::vector<int32_t> next = prompt;
    next.push_back(x1);
    for (const auto& [p2, x2] : top(next)) want[{x1, x2}] = p1 * p2;
  }
  std::map<std::pair<int32_t, int32_t>, int> got;
  const int n = 3000;
  int64_t drafted = 0;
  for (int seed = 0; seed < n; ++seed) {
    ReplyOptions o;
    o.max_tokens = 3;  // the last token is never drafted for: the second is
    o.ignore_eos = true;
    o.sampling.temperature = static_cast<float>(kTemperature);
    o.sampling.top_k = kTopK;
    o.sampling.top_p = 1.0f;
    o.sampling.min_p = 0.0f;
    o.sampling.seed = static_cast<uint64_t>(seed);
    o.speculation.draft_model = d->get();
    (*m)->reset();
    ModelRunner r(**m);
    auto reply = generate(r, **tok, prompt, o, nullptr);
    ASSERT_TRUE(reply.ok()) << reply.status().message();
    ASSERT_EQ(reply->tokens.size(), 3u);
    ++got[{reply->tokens[0], reply->tokens[1]}];
    drafted += reply->n_drafted;
  }
  EXPECT_GE(drafted, n) << "every second token should have been verified against a draft";
  // Cells expected fewer than 5 times are pooled into one, as the test requires.
  double chi2 = 0, pooled_p = 0;
  int pooled = 0, cells = 0;
  for (const auto& [cell, p] : want) {
    const double e = p * n;
    if (e < 5) {
      pooled_p += p;
      pooled += got[cell];
      continue;
    }
    chi2 += (got[cell] - e) * (got[cell] - e) / e;
    ++cells;
  }
  if (pooled_p * n >= 5) {
    chi2 += (pooled - pooled_p * n) * (pooled - pooled_p * n) / (pooled_p * n);
    ++cells;
  }
  ASSERT_GE(cells, 8) << "too few cells for the test to mean much";
  // df = cells - 1; 0.999 quantiles of chi-square for df 7..15.
  const double kCritical[] = {24.32, 26.12, 27.88, 29.59, 31.26, 32.91, 34.53, 36.12, 37.70};
  const double critical = kCritical[std::min(cells, 16) - 8];
  int outside = 0;
  for (const auto& [cell, count] : got) outside += want.count(cell) ? 0 : count;
  EXPECT_EQ(outside, 0) << "replies outside the top-k pairs";
  EXPECT_LT(chi2, critical) << "the sampled pairs do not fit the model's distribution (" << cells << " cells)";
}

}  // namespace
}  // namespace osprey
