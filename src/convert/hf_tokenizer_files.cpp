#include "convert/hf_tokenizer_files.h"

#include <algorithm>
#include <filesystem>

#include "formats/json_text.h"
#include "tokenizer/pre_tokenizer.h"

namespace osprey::hf {

namespace {

using json = nlohmann::json;

Status byte_level_only(const Vocab& v, const std::string& where) {
  if (v.kind == VocabKind::kBpe) return Status::Ok();
  return Unsupported(where + ": only byte-level BPE tokenizers (Llama 3, Qwen) can be converted yet; this one is " +
                     (v.kind == VocabKind::kCharBpe ? std::string("BPE with byte fallback (Llama 2, Gemma)")
                                                    : std::string("SentencePiece")));
}

// Merges in rank order, as "left right".
std::vector<std::string> merges_by_rank(const Vocab& v) {
  std::vector<std::pair<int32_t, std::string>> ranked;
  ranked.reserve(v.merge_rank.size());
  for (const auto& [pair, rank] : v.merge_rank) ranked.emplace_back(rank, pair);
  std::sort(ranked.begin(), ranked.end());
  std::vector<std::string> out;
  out.reserve(ranked.size());
  for (auto& [rank, pair] : ranked) out.push_back(std::move(pair));
  return out;
}

}  // namespace

Expected<std::vector<std::pair<std::string, GgufValue>>> gguf_tokenizer_metadata(const Vocab& v, int64_t n_rows,
                                                                                const std::string& chat_template,
                                                                                const std::string& where) {
  OSPREY_TRY(byte_level_only(v, where));
  const std::string pre = v.pre_patterns.empty() ? v.pre : PreTokenizer::name_of(v.pre_patterns);
  if (pre.empty())
    return Unsupported(where + ": the tokenizer's split expressions match none llama.cpp names (tokenizer.ggml.pre); "
                       "a GGUF file could not say how to split text");
  if (n_rows < v.size())
    return CorruptFile(where + ": the embedding has " + std::to_string(n_rows) + " rows for " +
                       std::to_string(v.size()) + " tokens");
  std::vector<std::string> tokens = v.tokens;
  std::vector<int64_t> types;
  for (TokenType t : v.types) types.push_back(static_cast<int64_t>(t));
  for (int64_t i = v.size(); i < n_rows; ++i) {
    tokens.push_back("[PAD" + std::to_string(i) + "]");
    types.push_back(static_cast<int64_t>(TokenType::kUnused));
  }
  std::vector<std::pair<std::string, GgufValue>> kv;
  kv.emplace_back("tokenizer.ggml.model", GgufValue::str("gpt2"));
  kv.emplace_back("tokenizer.ggml.pre", GgufValue::str(pre));
  kv.emplace_back("tokenizer.ggml.tokens", GgufValue::string_array(std::move(tokens)));
  kv.emplace_back("tokenizer.ggml.token_type", GgufValue::int_array(GgufType::kI32, std::move(types)));
  kv.emplace_back("tokenizer.ggml.merges", GgufValue::string_array(merges_by_rank(v)));
  if (v.bos >= 0) kv.emplace_back("tokenizer.ggml.bos_token_id", GgufValue::u32(static_cast<uint32_t>(v.bos)));
  if (v.eos >= 0) kv.emplace_back("tokenizer.ggml.eos_token_id", GgufValue::u32(static_cast<uint32_t>(v.eos)));
  if (v.pad >= 0) kv.emplace_back("tokenizer.ggml.padding_token_id", GgufValue::u32(static_cast<uint32_t>(v.pad)));
  kv.emplace_back("tokenizer.ggml.add_bos_token", GgufValue::boolean(v.add_bos));
  kv.emplace_back("tokenizer.ggml.add_eos_token", GgufValue::boolean(v.add_eos));
  if (!chat_template.empty()) kv.emplace_back("tokenizer.chat_template", GgufValue::str(chat_template));
  return kv;
}

Expected<std::string> folder_chat_template(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path config = fs::path(dir) / "tokenizer_config.json";
  if (fs::exists(config, ec)) {
    OSPREY_ASSIGN_OR_RETURN(const json j, read_json_file(config.string()));
    if (j.is_object() && j.contains("chat_template")) {
      const json& t = j["chat_template"];
      if (t.is_string()) return t.get<std::string>();
      if (t.is_array())
        for (const json& named : t)
          if (named.is_object() && named.contains("name") && named["name"] == "default" && named.contains("template") &&
              named["template"].is_string())
            return named["template"].get<std::string>();
    }
  }
  const fs::path jinja = fs::path(dir) / "chat_template.jinja";
  if (fs::exists(jinja, ec)) return read_text_file(jinja.string());
  return std::string();
}

Expected<json> tokenizer_json(const Vocab& v, const std::string& where) {
  OSPREY_TRY(byte_level_only(v, where));
  const std::vector<std::string> patterns = v.pre_patterns.empty() ? PreTokenizer::patterns_of(v.pre) : v.pre_patterns;
  if (patterns.empty()) return Unsupported(where + ": pre-tokenizer '" + v.pre + "' has no split expressions osprey knows");
  json vocab = json::object(), added = json::array(), splits = json::array();
  for (int32_t i = 0; i < v.size(); ++i) {
    const TokenType t = v.types[static_cast<size_t>(i)];
    if (t == TokenType::kUnused) continue;  // GGUF's padding
    if (t == TokenType::kControl || t == TokenType::kUserDefined)
      added.push_back({{"id", i}, {"content", v.tokens[static_cast<size_t>(i)]}, {"single_word", false},
                       {"lstrip", false}, {"rstrip", false}, {"normalized", false},
                       {"special", t == TokenType::kControl}});
    vocab[v.tokens[static_cast<size_t>(i)]] = i;
  }
  for (const std::string& p : patterns)
    splits.push_back({{"type", "Split"}, {"pattern", {{"Regex", p}}}, {"behavior", "Isolated"}, {"invert", false}});
  splits.push_back({{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}});
  json post = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}, {"use_regex", true}};
  if (v.add_bos && v.bos >= 0) {
    const std::string bos = v.tokens[static_cast<size_t>(v.bos)];
    post = {{"type", "TemplateProcessing"},
            {"single", json::array({{{"SpecialToken", {{"id", bos}, {"type_id", 0}}}},
                                    {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
            {"pair", json::array({{{"SpecialToken", {{"id", bos}, {"type_id", 0}}}},
                                  {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                                  {{"SpecialToken", {{"id", bos}, {"type_id", 1}}}},
                                  {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}})},
            {"special_tokens", {{bos, {{"id", bos}, {"ids", json::array({v.bos})}, {"tokens", json::array({bos})}}}}}};
  }
  json j;
  j["version"] = "1.0";
  j["truncation"] = nullptr;
  j["padding"] = nullptr;
  j["added_tokens"] = added;
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", splits}};
  j["post_processor"] = post;
  j["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
  j["model"] = {{"type", "BPE"},        {"dropout", nullptr},   {"unk_token", nullptr},
                {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr}, {"fuse_unk", false},
                {"byte_fallback", false}, {"ignore_merges", v.ignore_merges}, {"vocab", vocab},
                {"merges", merges_by_rank(v)}};
  return j;
}

json tokenizer_config(const Vocab& v, const std::string& chat_template) {
  json c;
  c["tokenizer_class"] = "PreTrainedTokenizerFast";
  c["add_bos_token"] = v.add_bos;
  c["add_eos_token"] = v.add_eos;
  if (v.bos >= 0) c["bos_token"] = v.text_of(v.bos);
  if (v.eos >= 0) c["eos_token"] = v.text_of(v.eos);
  if (v.pad >= 0) c["pad_token"] = v.text_of(v.pad);
  if (!chat_template.empty()) c["chat_template"] = chat_template;
  return c;
}

}  // namespace osprey::hf
