#include "tokenizer/tokenizer.h"

namespace osprey {

namespace {
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
}  // namespace

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
      const uint8_t strip = static_cast<size_t>(id) < vocab.strip.size() ? vocab.strip[static_cast<size_t>(id)] : 0;
      for (size_t at; (at = rest.find(tok)) != std::string_view::npos;) {
        std::string_view before = rest.substr(0, at);
        // lstrip / rstrip: the token takes the whitespace beside it.
        if (strip & 1)
          while (!before.empty() && is_space(before.back())) before.remove_suffix(1);
        if (!before.empty()) next.push_back({before, -1});
        next.push_back({{}, id});
        rest = rest.substr(at + tok.size());
        if (strip & 2)
          while (!rest.empty() && is_space(rest.front())) rest.remove_prefix(1);
      }
      if (!rest.empty()) next.push_back({rest, -1});
    }
    frags.swap(next);
  }
  return frags;
}

}  // namespace osprey
