// WordPiece, as BERT-style encoders tokenize, in the form GGUF files carry it
// (tokenizer.ggml.model "bert"): the converter stores a word's first piece
// with a leading U+2581 and a continuation piece ("##ing") bare, so a word is
// matched as "\u2581word", longest vocabulary entry first, left to right.
// Before that the text is decomposed (NFD), lowercased and stripped of
// accents (nonspacing marks), as uncased BERT's normalizer does; white space
// ends a word, each punctuation mark, ASCII symbol and CJK ideograph is a
// word of its own, and control characters are dropped. A word with a
// character no entry covers becomes the unknown token as a whole.
// llama.cpp reads these files the same way except that it keeps the accents,
// which turns words such as "café" or "русский" into the unknown token; the
// uncased vocabularies these files carry (MiniLM, BGE, E5) were trained
// without them, so osprey follows Hugging Face there.
#include <algorithm>
#include <iterator>

#include "core/unicode_nfc.h"
#include "core/utf8.h"
#include "tokenizer/tokenizer.h"

namespace osprey {

namespace {

struct CharRun {
  uint32_t first, last;
  uint8_t flags;
};
struct LowerPair {
  uint32_t cp, lower;
};
constexpr uint8_t kWhitespace = 1, kPunctuation = 2, kSymbol = 4, kControl = 8, kAccent = 16;

#include "tokenizer/wordpiece_tables.inc"

uint8_t char_flags(uint32_t cp) {
  const auto* end = std::end(kCharRuns);
  const auto* it = std::upper_bound(std::begin(kCharRuns), end, cp,
                                    [](uint32_t c, const CharRun& r) { return c < r.first; });
  if (it == std::begin(kCharRuns)) return 0;
  --it;
  return cp <= it->last ? it->flags : 0;
}

uint32_t to_lower(uint32_t cp) {
  const auto* end = std::end(kLowercase);
  const auto* it = std::lower_bound(std::begin(kLowercase), end, cp,
                                    [](const LowerPair& p, uint32_t c) { return p.cp < c; });
  return it != end && it->cp == cp ? it->lower : cp;
}

// The CJK Unified Ideographs blocks BERT splits one by one.
bool is_cjk(uint32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
         (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

// The words of `text`, each already lowercased and prefixed with U+2581.
std::vector<std::string> wordpiece_words(std::string_view text) {
  static const std::string kWordStart = "\xE2\x96\x81";
  std::vector<std::string> words;
  std::string word;
  auto finish = [&] {
    if (!word.empty()) words.push_back(kWordStart + word);
    word.clear();
  };
  for (const uint32_t cp : unicode::nfd_code_points(text)) {
    const uint8_t f = char_flags(cp);
    if (f & kWhitespace) {
      finish();
      continue;
    }
    // Accents go with the case: "Café" and "cafe" are one word to an uncased model.
    if (cp == 0 || cp == 0xFFFD || (f & (kControl | kAccent))) continue;
    if ((f & kPunctuation) || (cp < 0x7F && (f & kSymbol)) || is_cjk(cp)) {
      finish();
      utf8::append(word, to_lower(cp));
      finish();
      continue;
    }
    utf8::append(word, to_lower(cp));
  }
  finish();
  return words;
}

}  // namespace

void Tokenizer::encode_wordpiece(std::string_view text, std::vector<int32_t>& out) const {
  for (const std::string& word : wordpiece_words(text)) {
    const size_t start = out.size();
    bool matched = true;
    for (size_t i = 0; i < word.size() && matched;) {
      // The longest entry that starts here; lengths end on character boundaries.
      matched = false;
      for (size_t len = std::min(word.size() - i, max_token_bytes_); len > 0; --len) {
        if (i + len < word.size() && utf8::sequence_length(static_cast<uint8_t>(word[i + len])) == 0) continue;
        const int32_t id = vocab_.find(word.substr(i, len));
        if (id >= 0) {
          out.push_back(id);
          i += len;
          matched = true;
          break;
        }
      }
    }
    if (!matched) out.resize(start);
    if (out.size() == start && vocab_.unk >= 0) out.push_back(vocab_.unk);
  }
}

}  // namespace osprey
