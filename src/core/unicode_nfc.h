// Unicode Normalization Form C: canonical decomposition, then canonical
// ordering of combining marks, then canonical composition, so that "e" +
// U+0301 and U+00E9 become the same text. Hugging Face tokenizers apply it
// before splitting (Qwen's tokenizer.json says "NFC"); without it the two
// spellings of one word would tokenize differently.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace osprey::unicode {

// `text` in NFC. Bytes that are not valid UTF-8 pass through unchanged (and
// nothing composes across them). Text with no code point at or above U+0300
// is returned as it is, without further work.
std::string nfc(std::string_view text);

// The code points of `text` in NFD (decomposed, marks in canonical order),
// as WordPiece tokenizers read it. Bytes that are not valid UTF-8 become
// U+FFFD, one each.
std::vector<uint32_t> nfd_code_points(std::string_view text);

}  // namespace osprey::unicode
