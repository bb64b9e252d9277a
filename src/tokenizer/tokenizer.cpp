#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <cstdio>

#include "core/unicode_nfc.h"
#include "core/utf8.h"
#include "tokenizer/pre_tokenizer.h"

namespace osprey {

Tokenizer::~Tokenizer() = default;

Expected<std::shared_ptr<Tokenizer>> Tokenizer::from_gguf(const GgufFile& file) {
  OSPREY_ASSIGN_OR_RETURN(Vocab vocab, Vocab::from_gguf(file));
  return from_vocab(std::move(vocab), file.path());
}

Expected<std::shared_ptr<Tokenizer>> Tokenizer::from_tokenizer_json(const std::string& path) {
  OSPREY_ASSIGN_OR_RETURN(Vocab vocab, Vocab::from_tokenizer_json(path));
  return from_vocab(std::move(vocab), path);
}

Expected<std::shared_ptr<Tokenizer>> Tokenizer::from_vocab(Vocab vocab, const std::string& where) {
  std::shared_ptr<Tokenizer> t(new Tokenizer());
  t->vocab_ = std::move(vocab);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    t->byte_tokens_[b] = t->vocab_.find(name);
  }
  for (const std::string& token : t->vocab_.tokens) t->max_token_bytes_ = std::max(t->max_token_bytes_, token.size());
  if (!t->vocab_.pre_patterns.empty()) {
    auto pre = PreTokenizer::from_patterns(t->vocab_.pre_patterns, where);
    if (!pre.ok()) return pre.status();
    t->pre_ = std::move(pre).value();
  } else if (t->vocab_.kind == VocabKind::kBpe) {
    auto pre = PreTokenizer::create(t->vocab_.pre);
    if (!pre.ok()) return Unsupported(where + ": " + pre.status().message());
    t->pre_ = std::move(pre).value();
  }
  return t;
}

std::vector<int32_t> Tokenizer::encode_chat(std::string_view rendered) const {
  std::vector<int32_t> ids = encode(rendered, /*add_special=*/true, /*parse_special=*/true);
  if (ids.size() >= 2 && vocab_.bos >= 0 && ids[0] == vocab_.bos && ids[1] == vocab_.bos) ids.erase(ids.begin());
  return ids;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  std::vector<int32_t> out;
  if (add_special && vocab_.add_bos && vocab_.bos >= 0) out.push_back(vocab_.bos);
  bool after_special = true;  // SPM prefixes a space at the start and after each special token
  for (const TextFragment& f : split_special(vocab_, text, parse_special)) {
    if (f.token >= 0) {
      out.push_back(f.token);
      after_special = true;
      continue;
    }
    std::string normalized;
    std::string_view text = f.text;
    if (vocab_.nfc) {
      normalized = unicode::nfc(text);
      text = normalized;
    }
    if (vocab_.kind == VocabKind::kWordPiece) encode_wordpiece(text, out);
    else if (vocab_.spm_like()) encode_spm(text, vocab_.add_space_prefix && after_special, out);
    else encode_bpe(text, out);
    after_special = false;
  }
  if (add_special && vocab_.add_eos && vocab_.eos >= 0) out.push_back(vocab_.eos);
  return out;
}

std::string Tokenizer::token_bytes(int32_t id, bool render_special) const {
  if (id < 0 || id >= vocab_.size()) return {};
  const std::string& text = vocab_.tokens[id];
  switch (vocab_.types[id]) {
    case TokenType::kControl:
      return render_special ? text : std::string();
    case TokenType::kUnknown:
      return "\xE2\x96\x85";  // U+2585, what SentencePiece shows for <unk>
    case TokenType::kByte:
      if (vocab_.spm_like() && text.size() == 6 && text.compare(0, 3, "<0x") == 0) {
        unsigned value = 0;
        if (std::sscanf(text.c_str() + 3, "%2x", &value) == 1) return std::string(1, static_cast<char>(value));
      }
      break;
    default:
      break;
  }
  if (vocab_.spm_like() || vocab_.kind == VocabKind::kWordPiece) {
    std::string out;
    for (size_t i = 0; i < text.size();) {
      if (text.compare(i, 3, "\xE2\x96\x81") == 0) {
        out += ' ';
        i += 3;
      } else {
        out += text[i++];
      }
    }
    return out;
  }
  if (vocab_.types[id] == TokenType::kUserDefined) return text;
  // Byte-level BPE: map each code point back to its byte.
  std::string out;
  for (size_t i = 0; i < text.size();) {
    uint32_t cp;
    size_t n;
    uint8_t byte;
    if (utf8::decode(text, i, cp, n) && bpe_text_to_byte(cp, byte)) out += static_cast<char>(byte);
    else out.append(text, i, n);
    i += n;
  }
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool render_special) const {
  std::string out;
  bool first_text = true;
  for (int32_t id : ids) {
    std::string piece = token_bytes(id, render_special);
    if (piece.empty()) continue;
    if (first_text && ((vocab_.spm_like() && vocab_.add_space_prefix) || vocab_.kind == VocabKind::kWordPiece) &&
        piece[0] == ' ')
      piece.erase(0, 1);
    first_text = false;
    out += piece;
  }
  return out;
}

}  // namespace osprey
