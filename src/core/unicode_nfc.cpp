#include "core/unicode_nfc.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/utf8.h"

namespace osprey::unicode {

namespace {

struct CombiningRun {
  uint32_t first, last;
  uint8_t ccc;
};
struct Decomposition {
  uint32_t cp, a, b;  // b == 0: a singleton
};
struct Composition {
  uint32_t a, b, composite;
};

#include "core/unicode_nfc_tables.inc"

// Hangul syllables decompose and compose by arithmetic (Unicode ch. 3.12).
constexpr uint32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr uint32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

// Bytes that are not UTF-8 travel as this tag plus the byte.
constexpr uint32_t kRawByte = 0x80000000u;

uint8_t combining_class(uint32_t cp) {
  if (cp < 0x300 || (cp & kRawByte)) return 0;
  const auto* end = std::end(kCombiningRuns);
  const auto* it = std::upper_bound(std::begin(kCombiningRuns), end, cp,
                                    [](uint32_t c, const CombiningRun& r) { return c < r.first; });
  if (it == std::begin(kCombiningRuns)) return 0;
  --it;
  return cp <= it->last ? it->ccc : 0;
}

void decompose(uint32_t cp, std::vector<uint32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const uint32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  const auto* end = std::end(kDecompositions);
  const auto* it = std::lower_bound(std::begin(kDecompositions), end, cp,
                                    [](const Decomposition& d, uint32_t c) { return d.cp < c; });
  if (it == end || it->cp != cp) {
    out.push_back(cp);
    return;
  }
  decompose(it->a, out);
  if (it->b != 0) decompose(it->b, out);
}

// The primary composite of a + b, or 0.
uint32_t compose(uint32_t a, uint32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount)
    return a + (b - kTBase);
  const auto* end = std::end(kCompositions);
  const auto* it = std::lower_bound(std::begin(kCompositions), end, std::pair{a, b},
                                    [](const Composition& c, const std::pair<uint32_t, uint32_t>& k) {
                                      return c.a != k.first ? c.a < k.first : c.b < k.second;
                                    });
  return it != end && it->a == a && it->b == b ? it->composite : 0;
}

// Canonical decomposition in canonical order; bytes that are not UTF-8
// travel as kRawByte | byte.
std::vector<uint32_t> decomposed(std::string_view text) {
  std::vector<uint32_t> cps;
  cps.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    uint32_t cp;
    size_t n;
    if (utf8::decode(text, i, cp, n)) {
      decompose(cp, cps);
    } else {
      n = 1;
      cps.push_back(kRawByte | static_cast<unsigned char>(text[i]));
    }
    i += n;
  }
  // Canonical order: each run of marks sorted by class, stably.
  for (size_t i = 0; i < cps.size();) {
    if (combining_class(cps[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < cps.size() && combining_class(cps[j]) != 0) ++j;
    std::stable_sort(cps.begin() + static_cast<std::ptrdiff_t>(i), cps.begin() + static_cast<std::ptrdiff_t>(j),
                     [](uint32_t a, uint32_t b) { return combining_class(a) < combining_class(b); });
    i = j;
  }
  return cps;
}

}  // namespace

std::vector<uint32_t> nfd_code_points(std::string_view text) {
  std::vector<uint32_t> cps = decomposed(text);
  for (uint32_t& cp : cps)
    if (cp & kRawByte) cp = 0xFFFD;
  return cps;
}

std::string nfc(std::string_view text) {
  // Every code point that decomposes, combines or composes is U+0300 or
  // above, whose UTF-8 lead byte is 0xCC or more.
  if (std::none_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) >= 0xCC; }))
    return std::string(text);
  std::vector<uint32_t> cps = decomposed(text);
  // Composition: a character joins the last starter unless something between
  // them is a starter or has a class at least its own (it is "blocked").
  std::vector<uint32_t> out;
  out.reserve(cps.size());
  ptrdiff_t starter = -1;
  for (uint32_t cp : cps) {
    const uint8_t cc = combining_class(cp);
    if (starter >= 0 && !(cp & kRawByte)) {
      const bool adjacent = static_cast<size_t>(starter) + 1 == out.size();
      const uint8_t prev = adjacent ? 0 : combining_class(out.back());
      if (adjacent || (prev != 0 && prev < cc)) {
        if (const uint32_t c = compose(out[static_cast<size_t>(starter)], cp); c != 0) {
          out[static_cast<size_t>(starter)] = c;
          continue;
        }
      }
    }
    out.push_back(cp);
    if (cp & kRawByte) starter = -1;
    else if (cc == 0) starter = static_cast<ptrdiff_t>(out.size()) - 1;
  }
  std::string s;
  s.reserve(text.size());
  for (uint32_t cp : out) {
    if (cp & kRawByte) s += static_cast<char>(cp & 0xFF);
    else utf8::append(s, cp);
  }
  return s;
}

}  // namespace osprey::unicode
