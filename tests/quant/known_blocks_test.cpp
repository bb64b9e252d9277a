// Dequantization of hand-built blocks against values worked out by hand from
// the format definitions.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "quant/blocks.h"
#include "quant/quant.h"

namespace osprey {
namespace {

using namespace quant;

std::vector<float> dequant(DType t, const void* block, int64_t n) {
  std::vector<float> out(n);
  quant_ops(t)->dequantize(block, out.data(), n);
  return out;
}

constexpr uint16_t kHalfOne = 0x3C00, kHalfTwo = 0x4000, kHalfHalf = 0x3800, kHalfMinusOne = 0xBC00;

TEST(KnownBlocks, Q8_0) {
  BlockQ8_0 b{};
  b.d = kHalfTwo;
  for (int j = 0; j < 32; ++j) b.qs[j] = static_cast<int8_t>(j - 16);
  const auto x = dequant(DType::kQ8_0, &b, 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(x[j], 2.0f * (j - 16)) << j;
}

// E2M1 codes: 0b0011 is +1.5, 0b1001 is -0.5, 0b0111 is +6, 0b1110 is -4;
// the exponent byte 127 is a scale of 1, 130 of 8.
TEST(KnownBlocks, MXFP4) {
  BlockMXFP4 b{};
  b.e = 127;
  b.qs[0] = 0x93;  // element 0: code 3, element 16: code 9
  b.qs[1] = 0xE7;  // element 1: code 7, element 17: code 14
  auto x = dequant(DType::kMXFP4, &b, 32);
  EXPECT_EQ(x[0], 1.5f);
  EXPECT_EQ(x[16], -0.5f);
  EXPECT_EQ(x[1], 6.0f);
  EXPECT_EQ(x[17], -4.0f);
  EXPECT_EQ(x[2], 0.0f);
  b.e = 130;
  x = dequant(DType::kMXFP4, &b, 32);
  EXPECT_EQ(x[1], 48.0f);
  EXPECT_EQ(x[17], -32.0f);
}

TEST(KnownBlocks, Q4_0) {
  BlockQ4_0 b{};
  b.d = kHalfHalf;
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  const auto x = dequant(DType::kQ4_0, &b, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(x[j], 0.5f * (j - 8));
    EXPECT_EQ(x[j + 16], 0.5f * (7 - j));
  }
}

TEST(KnownBlocks, Q4_1) {
  BlockQ4_1 b{};
  b.d = kHalfHalf;
  b.m = kHalfMinusOne;
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  const auto x = dequant(DType::kQ4_1, &b, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(x[j], 0.5f * j - 1.0f);
    EXPECT_EQ(x[j + 16], 0.5f * (15 - j) - 1.0f);
  }
}

TEST(KnownBlocks, Q5_0) {
  BlockQ5_0 b{};
  b.d = kHalfOne;
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | (j << 4));
  const uint32_t qh = 0xFFFF0000u;  // fifth bit set for elements 16..31 only
  std::memcpy(b.qh, &qh, 4);
  const auto x = dequant(DType::kQ5_0, &b, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(x[j], j - 16.0f);
    EXPECT_EQ(x[j + 16], static_cast<float>(j));
  }
}

TEST(KnownBlocks, Q5_1) {
  BlockQ5_1 b{};
  b.d = kHalfOne;
  b.m = kHalfHalf;
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | (j << 4));
  const uint32_t qh = 0xFFFF0000u;
  std::memcpy(b.qh, &qh, 4);
  const auto x = dequant(DType::kQ5_1, &b, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(x[j], j + 0.5f);
    EXPECT_EQ(x[j + 16], j + 16.5f);
  }
}

// Scales {1,2,3,4,5,40,7,8} and mins {0,1,2,3,4,5,6,50}: 40 and 50 need the
// high two bits stored in the top of bytes 1 and 7.
void fill_k_scales(uint8_t s[12]) {
  const uint8_t bytes[12] = {1, 0x82, 3, 4, 0, 1, 2, 0xC3, 0x45, 0x58, 0x67, 0x28};
  std::memcpy(s, bytes, 12);
}
const int kScale[8] = {1, 2, 3, 4, 5, 40, 7, 8};
const int kMin[8] = {0, 1, 2, 3, 4, 5, 6, 50};

TEST(KnownBlocks, Q2_K) {
  BlockQ2_K b{};
  b.d = kHalfOne;
  b.dmin = kHalfHalf;
  for (int s = 0; s < 16; ++s) b.scales[s] = static_cast<uint8_t>(s | ((15 - s) << 4));  // scale s, min 15-s
  std::memset(b.qs, 0xE4, sizeof b.qs);  // bit pairs 3,2,1,0 from the top: chunk j of each half has level j
  const auto x = dequant(DType::kQ2_K, &b, 256);
  for (int i = 0; i < 256; ++i) {
    const int s = i / 16, level = (i % 128) / 32;
    EXPECT_EQ(x[i], 1.0f * s * level - 0.5f * (15 - s)) << i;
  }
}

TEST(KnownBlocks, Q3_K) {
  BlockQ3_K b{};
  b.d = kHalfHalf;
  // Scale codes 24 + s (scale s - 8): low nibbles 8..15 then 0..7, two nibbles
  // to a byte; top bits 1 for s < 8 and 2 for s >= 8, four to a byte.
  const uint8_t scales[12] = {0x08, 0x19, 0x2A, 0x3B, 0x4C, 0x5D, 0x6E, 0x7F, 0xA5, 0xA5, 0xA5, 0xA5};
  std::memcpy(b.scales, scales, 12);
  std::memset(b.qs, 0xE4, sizeof b.qs);  // low bits j in chunk j of each half
  for (int l = 0; l < 32; ++l) b.hmask[l] = l < 16 ? 0x0F : 0xF0;  // third bit: first half for l < 16, else second
  const auto x = dequant(DType::kQ3_K, &b, 256);
  for (int i = 0; i < 256; ++i) {
    const int s = i / 16, j = (i % 128) / 32, l = i % 32;
    const bool third_bit = (i < 128) == (l < 16);
    EXPECT_EQ(x[i], 0.5f * (s - 8) * (j - (third_bit ? 0 : 4))) << i;
  }
}

TEST(KnownBlocks, Q4_K) {
  BlockQ4_K b{};
  b.d = kHalfOne;
  b.dmin = kHalfHalf;
  fill_k_scales(b.scales);
  std::memset(b.qs, 0x21, sizeof b.qs);  // low nibbles 1 (first half of each 64), high nibbles 2
  const auto x = dequant(DType::kQ4_K, &b, 256);
  for (int i = 0; i < 256; ++i) {
    const int sub = i / 32, q = (i % 64) < 32 ? 1 : 2;
    EXPECT_EQ(x[i], 1.0f * kScale[sub] * q - 0.5f * kMin[sub]) << i;
  }
}

TEST(KnownBlocks, Q5_K) {
  BlockQ5_K b{};
  b.d = kHalfOne;
  b.dmin = kHalfHalf;
  fill_k_scales(b.scales);
  std::memset(b.qs, 0x21, sizeof b.qs);
  std::memset(b.qh, 0x01, sizeof b.qh);  // bit 0: +16 for elements 0..31 only
  const auto x = dequant(DType::kQ5_K, &b, 256);
  for (int i = 0; i < 256; ++i) {
    const int sub = i / 32;
    const int q = ((i % 64) < 32 ? 1 : 2) + (i < 32 ? 16 : 0);
    EXPECT_EQ(x[i], 1.0f * kScale[sub] * q - 0.5f * kMin[sub]) << i;
  }
}

TEST(KnownBlocks, Q6_K) {
  BlockQ6_K b{};
  b.d = kHalfHalf;
  for (int s = 0; s < 16; ++s) b.scales[s] = static_cast<int8_t>(s - 8);
  std::memset(b.ql, 0x53, sizeof b.ql);  // low nibble 3, high nibble 5
  std::memset(b.qh, 0xE4, sizeof b.qh);  // bit pairs 0, 1, 2, 3
  // Within each 128 half: elements [0,32) = 3|0<<4, [32,64) = 3|1<<4,
  // [64,96) = 5|2<<4, [96,128) = 5|3<<4, each minus 32.
  const int q_by_quarter[4] = {3 - 32, 19 - 32, 37 - 32, 53 - 32};
  const auto x = dequant(DType::kQ6_K, &b, 256);
  for (int i = 0; i < 256; ++i)
    EXPECT_EQ(x[i], 0.5f * (i / 16 - 8) * q_by_quarter[(i % 128) / 32]) << i;
}

TEST(KnownBlocks, Floats) {
  const uint16_t h[2] = {kHalfTwo, kHalfMinusOne};
  EXPECT_EQ(dequant(DType::kF16, h, 2), (std::vector<float>{2.0f, -1.0f}));
  const uint16_t bf[2] = {0x3FC0, 0xC040};  // 1.5, -3.0
  EXPECT_EQ(dequant(DType::kBF16, bf, 2), (std::vector<float>{1.5f, -3.0f}));
  const float f[2] = {0.25f, 7.0f};
  EXPECT_EQ(dequant(DType::kF32, f, 2), (std::vector<float>{0.25f, 7.0f}));
}

TEST(KnownBlocks, TraitsMatchTheFileLayoutTable) {
  for (DType t : supported_dtypes()) {
    const QuantOps* ops = quant_ops(t);
    const DTypeLayout* l = dtype_layout(t);
    ASSERT_NE(l, nullptr);
    EXPECT_EQ(ops->block_len, l->block_len) << l->name;
    EXPECT_EQ(ops->block_bytes, l->block_bytes) << l->name;
    EXPECT_NE(quant_ops(ops->dot_type), nullptr) << l->name;
  }
}

}  // namespace
}  // namespace osprey
