// NFC against Python's unicodedata on every decomposable character, every
// composite's parts, Hangul and random runs of marks (tests/data/unicode,
// made by tools/unicode/gen_nfc_vectors.py); and bytes that are not UTF-8
// pass through untouched.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "core/unicode_nfc.h"
#include "core/utf8.h"
#include "test_util.h"

namespace osprey {
namespace {

std::string from_hex(const std::string& field) {
  std::istringstream in(field);
  std::string out, hex;
  while (in >> hex) utf8::append(out, static_cast<uint32_t>(std::stoul(hex, nullptr, 16)));
  return out;
}

TEST(UnicodeNfc, MatchesTheReferenceVectors) {
  std::ifstream in(std::string(OSPREY_SOURCE_DIR) + "/tests/data/unicode/nfc_vectors.txt");
  ASSERT_TRUE(in.good());
  std::string line;
  int checked = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t tab = line.find('\t');
    ASSERT_NE(tab, std::string::npos) << line;
    const std::string input = from_hex(line.substr(0, tab)), want = from_hex(line.substr(tab + 1));
    ASSERT_EQ(unicode::nfc(input), want) << line;
    ASSERT_EQ(unicode::nfc(want), want) << "NFC is idempotent: " << line;
    ++checked;
  }
  EXPECT_GT(checked, 7000);
}

TEST(UnicodeNfc, InvalidBytesPassThroughAndBlockComposition) {
  EXPECT_EQ(unicode::nfc("plain ascii"), "plain ascii");
  EXPECT_EQ(unicode::nfc("e\xCC\x81"), "\xC3\xA9");  // e + U+0301 -> U+00E9
  // A stray continuation byte between the base and its mark: kept, and the
  // mark does not reach across it.
  EXPECT_EQ(unicode::nfc("e\x80\xCC\x81"), "e\x80\xCC\x81");
  EXPECT_EQ(unicode::nfc(std::string("\xCC\xFF\x00x", 4)), std::string("\xCC\xFF\x00x", 4));
}

}  // namespace
}  // namespace osprey
