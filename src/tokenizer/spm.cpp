// SentencePiece-style BPE (tokenizer.ggml.model = "llama"): spaces become
// U+2581, the text starts as one symbol per character, and the adjacent pair
// whose concatenation is the highest-scoring vocabulary entry merges first.
// Characters left outside the vocabulary fall back to <0xXX> byte tokens.
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
  std::string joined;
  const auto pieces = merge_symbols(text, [&](std::string_view a, std::string_view b) -> std::optional<double> {
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
}

}  // namespace osprey
