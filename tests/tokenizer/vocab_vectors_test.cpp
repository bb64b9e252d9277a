// Token ids must match, exactly, what each model's own tokenizer produced for
// the texts in ../shared/testdata/vocab (special tokens off, no BOS/EOS).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "formats/gguf.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace osprey {
namespace {

std::vector<std::string> split_inputs(const std::string& s) {
  std::vector<std::string> out;
  const std::string sep = "\n__ggml_vocab_test__\n";
  size_t start = 0;
  for (size_t at; (at = s.find(sep, start)) != std::string::npos; start = at + sep.size()) out.push_back(s.substr(start, at - start));
  // The file ends with a final separator; a trailing remainder is a text too.
  if (start < s.size()) out.push_back(s.substr(start));
  return out;
}

std::vector<std::vector<int32_t>> read_expected(const std::string& s) {
  std::vector<std::vector<int32_t>> out;
  std::istringstream lines(s);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream ids(line);
    std::vector<int32_t> v;
    for (int32_t id; ids >> id;) v.push_back(id);
    out.push_back(v);
  }
  return out;
}

std::string show(const std::vector<int32_t>& v) {
  std::string s;
  for (int32_t id : v) s += std::to_string(id) + " ";
  return s;
}

class VocabVectors : public ::testing::TestWithParam<std::string> {};

TEST_P(VocabVectors, MatchReferenceTokenizer) {
  const std::string dir = test::shared_testdata_dir();
  if (dir.empty()) GTEST_SKIP() << "../shared/testdata is absent; the real-vocabulary vectors cannot be checked";
  const std::string base = dir + "/vocab/" + GetParam();
  auto file = GgufFile::open(base);
  ASSERT_TRUE(file.ok()) << file.status().message();
  auto tok = Tokenizer::from_gguf(*file);
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  const auto inputs = split_inputs(test::read_file(base + ".inp"));
  const auto expected = read_expected(test::read_file(base + ".out"));
  ASSERT_EQ(inputs.size(), expected.size()) << "test vector files disagree in length";
  int failures = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const auto got = (*tok)->encode(inputs[i], /*add_special=*/false, /*parse_special=*/false);
    if (got != expected[i]) {
      ++failures;
      ADD_FAILURE() << GetParam() << " text #" << i << " '" << inputs[i] << "'\n  expected: " << show(expected[i])
                    << "\n  got:      " << show(got);
    }
    // Decoding gives the text back (SentencePiece drops only the space it added).
    EXPECT_EQ((*tok)->decode(expected[i]), inputs[i]) << GetParam() << ": decode of text #" << i;
  }
  EXPECT_EQ(failures, 0);
}

INSTANTIATE_TEST_SUITE_P(Shared, VocabVectors,
                         ::testing::Values("ggml-vocab-llama-spm.gguf", "ggml-vocab-phi-3.gguf", "ggml-vocab-gpt-2.gguf",
                                           "ggml-vocab-deepseek-llm.gguf"),
                         [](const auto& info) {
                           // "ggml-vocab-NAME.gguf" -> NAME
                           return test::test_name(info.param.substr(11, info.param.size() - 16));
                         });

}  // namespace
}  // namespace osprey
