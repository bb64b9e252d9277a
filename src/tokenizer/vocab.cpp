#include "tokenizer/vocab.h"

#include <algorithm>

#include "core/log.h"

namespace osprey {

namespace {

// Pre-tokenizer names whose tokenizer.json sets ignore_merges.
bool pre_ignores_merges(const std::string& pre) {
  return pre == "llama3" || pre == "llama-v3" || pre == "llama-bpe" || pre == "falcon3" || pre == "tekken";
}

Status read_token_id(const GgufFile& f, const char* key, int32_t n_vocab, int32_t& out) {
  auto v = f.get_int(key, out);
  if (!v.ok()) return v.status();
  if (*v == out) return Status::Ok();  // absent: keep the default
  if (*v < 0 || *v >= n_vocab) {
    log::warn(f.path() + ": " + key + " = " + std::to_string(*v) + " is outside the vocabulary; ignored");
    out = -1;
    return Status::Ok();
  }
  out = static_cast<int32_t>(*v);
  return Status::Ok();
}

}  // namespace

Expected<Vocab> Vocab::from_gguf(const GgufFile& f) {
  Vocab v;
  OSPREY_ASSIGN_OR_RETURN(v.model_name, f.get_string("tokenizer.ggml.model"));
  if (v.model_name == "llama") v.kind = VocabKind::kSpm;
  else if (v.model_name == "gpt2") v.kind = VocabKind::kBpe;
  else if (v.model_name == "bert") v.kind = VocabKind::kWordPiece;
  else
    return Unsupported(f.path() + ": tokenizer model '" + v.model_name +
                       "' is not supported (supported: llama (SentencePiece), gpt2 (byte-level BPE), bert (WordPiece))");
  OSPREY_ASSIGN_OR_RETURN(v.pre, f.get_string("tokenizer.ggml.pre", "default"));

  OSPREY_ASSIGN_OR_RETURN(const GgufValue* tokens, f.get_array("tokenizer.ggml.tokens", GgufType::kString));
  v.tokens = tokens->strings;
  const auto n = static_cast<int64_t>(v.tokens.size());
  if (n == 0 || n > (1 << 22)) return CorruptFile(f.path() + ": tokenizer.ggml.tokens has " + std::to_string(n) + " entries");

  v.scores.assign(n, 0.0f);
  if (f.find("tokenizer.ggml.scores")) {
    OSPREY_ASSIGN_OR_RETURN(const GgufValue* scores, f.get_array("tokenizer.ggml.scores", GgufType::kF32));
    if (static_cast<int64_t>(scores->floats.size()) != n)
      return CorruptFile(f.path() + ": tokenizer.ggml.scores has " + std::to_string(scores->floats.size()) +
                         " entries for " + std::to_string(n) + " tokens");
    for (int64_t i = 0; i < n; ++i) v.scores[i] = static_cast<float>(scores->floats[i]);
  }
  v.types.assign(n, TokenType::kNormal);
  if (f.find("tokenizer.ggml.token_type")) {
    OSPREY_ASSIGN_OR_RETURN(const GgufValue* types, f.get_array("tokenizer.ggml.token_type", GgufType::kI32));
    if (static_cast<int64_t>(types->ints.size()) != n)
      return CorruptFile(f.path() + ": tokenizer.ggml.token_type has " + std::to_string(types->ints.size()) +
                         " entries for " + std::to_string(n) + " tokens");
    for (int64_t i = 0; i < n; ++i) {
      const int64_t t = types->ints[i];
      v.types[i] = (t >= 0 && t <= 6) ? static_cast<TokenType>(t) : TokenType::kNormal;
    }
  }

  if (v.kind == VocabKind::kBpe) {
    OSPREY_ASSIGN_OR_RETURN(const GgufValue* merges, f.get_array("tokenizer.ggml.merges", GgufType::kString));
    v.merge_rank.reserve(merges->strings.size());
    for (size_t r = 0; r < merges->strings.size(); ++r) {
      const std::string& m = merges->strings[r];
      // The separator is the first space after the first character, since a
      // merge's left part may itself be a space in non-byte-level vocabularies.
      const size_t sp = m.find(' ', 1);
      if (sp == std::string::npos || sp + 1 >= m.size())
        return CorruptFile(f.path() + ": tokenizer.ggml.merges entry " + std::to_string(r) + " is malformed: '" + m + "'");
      v.merge_rank.emplace(m, static_cast<int32_t>(r));
    }
  }

  const auto nv = static_cast<int32_t>(n);
  if (v.kind == VocabKind::kSpm) {
    v.bos = 1, v.eos = 2, v.unk = 0;
    if (v.bos >= nv) v.bos = -1;
    if (v.eos >= nv) v.eos = -1;
  }
  const bool wordpiece = v.kind == VocabKind::kWordPiece;
  if (wordpiece) {
    // An input is [CLS] text [SEP]: they take the places of BOS and EOS.
    auto id_of = [&](const char* text) {
      const auto it = std::find(v.tokens.begin(), v.tokens.end(), text);
      return it == v.tokens.end() ? -1 : static_cast<int32_t>(it - v.tokens.begin());
    };
    v.bos = id_of("[CLS]"), v.eos = id_of("[SEP]"), v.unk = id_of("[UNK]"), v.pad = id_of("[PAD]");
    OSPREY_TRY(read_token_id(f, "tokenizer.ggml.cls_token_id", nv, v.bos));
    OSPREY_TRY(read_token_id(f, "tokenizer.ggml.seperator_token_id", nv, v.eos));  // llama.cpp's spelling
  }
  OSPREY_TRY(read_token_id(f, "tokenizer.ggml.bos_token_id", nv, v.bos));
  OSPREY_TRY(read_token_id(f, "tokenizer.ggml.eos_token_id", nv, v.eos));
  OSPREY_TRY(read_token_id(f, "tokenizer.ggml.unknown_token_id", nv, v.unk));
  OSPREY_TRY(read_token_id(f, "tokenizer.ggml.padding_token_id", nv, v.pad));
  OSPREY_TRY(read_token_id(f, "tokenizer.ggml.eot_token_id", nv, v.eot));
  OSPREY_ASSIGN_OR_RETURN(v.add_bos, f.get_bool("tokenizer.ggml.add_bos_token", v.kind == VocabKind::kSpm || wordpiece));
  OSPREY_ASSIGN_OR_RETURN(v.add_eos, f.get_bool("tokenizer.ggml.add_eos_token", wordpiece));
  OSPREY_ASSIGN_OR_RETURN(v.add_space_prefix,
                          f.get_bool("tokenizer.ggml.add_space_prefix", v.kind == VocabKind::kSpm));
  v.ignore_merges = v.kind == VocabKind::kBpe && pre_ignores_merges(v.pre);
  v.build_indexes();
  return v;
}

void Vocab::build_indexes() {
  const auto n = static_cast<int32_t>(tokens.size());
  token_to_id.clear();
  token_to_id.reserve(tokens.size());
  for (int32_t i = 0; i < n; ++i) token_to_id.emplace(tokens[i], i);  // first id wins
  strip.resize(tokens.size(), 0);
  end_of_generation.clear();
  for (int32_t id : {eos, eot})
    if (id >= 0) end_of_generation.push_back(id);
  for (const char* marker : {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                             "<|end_of_text|>", "<|eom_id|>", "</s>"}) {
    const int32_t id = find(marker);
    if (id >= 0 && types[id] == TokenType::kControl &&
        std::find(end_of_generation.begin(), end_of_generation.end(), id) == end_of_generation.end())
      end_of_generation.push_back(id);
  }
  special_by_length.clear();
  for (int32_t i = 0; i < n; ++i)
    if ((types[i] == TokenType::kControl || types[i] == TokenType::kUserDefined || types[i] == TokenType::kUnknown) &&
        !tokens[i].empty())
      special_by_length.push_back(i);
  std::stable_sort(special_by_length.begin(), special_by_length.end(),
                   [&](int32_t a, int32_t b) { return tokens[a].size() > tokens[b].size(); });
}

bool Vocab::is_end_of_generation(int32_t id) const {
  return std::find(end_of_generation.begin(), end_of_generation.end(), id) != end_of_generation.end();
}

}  // namespace osprey
