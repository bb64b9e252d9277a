// Vocab::from_tokenizer_json: a Hugging Face tokenizer.json mapped onto
// osprey's tokenizer. Byte-level BPE (Llama 3, Qwen, gpt-oss) becomes kBpe
// with the file's own split expressions; BPE with byte fallback (Llama 2,
// Gemma) becomes kCharBpe. Every normalizer, pre-tokenizer and post-processor
// step is either mapped exactly or refused by name: a tokenizer that
// silently differs from the one the model was trained with gives wrong
// answers that look right.
#include <nlohmann/json.hpp>

#include <filesystem>

#include "formats/json_text.h"
#include "tokenizer/vocab.h"

namespace osprey {

namespace {

using json = nlohmann::json;

constexpr int32_t kMaxVocab = 1 << 22;
const char kSpace[] = "\xE2\x96\x81";  // U+2581, SentencePiece's space

// A field of `obj` as type T, or an error naming where it is.
template <class T>
Expected<T> field(const json& obj, const char* key, const std::string& where) {
  const auto it = obj.find(key);
  if (it == obj.end()) return CorruptFile(where + ": '" + key + "' is missing");
  try {
    return it->template get<T>();
  } catch (const json::exception&) {
    return CorruptFile(where + ": '" + key + "' has the wrong type (" + it->type_name() + ")");
  }
}

template <class T>
T field_or(const json& obj, const char* key, T fallback) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  try {
    return it->template get<T>();
  } catch (const json::exception&) {
    return fallback;
  }
}

// A step and, for Sequence, its parts, in order.
void flatten(const json& step, const char* list_key, std::vector<const json*>& out) {
  if (!step.is_object()) return;
  if (field_or<std::string>(step, "type", "") == "Sequence" && step.contains(list_key) && step[list_key].is_array()) {
    for (const json& s : step[list_key]) flatten(s, list_key, out);
    return;
  }
  out.push_back(&step);
}

// A regex matching `s` literally.
std::string escape_regex(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (std::string_view("\\^$.|?*+()[]{}").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

// Pattern {"String": s} or {"Regex": r} as a regex.
Expected<std::string> pattern_of(const json& step, const std::string& where) {
  const auto it = step.find("pattern");
  if (it == step.end() || !it->is_object()) return CorruptFile(where + ": 'pattern' is missing");
  if (it->contains("Regex") && (*it)["Regex"].is_string()) return (*it)["Regex"].get<std::string>();
  if (it->contains("String") && (*it)["String"].is_string()) return escape_regex((*it)["String"].get<std::string>());
  return CorruptFile(where + ": 'pattern' is neither {\"String\": ...} nor {\"Regex\": ...}");
}

const char* const kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// The id of a token named by text, or by an AddedToken object, in a config.
int32_t token_id_of(const Vocab& v, const json& value) {
  if (value.is_string()) return v.find(value.get<std::string>());
  if (value.is_object() && value.contains("content") && value["content"].is_string())
    return v.find(value["content"].get<std::string>());
  return -1;
}

// `path` names the file in errors; `config_text` is tokenizer_config.json's text, or empty.
Expected<Vocab> parse_tokenizer_json(const std::string& text, const std::string& config_text, const std::string& path,
                                     const std::string& config_path) {
  namespace fs = std::filesystem;
  OSPREY_ASSIGN_OR_RETURN(const json root, parse_json_text(text, path, kMaxJsonFileDepth));
  if (!root.is_object()) return CorruptFile(path + ": expected a JSON object at the top");

  Vocab v;
  v.model_name = "tokenizer.json";
  const auto model_it = root.find("model");
  if (model_it == root.end() || !model_it->is_object()) return CorruptFile(path + ": 'model' is missing");
  const json& model = *model_it;
  const std::string where = path + ": model";
  const std::string type = field_or<std::string>(model, "type", "BPE");
  if (type != "BPE")
    return Unsupported(path + ": tokenizer model type '" + type + "' is not supported (osprey reads BPE tokenizers)");
  if (field_or<double>(model, "dropout", 0.0) != 0.0)
    return Unsupported(path + ": BPE dropout is set; osprey tokenizes deterministically");
  for (const char* affix : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (!field_or<std::string>(model, affix, "").empty())
      return Unsupported(path + ": model." + affix + " is set, which osprey does not support");
  const bool byte_fallback = field_or<bool>(model, "byte_fallback", false);
  v.ignore_merges = field_or<bool>(model, "ignore_merges", false);

  // Tokens: the model's vocabulary, then the added tokens at their ids.
  const auto vocab_it = model.find("vocab");
  if (vocab_it == model.end() || !vocab_it->is_object()) return CorruptFile(where + ".vocab is missing or not an object");
  int64_t n = 0;
  for (const auto& [text, id] : vocab_it->items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= kMaxVocab)
      return CorruptFile(where + ".vocab: token '" + text + "' has id " + id.dump() + " (expected 0.." +
                         std::to_string(kMaxVocab - 1) + ")");
    n = std::max(n, id.get<int64_t>() + 1);
  }
  const json added = root.value("added_tokens", json::array());
  if (!added.is_array()) return CorruptFile(path + ": 'added_tokens' is not an array");
  for (const json& a : added) {
    if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() || a["id"].get<int64_t>() < 0 ||
        a["id"].get<int64_t>() >= kMaxVocab || !a.contains("content") || !a["content"].is_string())
      return CorruptFile(path + ": an added token is malformed: " + a.dump().substr(0, 200));
    n = std::max(n, a["id"].get<int64_t>() + 1);
  }
  if (n == 0) return CorruptFile(where + ".vocab is empty");
  v.tokens.assign(static_cast<size_t>(n), std::string());
  std::vector<uint8_t> filled(static_cast<size_t>(n), 0);
  for (const auto& [text, id] : vocab_it->items()) {
    const auto i = static_cast<size_t>(id.get<int64_t>());
    if (filled[i]) return CorruptFile(where + ".vocab: id " + std::to_string(i) + " is given to two tokens");
    v.tokens[i] = text;
    filled[i] = 1;
  }
  v.types.assign(static_cast<size_t>(n), TokenType::kNormal);
  v.scores.assign(static_cast<size_t>(n), 0.0f);
  v.strip.assign(static_cast<size_t>(n), 0);
  for (const json& a : added) {
    const auto i = static_cast<size_t>(a["id"].get<int64_t>());
    const std::string content = a["content"].get<std::string>();
    if (filled[i] && v.tokens[i] != content)
      return CorruptFile(path + ": added token '" + content + "' takes id " + std::to_string(i) + ", which the vocabulary gives to '" +
                         v.tokens[i] + "'");
    if (field_or<bool>(a, "single_word", false))
      return Unsupported(path + ": added token '" + content + "' is single_word, which osprey does not support");
    v.tokens[i] = content;
    filled[i] = 1;
    v.types[i] = field_or<bool>(a, "special", false) ? TokenType::kControl : TokenType::kUserDefined;
    v.strip[i] = static_cast<uint8_t>((field_or<bool>(a, "lstrip", false) ? 1 : 0) | (field_or<bool>(a, "rstrip", false) ? 2 : 0));
  }
  for (size_t i = 0; i < filled.size(); ++i)
    if (!filled[i]) return CorruptFile(path + ": no token has id " + std::to_string(i) + " (ids must be 0.." + std::to_string(n - 1) + " without gaps)");

  v.build_indexes();  // find() from here on; built again at the end, once the special ids are known
  // Merges: "left right" strings, or [left, right] pairs.
  const json merges = model.value("merges", json::array());
  if (!merges.is_array()) return CorruptFile(where + ".merges is not an array");
  v.merge_rank.reserve(merges.size());
  for (size_t r = 0; r < merges.size(); ++r) {
    const json& m = merges[r];
    std::string key;
    if (m.is_string()) {
      key = m.get<std::string>();
      const size_t sp = key.find(' ', 1);
      if (sp == std::string::npos || sp + 1 >= key.size())
        return CorruptFile(where + ".merges[" + std::to_string(r) + "] is malformed: '" + key + "'");
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      key = m[0].get<std::string>() + " " + m[1].get<std::string>();
    } else {
      return CorruptFile(where + ".merges[" + std::to_string(r) + "] is neither \"a b\" nor [\"a\", \"b\"]");
    }
    // As Hugging Face's loader does: both parts and the result must be tokens.
    const size_t sp = m.is_string() ? key.find(' ', 1) : m[0].get<std::string>().size();
    const std::string left = key.substr(0, sp), right = key.substr(sp + 1);
    for (const std::string* t : {&left, &right})
      if (v.find(*t) < 0)
        return CorruptFile(where + ".merges[" + std::to_string(r) + "] '" + key + "' uses '" + *t +
                           "', which is not in the vocabulary");
    if (v.find(left + right) < 0)
      return CorruptFile(where + ".merges[" + std::to_string(r) + "] '" + key + "' makes '" + left + right +
                         "', which is not in the vocabulary");
    v.merge_rank.emplace(std::move(key), static_cast<int32_t>(r));  // the first rank of a repeated merge wins
  }

  // Normalizer.
  bool space_to_meta = false;
  std::vector<const json*> norms;
  if (root.contains("normalizer")) flatten(root["normalizer"], "normalizers", norms);
  for (const json* s : norms) {
    const std::string t = field_or<std::string>(*s, "type", "");
    if (t == "NFC") {
      v.nfc = true;
    } else if (t == "Prepend" && field_or<std::string>(*s, "prepend", "") == kSpace) {
      v.add_space_prefix = true;
    } else if (t == "Replace") {
      OSPREY_ASSIGN_OR_RETURN(const std::string pattern, pattern_of(*s, path + ": normalizer Replace"));
      if (pattern != " " || field_or<std::string>(*s, "content", "") != kSpace)
        return Unsupported(path + ": normalizer Replace of '" + pattern + "' is not supported (only \" \" -> \"\u2581\")");
      space_to_meta = true;
    } else {
      return Unsupported(path + ": normalizer '" + (t.empty() ? s->dump().substr(0, 80) : t) +
                         "' is not supported (osprey maps NFC, Prepend \"\u2581\" and Replace \" \" -> \"\u2581\")");
    }
  }

  // Pre-tokenizer.
  bool byte_level = false;
  std::vector<const json*> pres;
  if (root.contains("pre_tokenizer")) flatten(root["pre_tokenizer"], "pretokenizers", pres);
  for (const json* s : pres) {
    const std::string t = field_or<std::string>(*s, "type", "");
    const std::string step = path + ": pre_tokenizer " + t;
    if (t == "Split") {
      OSPREY_ASSIGN_OR_RETURN(const std::string pattern, pattern_of(*s, step));
      const std::string behavior = field_or<std::string>(*s, "behavior", "Isolated");
      if (field_or<bool>(*s, "invert", false)) return Unsupported(step + " with invert is not supported");
      // Gemma splits on " " after its normalizer has turned every space into
      // U+2581: nothing is left to split.
      if (space_to_meta && pattern == " ") continue;
      if (behavior != "Isolated")
        return Unsupported(step + " with behavior '" + behavior + "' is not supported (only Isolated)");
      v.pre_patterns.push_back(pattern);
    } else if (t == "ByteLevel") {
      byte_level = true;
      if (field_or<bool>(*s, "add_prefix_space", false))
        return Unsupported(step + " with add_prefix_space is not supported");
      if (field_or<bool>(*s, "use_regex", true)) v.pre_patterns.emplace_back(kGpt2Pattern);
    } else if (t == "Digits") {
      v.pre_patterns.emplace_back(field_or<bool>(*s, "individual_digits", false) ? R"(\p{N})" : R"(\p{N}+)");
    } else if (t == "Metaspace") {
      if (field_or<std::string>(*s, "replacement", kSpace) != kSpace) return Unsupported(step + " with a replacement other than U+2581");
      space_to_meta = true;
      const std::string scheme = field_or<std::string>(*s, "prepend_scheme", field_or<bool>(*s, "add_prefix_space", true) ? "always" : "never");
      if (scheme == "always" || scheme == "first") v.add_space_prefix = true;
      else if (scheme != "never") return Unsupported(step + " with prepend_scheme '" + scheme + "'");
      // Split at each U+2581, which stays at the front of the word after it.
      if (field_or<bool>(*s, "split", true)) v.pre_patterns.push_back(std::string(kSpace) + "[^" + kSpace + "]*");
    } else {
      return Unsupported(path + ": pre_tokenizer '" + (t.empty() ? s->dump().substr(0, 80) : t) +
                         "' is not supported (osprey maps Split, ByteLevel, Digits and Metaspace)");
    }
  }
  if (byte_fallback) {
    if (byte_level) return Unsupported(path + ": BPE with both byte_fallback and a ByteLevel pre-tokenizer");
    if (!space_to_meta)
      return Unsupported(path + ": BPE with byte_fallback but no Replace \" \" -> \"\u2581\" normalizer or Metaspace pre-tokenizer");
    v.kind = VocabKind::kCharBpe;
    for (size_t i = 0; i < v.tokens.size(); ++i) {
      const std::string& t = v.tokens[i];
      if (v.types[i] == TokenType::kNormal && t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>')
        v.types[i] = TokenType::kByte;
    }
  } else if (byte_level) {
    v.kind = VocabKind::kBpe;
  } else {
    return Unsupported(path + ": BPE without a ByteLevel pre-tokenizer or byte_fallback (characters outside the "
                       "vocabulary would have no tokens)");
  }
  v.pre = "tokenizer.json";

  // The unknown token.
  if (model.contains("unk_token") && model["unk_token"].is_string()) {
    v.unk = v.find(model["unk_token"].get<std::string>());
    if (v.unk >= 0 && v.types[static_cast<size_t>(v.unk)] != TokenType::kControl)
      v.types[static_cast<size_t>(v.unk)] = TokenType::kUnknown;
  }

  // Post-processor: a template whose single sequence starts and/or ends with
  // special tokens adds those (BOS, EOS).
  std::vector<const json*> posts;
  if (root.contains("post_processor")) flatten(root["post_processor"], "processors", posts);
  for (const json* s : posts) {
    const std::string t = field_or<std::string>(*s, "type", "");
    if (t == "ByteLevel") continue;
    if (t != "TemplateProcessing")
      return Unsupported(path + ": post_processor '" + t + "' is not supported (osprey maps TemplateProcessing and ByteLevel)");
    const json single = s->value("single", json::array());
    if (!single.is_array()) return CorruptFile(path + ": post_processor.single is not an array");
    bool seen_sequence = false;
    for (const json& piece : single) {
      if (piece.contains("Sequence")) {
        seen_sequence = true;
        continue;
      }
      if (!piece.contains("SpecialToken") || !piece["SpecialToken"].is_object())
        return CorruptFile(path + ": post_processor.single holds " + piece.dump().substr(0, 80));
      const int32_t id = token_id_of(v, piece["SpecialToken"].value("id", json()));
      if (id < 0) return CorruptFile(path + ": post_processor names a token the vocabulary lacks: " + piece.dump().substr(0, 80));
      if (!seen_sequence) {
        if (v.add_bos) return Unsupported(path + ": post_processor adds two tokens before the text");
        v.add_bos = true;
        v.bos = id;
      } else {
        if (v.add_eos) return Unsupported(path + ": post_processor adds two tokens after the text");
        v.add_eos = true;
        v.eos = id;
      }
    }
  }

  // tokenizer_config.json: the special tokens by name, and for the Llama and
  // Gemma tokenizer classes (whose add_bos_token rebuilds the template in
  // transformers) whether BOS and EOS are added.
  if (!config_text.empty()) {
    OSPREY_ASSIGN_OR_RETURN(const json config, parse_json_text(config_text, config_path, kMaxJsonFileDepth));
    if (!config.is_object()) return CorruptFile(config_path + ": expected a JSON object at the top");
    if (config.contains("bos_token")) {
      const int32_t id = token_id_of(v, config["bos_token"]);
      if (id >= 0) v.bos = id;
    }
    if (config.contains("eos_token")) {
      const int32_t id = token_id_of(v, config["eos_token"]);
      if (id >= 0) v.eos = id;
    }
    if (config.contains("pad_token")) v.pad = token_id_of(v, config["pad_token"]);
    std::string cls = field_or<std::string>(config, "tokenizer_class", "");
    if (cls.size() > 4 && cls.compare(cls.size() - 4, 4, "Fast") == 0) cls.resize(cls.size() - 4);
    if (cls == "LlamaTokenizer" || cls == "GemmaTokenizer" || cls == "CodeLlamaTokenizer") {
      v.add_bos = field_or<bool>(config, "add_bos_token", v.add_bos) && v.bos >= 0;
      v.add_eos = field_or<bool>(config, "add_eos_token", v.add_eos) && v.eos >= 0;
    }
  }
  v.build_indexes();  // the unknown token's type and the special ids are final
  return v;
}

}  // namespace

Expected<Vocab> Vocab::from_tokenizer_json(const std::string& path_in) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const std::string path = fs::is_directory(path_in, ec) ? (fs::path(path_in) / "tokenizer.json").string() : path_in;
  const std::string config_path = (fs::path(path).parent_path() / "tokenizer_config.json").string();
  OSPREY_ASSIGN_OR_RETURN(const std::string text, read_text_file(path));
  std::string config;
  if (fs::exists(config_path, ec)) {
    OSPREY_ASSIGN_OR_RETURN(config, read_text_file(config_path));
  }
  return from_tokenizer_json_text(text, config, path);
}

Expected<Vocab> Vocab::from_tokenizer_json_text(const std::string& tokenizer_json, const std::string& config_json,
                                                const std::string& name) {
  // Fields of an unexpected JSON type anywhere in the mapping end here, as an
  // error naming the file, rather than as an exception out of the loader.
  try {
    return parse_tokenizer_json(tokenizer_json, config_json, name, name + " (tokenizer_config.json)");
  } catch (const nlohmann::json::exception& e) {
    return CorruptFile(name + ": unexpected tokenizer.json content: " + e.what());
  }
}

}  // namespace osprey
