// The encoders are as accurate as llama.cpp's quantizer: on Gaussian weights
// (what osprey synth makes) each type's relative RMS error stays within 2% of
// what ik_llama.cpp's llama-quantize gives on the same kind of data.
// scripts/compare_quantize.sh measures both on a synthesized model; the
// figures below are its peer column on AMD Zen 5, 2026-12-03 (the error does
// not depend on the machine).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "quant/quant.h"
#include "test_util.h"

namespace osprey {
namespace {

struct PeerError {
  DType type;
  double peer_rel_rms;
};

const PeerError kPeer[] = {
    {DType::kQ4_0, 0.0856}, {DType::kQ4_1, 0.0779}, {DType::kQ5_0, 0.0424}, {DType::kQ5_1, 0.0377},
    {DType::kQ8_0, 0.0053}, {DType::kQ2_K, 0.2941}, {DType::kQ3_K, 0.1504}, {DType::kQ4_K, 0.0711},
    {DType::kQ5_K, 0.0360}, {DType::kQ6_K, 0.0174},
};

class QuantQuality : public ::testing::TestWithParam<PeerError> {};

TEST_P(QuantQuality, WithinTwoPercentOfLlamaQuantize) {
  const PeerError p = GetParam();
  const QuantOps* ops = quant_ops(p.type);
  ASSERT_NE(ops, nullptr);
  const int64_t n = 1 << 16;
  const auto x = test::random_floats(n, 11);
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
  EXPECT_LT(rel, p.peer_rel_rms * 1.02) << dtype_name(p.type);
}

INSTANTIATE_TEST_SUITE_P(KQuantsAndLegacy, QuantQuality, ::testing::ValuesIn(kPeer),
                         [](const auto& info) { return std::string(dtype_name(info.param.type)); });

}  // namespace
}  // namespace osprey
