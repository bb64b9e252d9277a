// The generation loop, driven by a fake model whose logits are scripted.
#include <gtest/gtest.h>

#include "engine/generator.h"
#include "fake_token_model.h"
#include "tiny_tokenizer.h"

namespace osprey {
namespace {

using FakeModel = test::FakeTokenModel;

class Generator : public ::testing::Test {
 protected:
  void SetUp() override {
    tok_ = test::tiny_tokenizer();
    ASSERT_TRUE(tok_);
  }
  ReplyOptions greedy(int64_t max_tokens) {
    ReplyOptions o;
    o.max_tokens = max_tokens;
    o.sampling.temperature = 0;
    return o;
  }
  std::shared_ptr<Tokenizer> tok_;
};

TEST_F(Generator, StopsAtMaxTokens) {
  FakeModel m(512, 100, [](int32_t t) { return (t + 1) % 500 + 10; });
  auto r = generate(m, *tok_, {1, 50}, greedy(5), nullptr);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->tokens.size(), 5u);
  EXPECT_EQ(r->finish, FinishReason::kLength);
  EXPECT_EQ(r->tokens[0], 61);
  EXPECT_EQ(m.passes, 5);  // prompt pass + 4 single-token passes: the last token is never evaluated
}

TEST_F(Generator, StopsAtEndOfGenerationWithoutEmittingIt) {
  const int32_t eos = tok_->vocab().eos;
  FakeModel m(512, 100, [&](int32_t t) { return t == 60 ? eos : 60; });
  std::string text;
  auto r = generate(m, *tok_, {1, 50}, greedy(20), [&](int32_t, const std::string& s) {
    text += s;
    return true;
  });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->tokens, (std::vector<int32_t>{60}));
  EXPECT_EQ(r->finish, FinishReason::kStop);
  EXPECT_EQ(text, tok_->token_bytes(60));
}

TEST_F(Generator, StopsCleanlyWhenTheContextIsFull) {
  FakeModel m(512, 8, [](int32_t) { return 70; });
  auto r = generate(m, *tok_, {1, 2, 3}, greedy(-1), nullptr);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->finish, FinishReason::kContextFull);
  EXPECT_EQ(r->tokens.size(), 6u);  // 3 prompt + 5 evaluated + the last sampled one
}

TEST_F(Generator, PromptLongerThanContextIsAClearError) {
  FakeModel m(512, 4, [](int32_t) { return 70; });
  auto r = generate(m, *tok_, {1, 2, 3, 4, 5}, greedy(3), nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("5 tokens"), std::string::npos);
  EXPECT_NE(r.status().message().find("context size 4"), std::string::npos);
}

TEST_F(Generator, CallbackCanCancel) {
  FakeModel m(512, 100, [](int32_t) { return 70; });
  int seen = 0;
  auto r = generate(m, *tok_, {1}, greedy(50), [&](int32_t, const std::string&) { return ++seen < 3; });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->finish, FinishReason::kCancelled);
  EXPECT_EQ(r->tokens.size(), 3u);
}

TEST_F(Generator, RejectsBadInput) {
  FakeModel m(512, 100, [](int32_t) { return 70; });
  EXPECT_FALSE(generate(m, *tok_, {}, greedy(5), nullptr).ok());
  ReplyOptions o = greedy(5);
  o.sampling.temperature = -3;
  EXPECT_FALSE(generate(m, *tok_, {1}, o, nullptr).ok());
}

}  // namespace
}  // namespace osprey
