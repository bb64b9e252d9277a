// One sequence's step on its own: forced logits in, tokens, text and the
// end of the reply out.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "engine/sequence_step.h"
#include "tiny_tokenizer.h"

namespace osprey {
namespace {

class SequenceStepTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tok_ = test::tiny_tokenizer();
    ASSERT_TRUE(tok_);
    V_ = tok_->vocab().size();
    for (int32_t id = 0; id < V_ && plain_.size() < 8; ++id) {
      const std::string s = tok_->token_bytes(id);
      if (tok_->vocab().types[id] == TokenType::kNormal && s.size() >= 2 && s.size() <= 4 &&
          std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f; }))
        plain_.push_back(id);
    }
    ASSERT_EQ(plain_.size(), 8u);
  }

  // Logits with `peak` far above the rest (and a gentle slope so ties break).
  std::vector<float> peaked(int32_t peak) const {
    std::vector<float> l(static_cast<size_t>(V_));
    for (int32_t i = 0; i < V_; ++i) l[i] = -static_cast<float>(i % 97) / 97.0f;
    l[peak] = 20.0f;
    return l;
  }

  ReplyOptions greedy() const {
    ReplyOptions o;
    o.sampling.temperature = 0;
    o.max_tokens = 100;
    return o;
  }

  std::string text(int32_t id) const { return tok_->token_bytes(id); }
  // A prompt that ends in text, so the reply's first leading space is kept
  // (after a bare BOS a SentencePiece reply drops it).
  std::vector<int32_t> prompt() const { return {1, plain_[7]}; }

  std::shared_ptr<Tokenizer> tok_;
  int32_t V_ = 0;
  std::vector<int32_t> plain_;
};

TEST_F(SequenceStepTest, TextThatMayBeginAStopStringWaitsAndIsReleasedWhenItDoesNot) {
  ReplyOptions o = greedy();
  o.stop = {text(plain_[0]) + text(plain_[1]) + "\x01"};
  SequenceStep step(*tok_, o, V_, prompt());
  EXPECT_EQ(step.next(peaked(plain_[0]).data(), 50).text, "");
  EXPECT_EQ(step.next(peaked(plain_[1]).data(), 50).text, "");
  const StepOutput third = step.next(peaked(plain_[2]).data(), 50);
  EXPECT_FALSE(third.done);
  EXPECT_EQ(third.text, text(plain_[0]) + text(plain_[1]) + text(plain_[2]));
}

TEST_F(SequenceStepTest, AStopStringAcrossTokensEndsTheReplyWhereItBegins) {
  ReplyOptions o = greedy();
  const std::string a = text(plain_[3]), b = text(plain_[4]);
  o.stop = {a.substr(1) + b.substr(0, 1)};
  SequenceStep step(*tok_, o, V_, prompt());
  const StepOutput first = step.next(peaked(plain_[3]).data(), 50);
  EXPECT_EQ(first.text, a.substr(0, 1));
  const StepOutput second = step.next(peaked(plain_[4]).data(), 50);
  EXPECT_TRUE(second.done);
  EXPECT_EQ(second.finish, FinishReason::kStop);
  EXPECT_EQ(second.text + second.tail, "");
}

TEST_F(SequenceStepTest, HeldTextIsTheTailWhenTheReplyEndsOtherwise) {
  ReplyOptions o = greedy();
  o.max_tokens = 1;
  o.stop = {text(plain_[5]) + "\x01"};
  SequenceStep step(*tok_, o, V_, prompt());
  const StepOutput out = step.next(peaked(plain_[5]).data(), 50);
  EXPECT_TRUE(out.done);
  EXPECT_EQ(out.finish, FinishReason::kLength);
  EXPECT_EQ(out.text, "");
  EXPECT_EQ(out.tail, text(plain_[5]));
}

TEST_F(SequenceStepTest, EndOfGenerationEndsTheReplyUnlessIgnored) {
  const int32_t eos = tok_->vocab().eos;
  ASSERT_GE(eos, 0);
  SequenceStep normal(*tok_, greedy(), V_, {1});
  const StepOutput stop = normal.next(peaked(eos).data(), 50);
  EXPECT_TRUE(stop.done);
  EXPECT_EQ(stop.finish, FinishReason::kStop);
  EXPECT_EQ(stop.token, -1);
  EXPECT_EQ(normal.n_generated(), 0);

  ReplyOptions o = greedy();
  o.ignore_eos = true;
  SequenceStep ignoring(*tok_, o, V_, {1});
  const StepOutput go_on = ignoring.next(peaked(eos).data(), 50);
  EXPECT_FALSE(go_on.done);
  EXPECT_GE(go_on.token, 0);
  EXPECT_FALSE(tok_->vocab().is_end_of_generation(go_on.token));
}

TEST_F(SequenceStepTest, LogprobsAreTheModelsOwnDistribution) {
  ReplyOptions o;
  o.sampling.temperature = 0.7f;  // sampling settings do not change what is reported
  o.sampling.top_k = 2;
  o.top_logprobs = 3;
  SequenceStep step(*tok_, o, V_, prompt());
  std::vector<float> l(static_cast<size_t>(V_), 0.0f);
  l[plain_[0]] = 3;
  l[plain_[1]] = 2;
  l[plain_[2]] = 1;
  const StepOutput out = step.next(l.data(), 50);
  double z = 0;
  for (float x : l) z += std::exp(static_cast<double>(x));
  ASSERT_EQ(out.top.size(), 3u);
  EXPECT_EQ(out.top[0].token, text(plain_[0]));
  EXPECT_EQ(out.top[2].token, text(plain_[2]));
  EXPECT_NEAR(out.top[1].logprob, 2.0 - std::log(z), 1e-4);
  EXPECT_NEAR(out.logprob, l[out.token] - std::log(z), 1e-4);
}

TEST_F(SequenceStepTest, ValidateNamesTheBadField) {
  ReplyOptions o = greedy();
  o.stop = {"ok", ""};
  EXPECT_NE(SequenceStep::validate(o, V_).message().find("stop"), std::string::npos);
  o = greedy();
  o.max_tokens = -2;
  EXPECT_NE(SequenceStep::validate(o, V_).message().find("max_tokens"), std::string::npos);
  o = greedy();
  o.top_logprobs = -7;
  EXPECT_NE(SequenceStep::validate(o, V_).message().find("top_logprobs"), std::string::npos);
  o = greedy();
  o.sampling.temperature = -1;
  EXPECT_FALSE(SequenceStep::validate(o, V_).ok());
  EXPECT_TRUE(SequenceStep::validate(greedy(), V_).ok());
}

}  // namespace
}  // namespace osprey
