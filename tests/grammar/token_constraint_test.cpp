#include "grammar/token_constraint.h"

#include <gtest/gtest.h>

#include <cmath>

namespace osprey::grammar {
namespace {

// A toy vocabulary: id 0 ends the generation (a control token, no bytes).
const std::vector<std::string> kVocab = {"", "a", "b", "ab", "abc", "c", "\"", "{", "}", "x", "\"a", "aa"};

std::shared_ptr<GrammarMasks> masks(const std::string& gbnf) {
  auto g = Grammar::parse(gbnf);
  EXPECT_TRUE(g.ok()) << g.status().message();
  return std::make_shared<GrammarMasks>(std::make_shared<const Grammar>(std::move(g).value()));
}

// The tokens `next` may draw from: a sampler that records them, then takes the first.
std::vector<int32_t> allowed(TokenConstraint& c, int64_t budget) {
  std::vector<int32_t> seen;
  std::vector<float> logits(kVocab.size(), 0.0f);
  TokenConstraint copy = c;
  copy.next(logits.data(), budget, [&](const float* l) {
    seen.clear();
    for (size_t i = 0; i < kVocab.size(); ++i)
      if (!std::isinf(l[i])) seen.push_back(static_cast<int32_t>(i));
    return seen.front();
  });
  return seen;
}

TEST(TokenConstraint, OffersExactlyTheTokensTheGrammarAllows) {
  auto trie = std::make_shared<const TokenTrie>(kVocab);
  TokenConstraint c(masks(R"(root ::= "ab" "c"?)"), trie, {0});
  EXPECT_EQ(allowed(c, 100), (std::vector<int32_t>{1, 3, 4}));  // a, ab, abc; not aa
}

TEST(TokenConstraint, EndsOnlyWhenComplete) {
  auto trie = std::make_shared<const TokenTrie>(kVocab);
  TokenConstraint c(masks(R"(root ::= "ab" "c"?)"), trie, {0});
  ASSERT_TRUE(c.accept(3));  // "ab": complete, and "c" may follow
  EXPECT_EQ(allowed(c, 100), (std::vector<int32_t>{0, 5}));
  EXPECT_FALSE(TokenConstraint(masks(R"(root ::= "ab")"), trie, {0}).accept(0));
}

TEST(TokenConstraint, TheBudgetClosesTheSentenceInTime) {
  auto trie = std::make_shared<const TokenTrie>(kVocab);
  // Any number of a's, then "}": with one token left only "}" completes it.
  TokenConstraint c(masks(R"(root ::= "{" "a"* "}")"), trie, {0});
  ASSERT_TRUE(c.accept(7));
  EXPECT_EQ(allowed(c, 50), (std::vector<int32_t>{1, 8, 11}));
  EXPECT_EQ(allowed(c, 1), (std::vector<int32_t>{8}));
  // With the budget already below the shortest sentence, every token must bring it nearer.
  TokenConstraint d(masks(R"(root ::= "\"" "a"* "abc" "\"")"), trie, {0});
  EXPECT_EQ(allowed(d, 1), (std::vector<int32_t>{6, 10}));
}

}  // namespace
}  // namespace osprey::grammar
