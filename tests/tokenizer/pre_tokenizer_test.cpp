#include <gtest/gtest.h>

#include "tokenizer/pre_tokenizer.h"

namespace osprey {
namespace {

std::vector<std::string> split(const std::string& pre, const std::string& text) {
  auto p = PreTokenizer::create(pre);
  EXPECT_TRUE(p.ok()) << pre;
  std::vector<std::string> out;
  for (auto piece : (*p)->split(text)) out.emplace_back(piece);
  return out;
}

TEST(PreTokenizer, Gpt2Words) {
  EXPECT_EQ(split("gpt-2", "Hello world's  end!!"),
            (std::vector<std::string>{"Hello", " world", "'s", " ", " end", "!!"}));
}

TEST(PreTokenizer, Llama3GroupsDigitsByThreeAndIgnoresCaseInContractions) {
  EXPECT_EQ(split("llama-bpe", "1234567 I'M"), (std::vector<std::string>{"123", "456", "7", " I", "'M"}));
}

TEST(PreTokenizer, Qwen2SplitsEveryDigit) {
  EXPECT_EQ(split("qwen2", "a 123"), (std::vector<std::string>{"a", " ", "1", "2", "3"}));
}

// o200k (gpt-oss): a word ends where lower case turns to upper, contractions
// stay on their word, digits go in threes, and one leading non-letter
// (a space, a slash) joins the word after it.
TEST(PreTokenizer, O200kSplitsAtCaseChangesAndKeepsContractions) {
  EXPECT_EQ(split("gpt-4o", "helloWorld don't 12345 a/b"),
            (std::vector<std::string>{"hello", "World", " don't", " ", "123", "45", " a", "/b"}));
}

TEST(PreTokenizer, NewlinesAndTrailingSpaces) {
  EXPECT_EQ(split("llama-bpe", "a\n\n b  "), (std::vector<std::string>{"a", "\n\n", " b", "  "}));
}

TEST(PreTokenizer, PiecesCoverTheInputExactly) {
  const std::string text = "Ünïcödé 你好世界 🦅🦅 12,345.67\t\r\n x\xFF y";
  for (const std::string& name : PreTokenizer::known_names()) {
    std::string joined;
    for (const auto& p : split(name, text)) joined += p;
    EXPECT_EQ(joined, text) << name;
  }
}

TEST(PreTokenizer, UnknownNameIsAClearError) {
  auto p = PreTokenizer::create("no-such-pre");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("no-such-pre"), std::string::npos);
}

}  // namespace
}  // namespace osprey
