#include <gtest/gtest.h>

#include "core/utf8.h"

namespace osprey {
namespace {

TEST(Utf8, Validation) {
  EXPECT_TRUE(utf8::is_valid(""));
  EXPECT_TRUE(utf8::is_valid("héllo wörld 你好 🦅"));
  EXPECT_FALSE(utf8::is_valid("\xC3"));              // truncated
  EXPECT_FALSE(utf8::is_valid("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(utf8::is_valid("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(utf8::is_valid("\xF4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_FALSE(utf8::is_valid("\xFF"));
  EXPECT_FALSE(utf8::is_valid("a\x80z"));
}

TEST(Utf8, SplitCharsKeepsMalformedBytesApart) {
  const auto parts = utf8::split_chars("a\xC3\xA9\xFF" "b");
  ASSERT_EQ(parts.size(), 4u);
  EXPECT_EQ(parts[1], "\xC3\xA9");
  EXPECT_EQ(parts[2], "\xFF");
}

TEST(Utf8, CompletePrefixHoldsBackUnfinishedCharacters) {
  EXPECT_EQ(utf8::complete_prefix_length("abc"), 3u);
  EXPECT_EQ(utf8::complete_prefix_length("ab\xE4\xBD"), 2u);     // 3-byte char missing its last byte
  EXPECT_EQ(utf8::complete_prefix_length("ab\xF0\x9F\xA6"), 2u); // 4-byte emoji missing one byte
  EXPECT_EQ(utf8::complete_prefix_length("ab\xE4\xBD\xA0"), 5u);
  EXPECT_EQ(utf8::complete_prefix_length("\xF0"), 0u);
}

TEST(Utf8, AppendEncodesEveryRange) {
  for (uint32_t cp : {0x41u, 0xE9u, 0x4F60u, 0x1F985u}) {
    std::string s;
    utf8::append(s, cp);
    uint32_t back = 0;
    size_t n = 0;
    ASSERT_TRUE(utf8::decode(s, 0, back, n));
    EXPECT_EQ(back, cp);
    EXPECT_EQ(n, s.size());
  }
}

}  // namespace
}  // namespace osprey
