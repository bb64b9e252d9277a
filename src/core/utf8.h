// UTF-8 helpers shared by the tokenizer, the detokenizer and the parsers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace osprey::utf8 {

// Length of the sequence announced by a lead byte: 1-4, or 0 for a byte that
// cannot start a sequence (continuation byte or 0xF8..0xFF).
int sequence_length(uint8_t lead);

// Decodes one code point at s[pos]. On malformed input returns false and sets
// `consumed` to 1 so callers can resynchronise byte by byte.
bool decode(std::string_view s, size_t pos, uint32_t& cp, size_t& consumed);

bool is_valid(std::string_view s);

void append(std::string& out, uint32_t cp);

// Splits text into code-point substrings; malformed bytes become one piece each.
std::vector<std::string> split_chars(std::string_view s);

// Length of the longest prefix of `s` that does not end in the middle of a
// sequence which could still be completed by more bytes.
size_t complete_prefix_length(std::string_view s);

}  // namespace osprey::utf8
