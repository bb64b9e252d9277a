#include <gtest/gtest.h>

#include "formats/gguf.h"
#include "test_util.h"
#include "core/utf8.h"
#include "tokenizer/detokenizer.h"

namespace osprey {
namespace {

TEST(SanitizeUtf8, ReplacesInvalidAndHoldsIncomplete) {
  std::string rest;
  EXPECT_EQ(sanitize_utf8("ok", true, rest), "ok");
  EXPECT_EQ(rest, "");
  EXPECT_EQ(sanitize_utf8("a\xFF" "b", true, rest), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(sanitize_utf8("a\xE4\xBD", true, rest), "a");
  EXPECT_EQ(rest, "\xE4\xBD");
  EXPECT_EQ(sanitize_utf8("a\xE4\xBD", false, rest), "a\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(sanitize_utf8("\xC0\xAF", true, rest), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong: two bad bytes
}

// A SentencePiece vocabulary with byte tokens: a character split over byte
// tokens must come out whole, and never as a broken sequence.
class StreamDetok : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string path = test::synth_model("tiny", "q8_0");
    ASSERT_FALSE(path.empty());
    auto f = GgufFile::open(path);
    ASSERT_TRUE(f.ok());
    auto t = Tokenizer::from_gguf(*f);
    ASSERT_TRUE(t.ok());
    tok_ = *t;
  }
  int32_t byte(uint8_t b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    return tok_->vocab().find(name);
  }
  std::shared_ptr<Tokenizer> tok_;
};

TEST_F(StreamDetok, CharacterSpanningTokensIsHeldUntilComplete) {
  StreamDetokenizer d(*tok_);
  // U+4F60 (你) = E4 BD A0, sent as three byte tokens.
  EXPECT_EQ(d.push(byte(0xE4)), "");
  EXPECT_EQ(d.push(byte(0xBD)), "");
  EXPECT_EQ(d.push(byte(0xA0)), "\xE4\xBD\xA0");
  // An emoji in four pieces after some ASCII.
  EXPECT_EQ(d.push(byte('x')), "x");
  EXPECT_EQ(d.push(byte(0xF0)), "");
  EXPECT_EQ(d.push(byte(0x9F)), "");
  EXPECT_EQ(d.push(byte(0xA6)), "");
  EXPECT_EQ(d.push(byte(0x85)), "\xF0\x9F\xA6\x85");
  EXPECT_EQ(d.flush(), "");
}

TEST_F(StreamDetok, InvalidBytesBecomeReplacementCharacters) {
  StreamDetokenizer d(*tok_);
  EXPECT_EQ(d.push(byte(0xFF)), "\xEF\xBF\xBD");
  EXPECT_EQ(d.push(byte(0xE4)), "");
  EXPECT_EQ(d.push(byte('a')), "\xEF\xBF\xBD" "a");  // the lead byte can no longer complete
  EXPECT_EQ(d.push(byte(0xC3)), "");
  EXPECT_EQ(d.flush(), "\xEF\xBF\xBD");  // stream ended mid-character
}

TEST_F(StreamDetok, EveryPrefixOfAStreamIsValidUtf8) {
  const std::string text = "héllo 你好 🦅 wörld";
  const auto ids = tok_->encode(text, false, false);
  StreamDetokenizer d(*tok_);
  std::string all;
  for (int32_t id : ids) {
    const std::string piece = d.push(id);
    EXPECT_TRUE(utf8::is_valid(piece));
    all += piece;
  }
  all += d.flush();
  EXPECT_EQ(all, text);
}

TEST_F(StreamDetok, LeadingSpaceKeptAfterContext) {
  const auto ids = tok_->encode("a b", false, false);
  ASSERT_GE(ids.size(), 2u);
  StreamDetokenizer fresh(*tok_);
  std::string from_start;
  for (int32_t id : ids) from_start += fresh.push(id);
  EXPECT_EQ(from_start, "a b");
  StreamDetokenizer cont(*tok_);
  cont.push_context(tok_->encode("x", true, false));
  std::string continued;
  for (int32_t id : ids) continued += cont.push(id);
  EXPECT_EQ(continued, " a b");  // continuing text keeps the space SentencePiece put before "a"
}

}  // namespace
}  // namespace osprey
