// tokenizer.json mapping on small hand-made files: byte fallback BPE merges
// by rank (not by length or score), the template's BOS, lstrip/rstrip of
// added tokens, Metaspace splitting, NFC; and a hostile file of every kind is
// refused with a message that names what is wrong. The real files of five
// families are compared with a reference implementation in
// tests/js/tokenizer_json_test.mjs.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer.h"

namespace osprey {
namespace {

using json = nlohmann::json;
const std::string kMeta = "\xE2\x96\x81";

// A byte-fallback vocabulary: <unk> <s> </s>, the 256 byte tokens, then `extra`.
json char_bpe(const std::vector<std::string>& extra, const std::vector<std::string>& merges) {
  json vocab = json::object();
  vocab["<unk>"] = 0;
  vocab["<s>"] = 1;
  vocab["</s>"] = 2;
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    vocab[name] = 3 + b;
  }
  int id = 259;
  for (const std::string& t : extra) vocab[t] = id++;
  json j;
  j["model"] = {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}, {"byte_fallback", true}, {"unk_token", "<unk>"}};
  j["normalizer"] = {{"type", "Sequence"},
                     {"normalizers", json::array({{{"type", "Prepend"}, {"prepend", kMeta}},
                                                  {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kMeta}}})}};
  j["post_processor"] = {{"type", "TemplateProcessing"},
                         {"single", json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                                                 {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})}};
  j["added_tokens"] = json::array({{{"id", 0}, {"content", "<unk>"}, {"special", true}},
                                   {{"id", 1}, {"content", "<s>"}, {"special", true}},
                                   {{"id", 2}, {"content", "</s>"}, {"special", true}}});
  return j;
}

std::shared_ptr<Tokenizer> load(const json& j, const std::string& config = "") {
  auto v = Vocab::from_tokenizer_json_text(j.dump(), config, "test.json");
  EXPECT_TRUE(v.ok()) << v.status().message();
  auto t = Tokenizer::from_vocab(std::move(*v), "test.json");
  EXPECT_TRUE(t.ok()) << t.status().message();
  return *t;
}

TEST(TokenizerJson, ByteFallbackMergesByRank) {
  const std::vector<std::string> extra = {kMeta, "a", "b", "c", kMeta + "a", "ab", "bc", kMeta + "ab"};
  // ids: ▁ 259, a 260, b 261, c 262, ▁a 263, ab 264, bc 265, ▁ab 266
  auto t = load(char_bpe(extra, {"b c", kMeta + " a", "a b", kMeta + "a b"}));
  EXPECT_EQ(t->vocab().kind, VocabKind::kCharBpe);
  // "b c" ranks first: ▁abc -> ▁, a, bc -> ▁a, bc.
  EXPECT_EQ(t->encode("abc", true, false), (std::vector<int32_t>{1, 263, 265}));
  // With "a b" first the same text merges the other way: ab, then ▁ab.
  auto u = load(char_bpe(extra, {"a b", kMeta + " ab", "b c", kMeta + " a"}));
  EXPECT_EQ(u->encode("abc", true, false), (std::vector<int32_t>{1, 266, 262}));
  // A character outside the vocabulary falls back to its UTF-8 bytes.
  EXPECT_EQ(t->encode("\xC3\xA9", false, false), (std::vector<int32_t>{259, 3 + 0xC3, 3 + 0xA9}));
  EXPECT_EQ(t->decode(t->encode("ab \xC3\xA9", true, false)), "ab \xC3\xA9");
}

TEST(TokenizerJson, ConfigAddsBosForLlamaClassesAndStripsAroundAddedTokens) {
  json j = char_bpe({kMeta, "a", kMeta + "a"}, {kMeta + " a"});
  j["added_tokens"].push_back({{"id", 262}, {"content", "<end>"}, {"special", true}, {"lstrip", true}, {"rstrip", true}});
  j["model"]["vocab"]["<end>"] = 262;
  auto t = load(j, R"({"tokenizer_class": "LlamaTokenizerFast", "add_bos_token": false, "eos_token": "<end>"})");
  EXPECT_FALSE(t->vocab().add_bos);
  EXPECT_EQ(t->vocab().eos, 262);
  EXPECT_TRUE(t->vocab().is_end_of_generation(262));
  // The spaces on both sides of <end> belong to it.
  EXPECT_EQ(t->encode("a  <end>  a", false, true), t->encode("a<end>a", false, true));
  // Another class's add_bos_token does not override the template (as in transformers).
  auto q = load(j, R"({"tokenizer_class": "Qwen2Tokenizer", "add_bos_token": false})");
  EXPECT_TRUE(q->vocab().add_bos);
}

TEST(TokenizerJson, ByteLevelWithMetaspaceDigitsAndNfc) {
  // Byte-level: the vocabulary is the 256 byte symbols.
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[bpe_byte_to_text(static_cast<uint8_t>(b))] = b;
  json j;
  j["model"] = {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array()}};
  j["normalizer"] = {{"type", "NFC"}};
  j["pre_tokenizer"] = {{"type", "Sequence"},
                        {"pretokenizers", json::array({{{"type", "Digits"}, {"individual_digits", true}},
                                                       {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}})}};
  auto t = load(j);
  EXPECT_EQ(t->vocab().kind, VocabKind::kBpe);
  // NFC first: "e" + U+0301 becomes the two bytes of U+00E9.
  EXPECT_EQ(t->encode("e\xCC\x81", false, false), (std::vector<int32_t>{0xC3, 0xA9}));
  EXPECT_EQ(t->encode("12", false, false), (std::vector<int32_t>{'1', '2'}));
  // Invalid UTF-8 is kept byte for byte.
  EXPECT_EQ(t->decode(t->encode("\xFF\xFE ok", false, false)), "\xFF\xFE ok");
}

TEST(TokenizerJson, FolderWithConfig) {
  const auto dir = std::filesystem::temp_directory_path() / ("osprey_tokjson_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "tokenizer.json") << char_bpe({kMeta, "a", kMeta + "a"}, {kMeta + " a"}).dump();
  std::ofstream(dir / "tokenizer_config.json") << R"({"tokenizer_class": "GemmaTokenizer", "add_eos_token": true, "eos_token": {"content": "</s>"}})";
  auto t = Tokenizer::from_tokenizer_json(dir.string());
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ((*t)->encode("a", true, false), (std::vector<int32_t>{1, 261, 2}));
  std::filesystem::remove_all(dir);
  EXPECT_FALSE(Tokenizer::from_tokenizer_json(dir.string()).ok());
}

TEST(TokenizerJson, HostileFilesAreRefusedByName) {
  const json good = char_bpe({kMeta, "a", kMeta + "a"}, {kMeta + " a"});
  auto refused = [](const std::string& text, const std::string& needle) {
    auto v = Vocab::from_tokenizer_json_text(text, "", "bad.json");
    ASSERT_FALSE(v.ok()) << "accepted a file that should be refused for: " << needle;
    EXPECT_NE(v.status().message().find(needle), std::string::npos) << v.status().message();
    EXPECT_NE(v.status().message().find("bad.json"), std::string::npos) << v.status().message();
  };
  refused("{", "not valid JSON");
  refused(good.dump().substr(0, good.dump().size() / 2), "not valid JSON");
  refused(std::string(100, '[') + std::string(100, ']'), "nested more than 64 levels");
  refused("[]", "JSON object");
  refused("{}", "'model' is missing");
  auto with = [&](const std::function<void(json&)>& change) {
    json j = good;
    change(j);
    return j.dump();
  };
  refused(with([](json& j) { j["model"]["type"] = "Unigram"; }), "Unigram");
  refused(with([](json& j) { j["model"]["vocab"] = json::array(); }), "vocab");
  refused(with([](json& j) { j["model"]["vocab"]["a"] = -4; }), "has id -4");
  refused(with([](json& j) { j["model"]["vocab"]["a"] = 1e12; }), "has id");
  refused(with([](json& j) { j["model"]["vocab"]["zz"] = 259; }), "two tokens");
  refused(with([](json& j) { j["model"]["vocab"]["zz"] = 400; }), "no token has id");
  refused(with([](json& j) { j["model"]["merges"] = json::array({"a q"}); }), "uses 'q'");
  refused(with([](json& j) { j["model"]["merges"] = json::array({"a a"}); }), "makes 'aa'");
  refused(with([](json& j) { j["model"]["merges"] = json::array({5}); }), "merges[0]");
  refused(with([](json& j) { j["model"]["merges"] = json::array({"nospace"}); }), "merges[0]");
  refused(with([](json& j) { j["model"]["merges"] = "a b"; }), "merges");
  refused(with([](json& j) { j["model"]["dropout"] = 0.1; }), "dropout");
  refused(with([](json& j) { j["normalizer"] = {{"type", "NFKC"}}; }), "NFKC");
  refused(with([](json& j) { j["normalizer"] = {{"type", "Replace"}, {"pattern", 5}, {"content", "x"}}; }), "Replace");
  refused(with([](json& j) { j["pre_tokenizer"] = {{"type", "Whitespace"}}; }), "Whitespace");
  refused(with([](json& j) { j["post_processor"] = {{"type", "RobertaProcessing"}}; }), "RobertaProcessing");
  refused(with([](json& j) { j["added_tokens"].push_back({{"id", 259}, {"content", "<x>"}}); }), "takes id 259");
  refused(with([](json& j) { j["added_tokens"].push_back({{"id", "one"}, {"content", "<x>"}}); }), "malformed");
  refused(with([](json& j) {
            j["added_tokens"].push_back({{"id", 262}, {"content", "<x>"}, {"single_word", true}});
          }), "single_word");
  refused(with([](json& j) { j["model"]["byte_fallback"] = false; }), "ByteLevel");
  // A split expression PCRE2 cannot compile: named when the tokenizer is built.
  json bad_regex = good;
  bad_regex["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}};
  auto v = Vocab::from_tokenizer_json_text(bad_regex.dump(), "", "bad.json");
  ASSERT_TRUE(v.ok()) << v.status().message();
  auto t = Tokenizer::from_vocab(std::move(*v), "bad.json");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("(unclosed"), std::string::npos) << t.status().message();
  // A config that is not JSON is named too.
  auto c = Vocab::from_tokenizer_json_text(good.dump(), "{oops", "bad.json");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("tokenizer_config.json"), std::string::npos) << c.status().message();
}

}  // namespace
}  // namespace osprey
