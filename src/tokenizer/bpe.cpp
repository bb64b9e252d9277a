// Byte-level BPE (tokenizer.ggml.model = "gpt2"): text is split into words by
// the pre-tokenizer, each word's bytes are mapped to printable code points,
// and adjacent symbols merge in the order of the merge list.
#include "core/utf8.h"
#include "tokenizer/symbol_merge.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace osprey {

namespace {

// GPT-2 keeps printable Latin-1 bytes as themselves and moves the other 68
// bytes to U+0100 onwards, so that every byte is a visible character.
struct ByteMap {
  std::string text[256];
  int16_t from_cp[324];  // code point -> byte, -1 where unused
  ByteMap() {
    for (auto& b : from_cp) b = -1;
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      const uint32_t cp = printable ? static_cast<uint32_t>(b) : 256u + extra++;
      utf8::append(text[b], cp);
      from_cp[cp] = static_cast<int16_t>(b);
    }
  }
};

const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}

}  // namespace

const std::string& bpe_byte_to_text(uint8_t byte) { return byte_map().text[byte]; }

bool bpe_text_to_byte(uint32_t cp, uint8_t& byte) {
  if (cp >= 324 || byte_map().from_cp[cp] < 0) return false;
  byte = static_cast<uint8_t>(byte_map().from_cp[cp]);
  return true;
}

void Tokenizer::bpe_word(const std::string& word, std::vector<int32_t>& out) const {
  if (vocab_.ignore_merges) {
    const int32_t id = vocab_.find(word);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  std::string key;
  const auto pieces = merge_symbols(word, [&](std::string_view a, std::string_view b) -> std::optional<double> {
    key.assign(a);
    key += ' ';
    key += b;
    auto it = vocab_.merge_rank.find(key);
    if (it == vocab_.merge_rank.end()) return std::nullopt;
    return it->second;  // earlier merges first
  });
  for (std::string_view view : pieces) {
    const std::string piece(view);
    const int32_t id = vocab_.find(piece);
    if (id >= 0) {
      out.push_back(id);
      continue;
    }
    // A symbol the vocabulary lacks: emit its characters one by one.
    for (const std::string& ch : utf8::split_chars(piece)) {
      const int32_t c = vocab_.find(ch);
      if (c >= 0) out.push_back(c);
      else if (vocab_.unk >= 0) out.push_back(vocab_.unk);
    }
  }
}

void Tokenizer::encode_bpe(std::string_view text, std::vector<int32_t>& out) const {
  std::string word;
  for (std::string_view piece : pre_->split(text)) {
    word.clear();
    for (unsigned char c : piece) word += bpe_byte_to_text(c);
    bpe_word(word, out);
  }
}

}  // namespace osprey
