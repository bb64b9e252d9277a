#include "core/utf8.h"

namespace osprey::utf8 {

int sequence_length(uint8_t lead) {
  if (lead < 0x80) return 1;
  if (lead < 0xC0) return 0;
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  if (lead < 0xF8) return 4;
  return 0;
}

bool decode(std::string_view s, size_t pos, uint32_t& cp, size_t& consumed) {
  consumed = 1;
  const auto b0 = static_cast<uint8_t>(s[pos]);
  const int len = sequence_length(b0);
  if (len == 1) {
    cp = b0;
    return true;
  }
  if (len == 0 || pos + len > s.size()) return false;
  uint32_t c = b0 & (0xFF >> (len + 1));
  for (int i = 1; i < len; ++i) {
    const auto b = static_cast<uint8_t>(s[pos + i]);
    if ((b & 0xC0) != 0x80) return false;
    c = (c << 6) | (b & 0x3F);
  }
  // Reject overlong forms, surrogates and values past U+10FFFF.
  static const uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (c < kMin[len] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return false;
  cp = c;
  consumed = static_cast<size_t>(len);
  return true;
}

bool is_valid(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    uint32_t cp;
    size_t n;
    if (!decode(s, i, cp, n)) return false;
    i += n;
  }
  return true;
}

void append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::vector<std::string> split_chars(std::string_view s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    uint32_t cp;
    size_t n;
    decode(s, i, cp, n);
    out.emplace_back(s.substr(i, n));
    i += n;
  }
  return out;
}

size_t complete_prefix_length(std::string_view s) {
  // Only the last three bytes can belong to an unfinished sequence.
  const size_t n = s.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const auto b = static_cast<uint8_t>(s[n - back]);
    if ((b & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    const int len = sequence_length(b);
    if (len > static_cast<int>(back)) return n - back;  // lead byte waiting for more
    return n;
  }
  return n;
}

}  // namespace osprey::utf8
