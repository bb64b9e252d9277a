// The vocabularies `osprey synth` makes up must round-trip any text.
#include <gtest/gtest.h>

#include "formats/gguf.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace osprey {
namespace {

class SynthVocab : public ::testing::TestWithParam<std::string> {};

TEST_P(SynthVocab, EncodeDecodeRoundTrips) {
  const std::string path = test::synth_model(GetParam(), "q8_0");
  ASSERT_FALSE(path.empty());
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f.ok());
  auto tok = Tokenizer::from_gguf(*f);
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  for (const std::string text : {"", " ", "Hello world", "  leading and trailing  ", "tab\tnew\nline\r\n",
                                 "naïve café 你好 🦅", "12345 + 67 = 12412", "<|im_end|> is text here"}) {
    const auto ids = (*tok)->encode(text, false, false);
    EXPECT_EQ((*tok)->decode(ids), text) << GetParam() << ": '" << text << "'";
  }
}

TEST_P(SynthVocab, SpecialTokensParseOnlyWhenAsked) {
  const std::string path = test::synth_model(GetParam(), "q8_0");
  auto f = GgufFile::open(path);
  auto tok = Tokenizer::from_gguf(*f);
  ASSERT_TRUE(tok.ok());
  const Vocab& v = (*tok)->vocab();
  ASSERT_GE(v.eos, 0);
  const std::string eos_text = v.tokens[v.eos];
  const auto parsed = (*tok)->encode("a" + eos_text, false, true);
  EXPECT_EQ(parsed.back(), v.eos);
  const auto literal = (*tok)->encode("a" + eos_text, false, false);
  for (int32_t id : literal) EXPECT_NE(id, v.eos);
}

INSTANTIATE_TEST_SUITE_P(Presets, SynthVocab, ::testing::Values("tiny", "tiny-qwen2", "tiny-llama3"),
                         [](const auto& info) { return test::test_name(info.param); });

}  // namespace
}  // namespace osprey
