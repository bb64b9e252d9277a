#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "core/fp16.h"

namespace osprey {
namespace {

TEST(Fp16, EveryHalfRoundTripsThroughFloat) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = fp16_to_fp32_slow(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    EXPECT_EQ(fp32_to_fp16(f), h) << "half bits " << h;
    EXPECT_EQ(fp16_to_fp32(static_cast<uint16_t>(h)), f);
  }
}

TEST(Fp16, KnownValues) {
  EXPECT_EQ(fp16_to_fp32_slow(0x3C00), 1.0f);
  EXPECT_EQ(fp16_to_fp32_slow(0xC000), -2.0f);
  EXPECT_EQ(fp16_to_fp32_slow(0x7BFF), 65504.0f);
  EXPECT_EQ(fp16_to_fp32_slow(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_TRUE(std::isinf(fp16_to_fp32_slow(0x7C00)));
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7C00);  // rounds up to infinity
  EXPECT_EQ(fp32_to_fp16(1e-9f), 0x0000);
  EXPECT_EQ(fp32_to_fp16(std::nanf("")) & 0x7C00, 0x7C00);
}

TEST(Fp16, RoundsToNearestEven) {
  // 1 + 2^-11 lies exactly between 1 and the next half (1 + 2^-10): ties go to even (1).
  EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);
  // 1 + 3*2^-11 lies between 1+2^-10 (odd mantissa) and 1+2^-9: ties go to 1+2^-9.
  EXPECT_EQ(fp32_to_fp16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);
}

TEST(Bf16, RoundTripAndRounding) {
  EXPECT_EQ(bf16_to_fp32(fp32_to_bf16(1.5f)), 1.5f);
  EXPECT_EQ(bf16_to_fp32(fp32_to_bf16(-3.0f)), -3.0f);
  // 1 + 2^-8 is a tie between 1 and 1 + 2^-7: even wins.
  EXPECT_EQ(bf16_to_fp32(fp32_to_bf16(1.0f + std::ldexp(1.0f, -8))), 1.0f);
  EXPECT_TRUE(std::isnan(bf16_to_fp32(fp32_to_bf16(std::nanf("")))));
}

}  // namespace
}  // namespace osprey
