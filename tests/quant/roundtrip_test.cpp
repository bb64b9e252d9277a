// Quantize -> dequantize error stays within what each format's step size
// allows, and each reference dot product equals the float dot product of the
// dequantized operands up to float rounding.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "quant/quant.h"
#include "test_util.h"

namespace osprey {
namespace {

struct Bound {
  DType type;
  double max_rel_rms;  // RMS error / RMS value on Gaussian data
};

// Expected error: step / sqrt(12), with step = (block range) / (levels - 1).
// For 32 Gaussian values the absolute maximum is about 2.2 sigma and the
// range about 4.4 sigma. Bounds leave ~25% headroom above those figures.
const Bound kBounds[] = {
    {DType::kF16, 1e-3},  {DType::kBF16, 5e-3}, {DType::kQ8_0, 8e-3}, {DType::kQ6_K, 3e-2},
    {DType::kQ5_0, 5e-2}, {DType::kQ5_1, 5e-2}, {DType::kQ5_K, 5e-2}, {DType::kQ4_0, 0.1},
    {DType::kQ4_1, 0.1},  {DType::kQ4_K, 0.1},  {DType::kQ3_K, 0.18}, {DType::kQ2_K, 0.34},
    {DType::kMXFP4, 0.16},  // E2M1 steps are 1/8 to 1/4 of the block maximum, and the scale a power of two
};

class QuantRoundTrip : public ::testing::TestWithParam<Bound> {};

TEST_P(QuantRoundTrip, ErrorWithinFormatPrecision) {
  const Bound b = GetParam();
  const QuantOps* ops = quant_ops(b.type);
  for (float scale : {1e-3f, 1.0f, 300.0f}) {
    const int64_t n = 4096;
    const auto x = test::random_floats(n, 7, scale);
    std::vector<uint8_t> q(quant_row_bytes(*ops, n));
    ops->quantize(x.data(), q.data(), n);
    std::vector<float> y(n);
    ops->dequantize(q.data(), y.data(), n);
    double err = 0, ref = 0;
    for (int64_t i = 0; i < n; ++i) {
      err += (x[i] - y[i]) * static_cast<double>(x[i] - y[i]);
      ref += static_cast<double>(x[i]) * x[i];
    }
    const double rel = std::sqrt(err / ref);
    EXPECT_LT(rel, b.max_rel_rms) << dtype_name(b.type) << " at scale " << scale;
    EXPECT_GT(rel, 0.0) << "a lossy format reproduced random data exactly: suspicious";
  }
}

TEST_P(QuantRoundTrip, ZerosAndConstantsSurvive) {
  const QuantOps* ops = quant_ops(GetParam().type);
  const int64_t n = 256;
  std::vector<uint8_t> q(quant_row_bytes(*ops, n));
  std::vector<float> y(n);
  std::vector<float> zeros(n, 0.0f);
  ops->quantize(zeros.data(), q.data(), n);
  ops->dequantize(q.data(), y.data(), n);
  for (float v : y) EXPECT_EQ(v, 0.0f);
  std::vector<float> ones(n, -1.0f);
  ops->quantize(ones.data(), q.data(), n);
  ops->dequantize(q.data(), y.data(), n);
  for (float v : y) EXPECT_NEAR(v, -1.0f, 0.02f);
}

TEST_P(QuantRoundTrip, ReferenceDotMatchesDequantizedDot) {
  const QuantOps* ops = quant_ops(GetParam().type);
  const QuantOps* act = quant_ops(ops->dot_type);
  for (int64_t n : {256, 512, 2816}) {
    const auto w = test::random_floats(n, 11);
    const auto a = test::random_floats(n, 12);
    std::vector<uint8_t> qw(quant_row_bytes(*ops, n)), qa(quant_row_bytes(*act, n));
    ops->quantize(w.data(), qw.data(), n);
    act->quantize(a.data(), qa.data(), n);
    std::vector<float> dw(n), da(n);
    ops->dequantize(qw.data(), dw.data(), n);
    act->dequantize(qa.data(), da.data(), n);
    double expect = 0, mag = 0;
    for (int64_t i = 0; i < n; ++i) {
      expect += static_cast<double>(dw[i]) * da[i];
      mag += std::fabs(static_cast<double>(dw[i]) * da[i]);
    }
    const float got = ops->dot(qw.data(), qa.data(), n);
    // Integer sums are exact; only the per-block float scaling rounds, about
    // 1e-6 relative per block. Formats with an offset (q4_1, q5_1) also use
    // the activation block sum, stored as fp16 (2^-11 relative).
    const double tol = ops->dot_type == DType::kQ8_1 ? 1e-3 : 1e-5;
    EXPECT_NEAR(got, expect, tol * mag) << dtype_name(ops->type) << " n=" << n;
  }
}

INSTANTIATE_TEST_SUITE_P(AllFormats, QuantRoundTrip, ::testing::ValuesIn(kBounds),
                         [](const auto& info) { return std::string(dtype_name(info.param.type)); });

}  // namespace
}  // namespace osprey

namespace osprey {
namespace {

// With an importance matrix's column weights, each k-quant lowers the error
// that the weights measure (what the model's output feels), and weights of
// zero everywhere (columns no text reached) change nothing.
TEST(QuantWeighted, KQuantsLowerTheWeightedError) {
  const int64_t n = 4096;
  const auto x = test::random_floats(n, 11, 1.0f);
  // Input columns of very different sizes, as real activations have: a few
  // outlier channels hundreds of times the rest.
  const auto r = test::random_floats(n, 12, 1.0f);
  std::vector<float> w(n);
  for (int64_t i = 0; i < n; ++i) w[i] = std::exp(3.0f * r[i]);
  for (DType type : {DType::kQ2_K, DType::kQ3_K, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K}) {
    SCOPED_TRACE(dtype_name(type));
    const QuantOps* ops = quant_ops(type);
    ASSERT_NE(ops->quantize_weighted, nullptr);
    auto weighted_error = [&](const std::vector<uint8_t>& q) {
      std::vector<float> y(n);
      ops->dequantize(q.data(), y.data(), n);
      double e = 0;
      for (int64_t i = 0; i < n; ++i) e += w[i] * double(y[i] - x[i]) * (y[i] - x[i]);
      return e;
    };
    std::vector<uint8_t> plain(quant_row_bytes(*ops, n)), weighted(plain.size()), zero_weighted(plain.size());
    ops->quantize(x.data(), plain.data(), n);
    ops->quantize_weighted(x.data(), weighted.data(), n, w.data());
    EXPECT_LT(weighted_error(weighted), 0.9 * weighted_error(plain));
    const std::vector<float> zeros(n, 0.0f);
    ops->quantize_weighted(x.data(), zero_weighted.data(), n, zeros.data());
    EXPECT_EQ(zero_weighted, plain);
  }
}

}  // namespace
}  // namespace osprey
