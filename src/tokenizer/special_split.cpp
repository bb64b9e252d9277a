#include "tokenizer/tokenizer.h"

namespace osprey {

std::vector<TextFragment> split_special(const Vocab& vocab, std::string_view text, bool parse_special) {
  std::vector<TextFragment> frags;
  if (!text.empty()) frags.push_back({text, -1});
  // Longest tokens first, so "<|im_end|>" wins over a shorter token it contains.
  for (int32_t id : vocab.special_by_length) {
    const TokenType type = vocab.types[id];
    if (!parse_special && type != TokenType::kUserDefined) continue;
    const std::string& tok = vocab.tokens[id];
    std::vector<TextFragment> next;
    next.reserve(frags.size());
    for (const TextFragment& f : frags) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      std::string_view rest = f.text;
      for (size_t at; (at = rest.find(tok)) != std::string_view::npos;) {
        if (at > 0) next.push_back({rest.substr(0, at), -1});
        next.push_back({{}, id});
        rest = rest.substr(at + tok.size());
      }
      if (!rest.empty()) next.push_back({rest, -1});
    }
    frags.swap(next);
  }
  return frags;
}

}  // namespace osprey
