// A corpus of deliberately broken GGUF files. Each must be rejected with a
// message naming the problem; none may crash, over-read or allocate wildly
// (this suite also runs under AddressSanitizer and UBSan).
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "formats/gguf.h"

namespace osprey {
namespace {

// Builds GGUF bytes field by field, so tests can write values no valid writer would.
struct Bytes {
  std::vector<uint8_t> b;
  Bytes& u8(uint8_t v) { return raw(&v, 1); }
  Bytes& u32(uint32_t v) { return raw(&v, 4); }
  Bytes& u64(uint64_t v) { return raw(&v, 8); }
  Bytes& f32(float v) { return raw(&v, 4); }
  Bytes& str(const std::string& s) {
    u64(s.size());
    return raw(s.data(), s.size());
  }
  Bytes& raw(const void* p, size_t n) {
    const auto* c = static_cast<const uint8_t*>(p);
    b.insert(b.end(), c, c + n);
    return *this;
  }
  Bytes& pad(size_t align) {
    while (b.size() % align) b.push_back(0);
    return *this;
  }
  Bytes& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    return u32(0x46554747).u32(version).u64(n_tensors).u64(n_kv);
  }
  // One tensor info: name, dims, type, offset.
  Bytes& tensor(const std::string& name, std::vector<uint64_t> dims, uint32_t type, uint64_t offset) {
    str(name).u32(static_cast<uint32_t>(dims.size()));
    for (uint64_t d : dims) u64(d);
    return u32(type).u64(offset);
  }
};

std::string parse_error(const std::vector<uint8_t>& bytes) {
  auto f = GgufFile::parse(bytes.data(), bytes.size(), "bad.gguf");
  return f.ok() ? std::string() : f.status().message();
}

void expect_error(const Bytes& bytes, const std::string& needle) {
  const std::string msg = parse_error(bytes.b);
  ASSERT_FALSE(msg.empty()) << "accepted a broken file; expected: " << needle;
  EXPECT_NE(msg.find("bad.gguf"), std::string::npos) << msg;
  EXPECT_NE(msg.find(needle), std::string::npos) << "message was: " << msg;
}

// A valid file with one f32 tensor [4] and one key.
Bytes valid_file() {
  Bytes x;
  x.header(1, 1).str("general.architecture").u32(8).str("llama");
  x.tensor("w", {4}, 0, 0).pad(32);
  for (int i = 0; i < 4; ++i) x.f32(static_cast<float>(i));
  return x;
}

TEST(GgufCorrupt, ValidBaseParses) { EXPECT_EQ(parse_error(valid_file().b), ""); }

TEST(GgufCorrupt, EmptyAndBadMagic) {
  expect_error(Bytes{}, "truncated");
  Bytes x;
  x.u32(0x12345678).u32(3).u64(0).u64(0);
  expect_error(x, "bad magic");
}

TEST(GgufCorrupt, EveryTruncationIsRejected) {
  const std::vector<uint8_t> full = valid_file().b;
  for (size_t n = 0; n < full.size(); ++n) {
    std::vector<uint8_t> cut(full.begin(), full.begin() + n);
    EXPECT_FALSE(parse_error(cut).empty()) << "truncated to " << n << " bytes was accepted";
  }
}

TEST(GgufCorrupt, Versions) {
  Bytes v1;
  v1.header(0, 0, 1);
  EXPECT_NE(parse_error(v1.b).find("version 1"), std::string::npos);
  Bytes v9;
  v9.header(0, 0, 9);
  expect_error(v9, "unsupported GGUF version 9");
}

TEST(GgufCorrupt, ImplausibleCounts) {
  Bytes t;
  t.header(1ull << 40, 0);
  expect_error(t, "tensor count");
  Bytes k;
  k.header(0, 1ull << 40);
  expect_error(k, "metadata count");
}

TEST(GgufCorrupt, StringLengthPastEnd) {
  // Padding keeps the file large enough that the metadata count itself is plausible.
  const std::vector<uint8_t> padding(64, 'x');
  Bytes x;
  x.header(0, 1).u64(1ull << 62).raw(padding.data(), padding.size());
  expect_error(x, "exceeds the limit");
  Bytes y;
  y.header(0, 1).u64(100).raw(padding.data(), padding.size());
  expect_error(y, "runs past the end");
}

TEST(GgufCorrupt, ArrayCountPastEnd) {
  Bytes x;
  x.header(0, 1).str("k").u32(9).u32(6).u64(1ull << 50);
  expect_error(x, "cannot fit");
}

TEST(GgufCorrupt, UnknownTypes) {
  Bytes x;
  x.header(0, 1).str("k").u32(77);
  expect_error(x, "unknown type 77");
  Bytes y;
  y.header(0, 1).str("k").u32(9).u32(55).u64(0);
  expect_error(y, "unknown array element type 55");
  Bytes z;
  z.header(1, 0).tensor("w", {4}, 250, 0);
  expect_error(z, "unknown tensor type 250");
}

TEST(GgufCorrupt, BadKeys) {
  Bytes dup;
  dup.header(0, 2).str("a").u32(4).u32(1).str("a").u32(4).u32(2);
  expect_error(dup, "duplicate metadata key 'a'");
  Bytes bad;
  bad.header(0, 1).str("bad\xFF" "key").u32(4).u32(1);
  expect_error(bad, "not valid UTF-8");
  Bytes empty;
  empty.header(0, 1).str("").u32(4).u32(1);
  expect_error(empty, "is empty");
}

TEST(GgufCorrupt, BadBool) {
  Bytes x;
  x.header(0, 1).str("b").u32(7).u8(2);
  expect_error(x, "bool value 2");
}

TEST(GgufCorrupt, DeepNesting) {
  Bytes x;
  x.header(0, 1).str("n").u32(9);
  for (int i = 0; i < 10; ++i) x.u32(9).u64(1);
  expect_error(x, "nested too deeply");
}

TEST(GgufCorrupt, TensorShapes) {
  Bytes zero_dims;
  zero_dims.header(1, 0).tensor("w", {}, 0, 0);
  expect_error(zero_dims, "dimension count 0");
  Bytes five;
  five.header(1, 0).tensor("w", {1, 1, 1, 1, 1}, 0, 0);
  expect_error(five, "dimension count 5");
  Bytes zero;
  zero.header(1, 0).tensor("w", {4, 0}, 0, 0);
  expect_error(zero, "out of range");
  Bytes huge;
  huge.header(1, 0).tensor("w", {1ull << 40, 1ull << 40}, 0, 0);
  expect_error(huge, "overflows");
  Bytes block;
  block.header(1, 0).tensor("w", {33}, 2, 0);  // q4_0 rows must be multiples of 32
  expect_error(block, "not a multiple of the q4_0 block length");
  Bytes dup;
  dup.header(2, 0).tensor("w", {4}, 0, 0).tensor("w", {4}, 0, 32).pad(32);
  dup.raw(std::vector<uint8_t>(64).data(), 64);
  expect_error(dup, "duplicate tensor name 'w'");
}

TEST(GgufCorrupt, TensorOffsets) {
  Bytes past;
  past.header(1, 0).tensor("w", {4}, 0, 1024).pad(32);
  past.raw(std::vector<uint8_t>(16).data(), 16);
  expect_error(past, "runs past the end");
  Bytes misaligned;
  misaligned.header(1, 0).tensor("w", {4}, 0, 3).pad(32);
  misaligned.raw(std::vector<uint8_t>(64).data(), 64);
  expect_error(misaligned, "not a multiple of the alignment");
  Bytes overlap;
  overlap.header(2, 0).tensor("a", {16}, 0, 0).tensor("b", {16}, 0, 32).pad(32);
  overlap.raw(std::vector<uint8_t>(128).data(), 128);
  expect_error(overlap, "overlap");
  Bytes wrap;
  wrap.header(1, 0).tensor("w", {4}, 0, ~0ull - 31).pad(32);
  wrap.raw(std::vector<uint8_t>(16).data(), 16);
  expect_error(wrap, "runs past the end");
}

TEST(GgufCorrupt, BadAlignment) {
  Bytes x;
  x.header(0, 1).str("general.alignment").u32(4).u32(48);
  expect_error(x, "power of two");
  Bytes y;
  y.header(0, 1).str("general.alignment").u32(4).u32(0);
  expect_error(y, "power of two");
}

TEST(GgufCorrupt, BadTensorName) {
  Bytes x;
  x.header(1, 0).str("w\xC3").u32(1).u64(4).u32(0).u64(0);
  expect_error(x, "not valid UTF-8");
  Bytes y;
  y.header(1, 0).str(std::string(300, 'a'));
  expect_error(y, "exceeds the limit");
}

// Random byte flips of a valid file: every outcome is either a clean parse or
// an error, never a crash (the sanitizer build checks the "never").
TEST(GgufCorrupt, RandomMutationsNeverCrash) {
  const std::vector<uint8_t> base = valid_file().b;
  std::mt19937_64 rng(1234);
  int rejected = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::vector<uint8_t> m = base;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) m[rng() % m.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
    if (!parse_error(m).empty()) ++rejected;
  }
  EXPECT_GT(rejected, 1000);  // the corruption check is actually exercised
}

TEST(GgufCorrupt, MissingFileNamesThePath) {
  auto f = GgufFile::open("/nonexistent/dir/model.gguf");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("/nonexistent/dir/model.gguf"), std::string::npos);
}

}  // namespace
}  // namespace osprey

namespace osprey {
namespace {

// GGUF v2 has the v3 layout (64-bit counts); both must read.
TEST(GgufVersions, Version2Parses) {
  Bytes x;
  x.header(1, 1, 2).str("general.architecture").u32(8).str("llama");
  x.tensor("w", {4}, 0, 0).pad(32);
  for (int i = 0; i < 4; ++i) x.f32(1.0f);
  auto f = GgufFile::parse(x.b.data(), x.b.size(), "v2.gguf");
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->version(), 2u);
  EXPECT_EQ(f->tensors().size(), 1u);
}

}  // namespace
}  // namespace osprey
