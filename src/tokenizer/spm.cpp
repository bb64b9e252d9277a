// SentencePiece-style BPE (tokenizer.ggml.model = "llama"): spaces become
// U+2581, the text starts as one symbol per character, and the adjacent pair
// whose concatenation is the highest-scoring vocabulary entry merges first.
// A tokenizer.json with byte fallback (kCharBpe) merges the same symbols in
// the order of its merge rules instead. Characters left outside the
// vocabulary fall back to <0xXX> byte tokens.
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/symbol_merge.h"
#include "tokenizer/tokenizer.h"

namespace osprey {

namespace {
const char kSpace[] = "\xE2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK
}  // namespace

void Tokenizer::encode_spm(std::string_view raw, bool prefix_space, std::vector<int32_t>& out) const {
  std::string text;
  text.reserve(raw.size() * 3 / 2 + 4);
  if (prefix_space) text += kSpace;
  for (char c : raw) {
    if (c == ' ') text += kSpace;
    else text += c;
  }
  auto merge_word = [&](std::string_view word) {
    if (vocab_.ignore_merges) {
      const int32_t id = vocab_.find(std::string(word));
      if (id >= 0) {
        out.push_back(id);
        return;
      }
    }
    std::string joined;
    const auto pieces = merge_symbols(word, [&](std::string_view a, std::string_view b) -> std::optional<double> {
      if (vocab_.kind == VocabKind::kCharBpe) {  // Hugging Face BPE: the earliest merge rule first
        joined.assign(a);
        joined += ' ';
        joined += b;
        const auto it = vocab_.merge_rank.find(joined);
        if (it == vocab_.merge_rank.end()) return std::nullopt;
        return it->second;
      }
      joined.assign(a);
      joined += b;
      const int32_t id = vocab_.find(joined);
      if (id < 0) return std::nullopt;
      return -static_cast<double>(vocab_.scores[id]);  // highest score merges first
    });
    for (std::string_view piece : pieces) {
      const int32_t id = vocab_.find(std::string(piece));
      if (id >= 0) {
        out.push_back(id);
        continue;
      }
      for (unsigned char byte : piece) {
        const int32_t b = byte_tokens_[byte];
        if (b >= 0) out.push_back(b);
        else if (vocab_.unk >= 0) out.push_back(vocab_.unk);
      }
    }
  };
  // A tokenizer.json may split the text into words first (Metaspace with split).
  if (pre_ != nullptr) {
    for (std::string_view word : pre_->split(text)) merge_word(word);
  } else {
    merge_word(text);
  }
}

}  // namespace osprey
