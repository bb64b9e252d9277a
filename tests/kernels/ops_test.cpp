#include <gtest/gtest.h>

#include <algorithm>

#include <cstring>

#include <cmath>
#include <vector>

#include "core/fp16.h"
#include "kernels/dispatch.h"
#include "kernels/kv_row.h"
#include "kernels/ops.h"
#include "test_util.h"

namespace osprey::kernels {
namespace {

TEST(Ops, RmsNormGivesUnitRootMeanSquare) {
  const auto x = test::random_floats(300, 1, 5.0f);
  std::vector<float> w(300, 2.0f), y(300);
  rmsnorm(y.data(), x.data(), w.data(), 300, 1e-6f);
  double ss = 0;
  for (float v : y) ss += v * static_cast<double>(v);
  EXPECT_NEAR(std::sqrt(ss / 300), 2.0, 1e-5);
  EXPECT_NEAR(y[7] / x[7], y[8] / x[8], 1e-6);  // one common scale
}

TEST(Ops, SoftmaxIsAStableDistribution) {
  std::vector<float> x = {1000.0f, 999.0f, -1000.0f};
  softmax(x.data(), 3);
  EXPECT_NEAR(x[0] + x[1] + x[2], 1.0f, 1e-6);
  EXPECT_NEAR(x[0] / x[1], std::exp(1.0f), 1e-4);
  EXPECT_EQ(x[2], 0.0f);
}

TEST(Ops, SiluMul) {
  const float g[2] = {0.0f, 2.0f}, u[2] = {3.0f, 0.5f};
  float out[2];
  silu_mul(out, g, u, 2);
  EXPECT_EQ(out[0], 0.0f);
  EXPECT_NEAR(out[1], 2.0f / (1.0f + std::exp(-2.0f)) * 0.5f, 1e-6);
}

// The exact GELU at every level, against erfc in double: a few ulps where
// activations live, and relative precision kept in the far negative tail
// (the vector form computes erfc directly, not 1 + erf). A value's result
// does not depend on where a range ends (vector body or tail).
TEST(Ops, GeluErfAtEveryLevelMatchesTheDefinition) {
  std::vector<float> x;
  for (int i = -4000; i <= 4000; ++i) x.push_back(i * 0.0025f);
  for (float v : test::random_floats(1003, 5, 3.0f)) x.push_back(v);
  const int64_t n = static_cast<int64_t>(x.size());
  for (Isa isa : available_isas()) {
    std::vector<float> got = x;
    gelu_erf_kernel(isa)(got.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const double want = 0.5 * x[i] * std::erfc(-x[i] / std::sqrt(2.0));
      // The rounding of z = x / sqrt 2 moves e^-z^2 by about 2 z^2 ulps in the tail.
      const double rel = 1e-6 * std::max(1.0, static_cast<double>(x[i]) * x[i] / 4);
      ASSERT_NEAR(got[i], want, rel * std::fabs(want) + 1e-37) << isa_name(isa) << " gelu_erf(" << x[i] << ")";
    }
    for (int64_t cut : {1, 5, 13}) {
      std::vector<float> split = x;
      gelu_erf_kernel(isa)(split.data(), cut);
      gelu_erf_kernel(isa)(split.data() + cut, n - cut);
      EXPECT_EQ(std::memcmp(split.data(), got.data(), n * sizeof(float)), 0) << isa_name(isa) << " cut at " << cut;
    }
  }
}

// The f16 KV rows: every level gives the scalar rounding's bits, including
// halfway cases, subnormals, overflow to infinity and signed zeros.
TEST(Ops, F16RowsAtEveryLevelRoundAsTheScalarCode) {
  std::vector<float> x = {0.0f, -0.0f, 65504.0f, 65520.0f, 1e6f, -1e6f, 6.1e-5f, 5.96e-8f, 2.98e-8f, 1e-9f, -3e-6f,
                          1.0f + 1.0f / 2048, 1.0f + 3.0f / 2048, 1.0f + 1.0f / 4096, 2049.0f, 2051.0f, -2049.0f};
  for (float v : test::random_floats(2048, 9, 8.0f)) x.push_back(v);
  for (float v : test::random_floats(512, 11, 1e-5f)) x.push_back(v);  // subnormal halves
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<uint16_t> want(n), got(n);
  for (int64_t i = 0; i < n; ++i) want[i] = fp32_to_fp16(x[i]);
  for (Isa isa : available_isas()) {
    f16_row_kernel(isa)(x.data(), got.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(got[i], want[i]) << isa_name(isa) << " " << x[i];
  }
}

TEST(Ops, GatedActivationsAtEveryLevelMatchTheScalarDefinition) {
  // A sweep from -100 to 100 (where e^-g over- and underflows), random values
  // of activation size, and a length that leaves a tail for the scalar code.
  std::vector<float> g, u;
  for (int i = -4000; i <= 4000; ++i) g.push_back(i * 0.025f);
  for (float v : test::random_floats(1001, 3, 4.0f)) g.push_back(v);
  for (size_t i = 0; i < g.size(); ++i) u.push_back(i % 3 == 0 ? -1.5f : 0.75f);
  const int64_t n = static_cast<int64_t>(g.size());
  for (Activation act : {Activation::kSilu, Activation::kGelu, Activation::kSwigluOai}) {
    const char* name = act == Activation::kSilu ? "silu" : act == Activation::kGelu ? "gelu" : "swiglu_oai";
    std::vector<float> want(n), got(n);
    (act == Activation::kSilu ? silu_mul : act == Activation::kGelu ? gelu_mul : swiglu_oai_mul)(want.data(), g.data(),
                                                                                                 u.data(), n);
    for (Isa isa : available_isas()) {
      gated_kernel(act, isa)(got.data(), g.data(), u.data(), n);
      // A few ulps: within 3e-7 relative where activations live; e^x's range
      // reduction loses a little more at large |x| (gelu's cube reaches it sooner).
      for (int64_t i = 0; i < n; ++i) {
        // gelu's exponent is a cubic in g: one rounding of it moves e^x by
        // |x| ulps, which is most of the bound in the far tail.
        const float rel = act == Activation::kSilu   ? (std::fabs(g[i]) <= 10 ? 3e-7f : 4e-7f)
                          : act == Activation::kGelu ? (std::fabs(g[i]) <= 2 ? 1e-6f : 2e-5f)
                                                     : 1e-6f;
        // gelu of g below about -10 is under 1e-20 and its exponent near e^88's
        // clamp, where only an absolute bound means anything.
        const float floor = act == Activation::kSilu ? 1e-30f : 1e-20f;
        ASSERT_NEAR(got[i], want[i], rel * std::fabs(want[i]) + floor) << isa_name(isa) << " " << name << "(" << g[i] << ")";
      }
      // In place, as the model calls it.
      std::vector<float> inplace = g;
      gated_kernel(act, isa)(inplace.data(), inplace.data(), u.data(), n);
      EXPECT_EQ(std::memcmp(inplace.data(), got.data(), n * sizeof(float)), 0) << isa_name(isa) << " " << name;
    }
  }
}

TEST(Ops, SwigluOaiClampsBothInputs) {
  const float gate[4] = {-1.0f, 2.0f, 50.0f, 3.0f}, up[4] = {0.5f, -20.0f, 1.0f, 30.0f};
  float out[4];
  swiglu_oai_mul(out, gate, up, 4);
  auto want = [](double g, double u) {
    g = std::min(g, 7.0), u = std::clamp(u, -7.0, 7.0);
    return g / (1 + std::exp(-1.702 * g)) * (u + 1);
  };
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(out[i], want(gate[i], up[i]), 1e-5 * (1 + std::fabs(out[i]))) << i;
}

// YaRN: the lowest pairs (short wavelengths) keep their angle, the highest
// take the interpolated one, and both are scaled by 1 + 0.1 ln(factor).
TEST(Ops, RopeYarnBlendsByFrequency) {
  RopeParams p;
  p.style = RopeStyle::kNeox;
  p.rope_dim = 8;
  p.freq_base = 100.0f;
  p.linear_scale = 4.0f;
  p.yarn_ext = 1.0f;
  p.yarn_low = 1.0f;
  p.yarn_high = 2.0f;
  const double mscale = 1 + 0.1 * std::log(4.0);
  for (int pair : {0, 3}) {
    float x[8] = {0};
    x[pair] = 1.0f;  // (x[pair], x[pair + 4]) = (1, 0) rotates to (cos, sin)
    rope(x, 1, 8, 10, p);
    const double extrap = 10 * std::pow(100.0, -2.0 * pair / 8);
    const double theta = pair == 0 ? extrap : extrap / 4;
    EXPECT_NEAR(x[pair], std::cos(theta) * mscale, 1e-5) << pair;
    EXPECT_NEAR(x[pair + 4], std::sin(theta) * mscale, 1e-5) << pair;
  }
}

TEST(Ops, GeluIsTheTanhForm) {
  for (float g : {-3.0f, -0.5f, 0.0f, 0.7f, 2.5f}) {
    float out;
    const float one = 1.0f;
    gelu_mul(&out, &g, &one, 1);
    const double want = 0.5 * g * (1 + std::tanh(std::sqrt(2 / M_PI) * (g + 0.044715 * g * g * g)));
    EXPECT_NEAR(out, want, 1e-6) << g;
  }
}

TEST(Ops, RopePairsAndAngles) {
  // One head of 4: interleaved rotates (0,1) and (2,3); neox rotates (0,2) and (1,3).
  RopeParams p;
  p.rope_dim = 4;
  p.freq_base = 100.0f;
  const float base[4] = {1, 0, 1, 0};
  float a[4] = {1, 0, 1, 0};
  rope(a, 1, 4, 0, p);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(a[i], base[i]);  // position 0 is the identity
  rope(a, 1, 4, 3, p);
  // pair 0 turns by 3 rad, pair 1 by 3 * 100^(-1/2) = 0.3 rad
  EXPECT_NEAR(a[0], std::cos(3.0f), 1e-5);
  EXPECT_NEAR(a[1], std::sin(3.0f), 1e-5);
  EXPECT_NEAR(a[2], std::cos(0.3f), 1e-5);
  EXPECT_NEAR(a[3], std::sin(0.3f), 1e-5);
  p.style = RopeStyle::kNeox;
  float b[4] = {1, 1, 0, 0};
  rope(b, 1, 4, 3, p);
  EXPECT_NEAR(b[0], std::cos(3.0f), 1e-5);
  EXPECT_NEAR(b[2], std::sin(3.0f), 1e-5);
  EXPECT_NEAR(b[1], std::cos(0.3f), 1e-5);
  EXPECT_NEAR(b[3], std::sin(0.3f), 1e-5);
  // Frequency factors divide the angle.
  const float factors[2] = {2.0f, 1.0f};
  p.style = RopeStyle::kInterleaved;
  p.freq_factors = factors;
  float c[4] = {1, 0, 1, 0};
  rope(c, 1, 4, 3, p);
  EXPECT_NEAR(c[0], std::cos(1.5f), 1e-5);
}

TEST(Ops, AttentionOverOnePositionReturnsItsValue) {
  const int hd = 8;
  std::vector<uint16_t> k(hd), v(hd);
  for (int d = 0; d < hd; ++d) {
    k[d] = fp32_to_fp16(0.1f * d);
    v[d] = fp32_to_fp16(d - 3.0f);
  }
  std::vector<float> q(hd, 1.0f), out(hd);
  float scores[1];
  attend_head(q.data(), KvView::f16(k.data(), v.data(), hd), 1, hd, 0.5f, scores, out.data());
  for (int d = 0; d < hd; ++d) EXPECT_EQ(out[d], d - 3.0f);
}

TEST(Ops, AttentionWeighsByScore) {
  // Two positions; scores 0 and ln(3) -> weights 1/4 and 3/4.
  const int hd = 2;
  const uint16_t k[4] = {fp32_to_fp16(0.0f), fp32_to_fp16(0.0f), fp32_to_fp16(std::log(3.0f)), fp32_to_fp16(0.0f)};
  const uint16_t v[4] = {fp32_to_fp16(4.0f), fp32_to_fp16(0.0f), fp32_to_fp16(0.0f), fp32_to_fp16(8.0f)};
  const float q[2] = {1.0f, 0.0f};
  float out[2], scores[2];
  attend_head(q, KvView::f16(k, v, hd), 2, hd, 1.0f, scores, out);
  EXPECT_NEAR(out[0], 1.0f, 2e-3);
  EXPECT_NEAR(out[1], 6.0f, 2e-3);
}

// Every compiled attention variant against the reference, at awkward lengths.
TEST(Ops, AttentionVariantsMatchReference) {
  for (Isa isa : available_isas()) {
    const AttendFn fn = attend_kernel(isa);
    for (int hd : {64, 128, 80, 256, 40}) {
      for (int64_t n_kv : {1, 3, 31, 257, 2000}) {
        const int64_t stride = 2 * hd + 8;  // rows of a wider cache, as with several KV heads
        std::vector<uint16_t> k(n_kv * stride), v(n_kv * stride);
        const auto kf = test::random_floats(k.size(), 1);
        const auto vf = test::random_floats(v.size(), 2);
        for (size_t i = 0; i < k.size(); ++i) k[i] = fp32_to_fp16(kf[i]), v[i] = fp32_to_fp16(vf[i]);
        const auto q = test::random_floats(hd, 3, 2.0f);
        std::vector<float> want(hd), got(hd), s1(n_kv), s2(n_kv);
        const KvView kv = KvView::f16(k.data(), v.data(), stride);
        attend_head(q.data(), kv, n_kv, hd, 0.125f, s1.data(), want.data());
        fn(q.data(), kv, KvSpan{0, n_kv}, hd, AttendParams{0.125f}, s2.data(), got.data());
        for (int d = 0; d < hd; ++d)
          EXPECT_NEAR(got[d], want[d], 1e-4) << isa_name(isa) << " hd=" << hd << " n_kv=" << n_kv << " dim " << d;
      }
    }
  }
}

// Keys and values stored as another type (q8_0, q4_0, bf16...): every
// variant agrees with the reference, which attends over the decoded rows; and
// the second of two heads read through a block format's byte offsets gives
// what the same values stored as f32 give, within that format's error.
TEST(Ops, QuantizedCacheAttentionMatchesReference) {
  struct Case {
    DType k, v;
    float tolerance;  // against the f32 cache, relative to the output's size
  };
  const Case cases[] = {{DType::kQ8_0, DType::kQ8_0, 0.02f}, {DType::kQ4_0, DType::kQ4_0, 0.2f},
                        {DType::kQ5_1, DType::kQ5_0, 0.1f},  {DType::kBF16, DType::kBF16, 0.02f},
                        {DType::kQ8_0, DType::kF16, 0.02f},  {DType::kF32, DType::kQ4_1, 0.2f}};
  for (const Case& c : cases)
    for (int hd : {64, 128})
      for (int64_t n_kv : {1, 37, 300}) {
        const int64_t row_values = 2 * hd;  // two KV heads per row; the test reads the second
        auto encode = [&](DType type, const std::vector<float>& x) {
          std::vector<uint8_t> rows(static_cast<size_t>(n_kv * kv_row_bytes(type, row_values)));
          for (int64_t t = 0; t < n_kv; ++t)
            encode_kv_row(type, x.data() + t * row_values, rows.data() + t * kv_row_bytes(type, row_values), row_values);
          return rows;
        };
        auto view = [&](DType kt, const std::vector<uint8_t>& k, DType vt, const std::vector<uint8_t>& v) {
          return KvView{k.data() + kv_row_bytes(kt, hd), v.data() + kv_row_bytes(vt, hd), kv_row_bytes(kt, row_values),
                        kv_row_bytes(vt, row_values), kt, vt};
        };
        const auto kf = test::random_floats(n_kv * row_values, 61);
        const auto vf = test::random_floats(n_kv * row_values, 62);
        const auto q = test::random_floats(hd, 63);
        const auto k = encode(c.k, kf), v = encode(c.v, vf);
        const auto k32 = encode(DType::kF32, kf), v32 = encode(DType::kF32, vf);
        std::vector<float> want(hd), exact(hd), got(hd), scores(n_kv);
        attend_one(q.data(), view(c.k, k, c.v, v), KvSpan{0, n_kv}, hd, AttendParams{0.125f}, scores.data(), want.data());
        attend_one(q.data(), view(DType::kF32, k32, DType::kF32, v32), KvSpan{0, n_kv}, hd, AttendParams{0.125f},
                   scores.data(), exact.data());
        double err = 0, size = 0;
        for (int d = 0; d < hd; ++d) err += double(want[d] - exact[d]) * (want[d] - exact[d]), size += double(exact[d]) * exact[d];
        EXPECT_LE(std::sqrt(err), c.tolerance * std::sqrt(size) + 1e-3)
            << dtype_name(c.k) << "/" << dtype_name(c.v) << " hd=" << hd << " n_kv=" << n_kv;
        for (Isa isa : available_isas()) {
          attend_kernel(isa)(q.data(), view(c.k, k, c.v, v), KvSpan{0, n_kv}, hd, AttendParams{0.125f}, scores.data(),
                             got.data());
          for (int d = 0; d < hd; ++d)
            ASSERT_NEAR(got[d], want[d], 1e-4) << isa_name(isa) << " " << dtype_name(c.k) << "/" << dtype_name(c.v)
                                               << " hd=" << hd << " n_kv=" << n_kv << " dim " << d;
        }
      }
}

// Windows, soft-capping and sinks, each against the reference at every level,
// and the reference against the definition written out here: a window is
// attention over its positions alone; a sink adds e^sink to the denominator.
TEST(Ops, AttentionWindowsSoftcapAndSinksMatchTheirDefinition) {
  const int hd = 64;
  const int64_t n_kv = 90;
  std::vector<uint16_t> k(n_kv * hd), v(n_kv * hd);
  const auto kf = test::random_floats(k.size(), 51, 3.0f);
  const auto vf = test::random_floats(v.size(), 52);
  for (size_t i = 0; i < k.size(); ++i) k[i] = fp32_to_fp16(kf[i]), v[i] = fp32_to_fp16(vf[i]);
  const auto q = test::random_floats(hd, 53, 2.0f);
  const KvView kv = KvView::f16(k.data(), v.data(), hd);
  std::vector<float> scores(n_kv);
  for (const KvSpan span : {KvSpan{0, 90}, KvSpan{37, 90}, KvSpan{8, 16}, KvSpan{89, 90}, KvSpan{5, 5}}) {
    for (int variant = 0; variant < 3; ++variant) {
      const float sink = 1.5f;
      AttendParams p{0.2f};
      if (variant == 1) p.softcap = 2.0f;
      if (variant == 2) p.sinks = &sink;
      // The definition, in double.
      std::vector<double> w;
      double max = variant == 2 ? sink : -INFINITY, sum = 0;
      for (int64_t t = span.begin; t < span.end; ++t) {
        double s = 0;
        for (int d = 0; d < hd; ++d) s += fp16_to_fp32(fp32_to_fp16(q[d])) * fp16_to_fp32(k[t * hd + d]);
        s *= 0.2;
        if (variant == 1) s = 2.0 * std::tanh(s / 2.0);
        w.push_back(s);
        max = std::max(max, s);
      }
      for (double& x : w) sum += (x = std::exp(x - max));
      if (variant == 2) sum += std::exp(sink - max);
      std::vector<double> want(hd, 0.0);
      for (int64_t t = span.begin; t < span.end; ++t)
        for (int d = 0; d < hd; ++d) want[d] += w[t - span.begin] / sum * fp16_to_fp32(v[t * hd + d]);
      for (Isa isa : available_isas()) {
        std::vector<float> got(hd, NAN);
        attend_kernel(isa)(q.data(), kv, span, hd, p, scores.data(), got.data());
        for (int d = 0; d < hd; ++d)
          ASSERT_NEAR(got[d], want[d], 2e-4) << isa_name(isa) << " span [" << span.begin << ", " << span.end
                                             << ") variant " << variant << " dim " << d;
      }
    }
  }
}

// The tiled kernels keep a running max and rescale what came before when it
// grows: scores that rise over the whole context (the max moves every tile),
// that fall steeply (later probabilities underflow to 0), and that swing by
// tens of units from tile to tile must all agree with the plain softmax.
TEST(Ops, AttentionOnlineSoftmaxMatchesReferenceWhenTheMaxMoves) {
  const int hd = 64;
  const int64_t n_kv = 300;
  for (int pattern = 0; pattern < 3; ++pattern) {
    std::vector<uint16_t> k(n_kv * hd), v(n_kv * hd);
    const auto vf = test::random_floats(v.size(), 40 + pattern);
    for (int64_t t = 0; t < n_kv; ++t) {
      const float score = pattern == 0   ? 0.1f * static_cast<float>(t)
                          : pattern == 1 ? -0.5f * static_cast<float>(t)
                                         : ((t / 8) % 2 ? 40.0f : -40.0f) + 0.01f * static_cast<float>(t);
      for (int d = 0; d < hd; ++d) k[t * hd + d] = fp32_to_fp16(d == 0 ? score : 0.0f);
      for (int d = 0; d < hd; ++d) v[t * hd + d] = fp32_to_fp16(vf[t * hd + d]);
    }
    std::vector<float> q(hd, 0.0f);
    q[0] = 1.0f;
    const KvView kv = KvView::f16(k.data(), v.data(), hd);
    std::vector<float> want(hd), scores(n_kv);
    attend_head(q.data(), kv, n_kv, hd, 1.0f, scores.data(), want.data());
    for (Isa isa : available_isas()) {
      std::vector<float> got(hd);
      attend_kernel(isa)(q.data(), kv, KvSpan{0, n_kv}, hd, AttendParams{1.0f}, scores.data(), got.data());
      for (int d = 0; d < hd; ++d)
        EXPECT_NEAR(got[d], want[d], 1e-4 * (1 + std::fabs(want[d])))
            << isa_name(isa) << " pattern " << pattern << " dim " << d;
    }
  }
}

// Grouped attention (the queries of a GQA group and several tokens over one
// KV head) must give each query exactly what it gets alone, at every level,
// with queries of different lengths and a paged cache.
TEST(Ops, GroupedAttentionEqualsPerQueryBitForBit) {
  const int64_t block = 16, n_rows = 12 * block;
  const std::vector<int32_t> table = {5, 0, 11, 2, 7, 1, 9, 3, 10, 4, 6, 8};
  for (Isa isa : available_isas()) {
    const AttendFn one = attend_kernel(isa);
    const AttendGroupFn group = attend_group_kernel(isa);
    for (int hd : {64, 128, 80, 256, 40}) {
      const int64_t stride = 2 * hd;
      std::vector<uint16_t> k(n_rows * stride), v(n_rows * stride);
      const auto kf = test::random_floats(k.size(), 21);
      const auto vf = test::random_floats(v.size(), 22);
      for (size_t i = 0; i < k.size(); ++i) k[i] = fp32_to_fp16(kf[i]), v[i] = fp32_to_fp16(vf[i]);
      const KvView kv = KvView::f16(k.data() + hd, v.data() + hd, stride, table.data(), block);  // the second of two KV heads
      for (int n_q : {1, 3, 8, 32, kMaxGroupQueries}) {
        std::vector<std::vector<float>> qs, want, got;
        std::vector<const float*> qp;
        std::vector<float*> op;
        std::vector<KvSpan> spans;
        std::vector<float> sinks;
        for (int i = 0; i < n_q; ++i) {
          qs.push_back(test::random_floats(hd, 100 + i, 2.0f));
          // Causal spans, some of them windows that begin late, one empty.
          const int64_t end = 1 + (37 * i + 5) % (n_rows - 1);
          spans.push_back({i % 3 == 1 ? std::max<int64_t>(0, end - 1 - (19 * i) % 40) : 0, i == 5 ? 0 : end});
          sinks.push_back(0.5f * static_cast<float>(i % 4) - 1.0f);
          want.emplace_back(hd);
          got.emplace_back(hd, NAN);
        }
        for (int i = 0; i < n_q; ++i) qp.push_back(qs[i].data()), op.push_back(got[i].data());
        std::vector<float> scores(n_q * n_rows);
        // Plain, soft-capped, and with sinks: each shapes every query alike.
        for (int variant = 0; variant < 3; ++variant) {
          AttendParams p{0.125f};
          if (variant == 1) p.softcap = 3.0f;
          if (variant == 2) p.sinks = sinks.data();
          group(qp.data(), n_q, spans.data(), kv, hd, p, scores.data(), op.data());
          for (int i = 0; i < n_q; ++i) {
            AttendParams pi = p;
            if (p.sinks != nullptr) pi.sinks = p.sinks + i;
            one(qs[i].data(), kv, spans[i], hd, pi, scores.data(), want[i].data());
            ASSERT_EQ(std::memcmp(want[i].data(), got[i].data(), hd * sizeof(float)), 0)
                << isa_name(isa) << " hd=" << hd << " n_q=" << n_q << " query " << i << " span [" << spans[i].begin
                << ", " << spans[i].end << ") variant " << variant;
          }
        }
      }
    }
  }
}

// Several KV heads in one call (attend_heads, the decode case): every query
// gets bit for bit what attend_group gives it over its own head alone, for
// groups that fill a vector in one head or need 16, head counts that are not
// a power of two, head sizes the packed path cannot take, windows, an empty
// span, sinks, soft-capping, a paged cache and a block-format cache.
TEST(Ops, SeveralKvHeadsPerCallEqualOneHeadAtATimeBitForBit) {
  const int64_t block = 16, n_rows = 10 * block, n_heads_max = 16;
  const std::vector<int32_t> table = {4, 9, 0, 7, 2, 5, 8, 1, 6, 3};
  int checked = 0;
  for (Isa isa : available_isas()) {
    const AttendHeads heads = attend_heads_kernel(isa);
    if (heads.fn == nullptr) continue;  // this level takes heads one at a time
    const AttendGroupFn group = attend_group_kernel(isa);
    for (DType type : {DType::kF16, DType::kQ8_0})
      for (int hd : {64, 128, 256, 80, 40}) {
        if (type == DType::kQ8_0 && hd % 32 != 0) continue;  // heads of a block-format cache start on blocks
        const int64_t row_values = n_heads_max * hd;
        auto encode = [&](const std::vector<float>& x) {
          std::vector<uint8_t> rows(static_cast<size_t>(n_rows * kv_row_bytes(type, row_values)));
          for (int64_t t = 0; t < n_rows; ++t)
            encode_kv_row(type, x.data() + t * row_values, rows.data() + t * kv_row_bytes(type, row_values), row_values);
          return rows;
        };
        const auto k = encode(test::random_floats(n_rows * row_values, 31));
        const auto v = encode(test::random_floats(n_rows * row_values, 32));
        // The views start at the second head, so that head offsets are added, not assumed to be zero.
        auto view = [&](int64_t h) {
          return KvView{k.data() + kv_row_bytes(type, h * hd), v.data() + kv_row_bytes(type, h * hd),
                        kv_row_bytes(type, row_values), kv_row_bytes(type, row_values), type, type, table.data(), block};
        };
        for (int per_head : {1, 2, 4, 7, 8, 16})
          for (int n_heads : {1, 2, 3, 4, 8, 15}) {
            if (1 + n_heads > n_heads_max) continue;
            const int n_q = per_head * n_heads;
            if (n_q > kMaxGroupQueries) continue;
            std::vector<std::vector<float>> qs, want, got;
            std::vector<const float*> qp;
            std::vector<float*> op;
            std::vector<KvSpan> spans;
            std::vector<float> sinks;
            for (int i = 0; i < n_q; ++i) {
              qs.push_back(test::random_floats(hd, 200 + i, 2.0f));
              // One token's span per head's queries, as in decode, or each its own; some windows, one empty.
              const int j = i % per_head;
              const int64_t end = 1 + (per_head == 7 ? (29 * i + 3) % (n_rows - 1) : n_rows - 1 - 13 * j);
              spans.push_back({j % 3 == 1 ? std::max<int64_t>(0, end - 1 - (17 * i) % 50) : 0, i == 3 ? 0 : end});
              sinks.push_back(0.25f * static_cast<float>(i % 5) - 0.5f);
              want.emplace_back(hd);
              got.emplace_back(hd, NAN);
            }
            for (int i = 0; i < n_q; ++i) qp.push_back(qs[i].data()), op.push_back(got[i].data());
            std::vector<float> scores(n_q * n_rows);
            for (int variant = 0; variant < 3; ++variant) {
              AttendParams p{0.125f};
              if (variant == 1) p.softcap = 3.0f;
              if (variant == 2) p.sinks = sinks.data();
              heads.fn(qp.data(), n_q, n_heads, spans.data(), view(1), hd, p, scores.data(), op.data());
              for (int h = 0; h < n_heads; ++h) {
                const int i0 = h * per_head;
                AttendParams ph = p;
                if (p.sinks != nullptr) ph.sinks = p.sinks + i0;
                std::vector<float*> wp;
                for (int i = i0; i < i0 + per_head; ++i) wp.push_back(want[i].data());
                group(qp.data() + i0, per_head, spans.data() + i0, view(1 + h), hd, ph, scores.data(), wp.data());
              }
              for (int i = 0; i < n_q; ++i)
                ASSERT_EQ(std::memcmp(want[i].data(), got[i].data(), hd * sizeof(float)), 0)
                    << isa_name(isa) << " " << dtype_name(type) << " hd=" << hd << " " << n_heads << " heads of "
                    << per_head << " queries, query " << i << " span [" << spans[i].begin << ", " << spans[i].end
                    << ") variant " << variant;
              ++checked;
            }
          }
      }
  }
  if (checked == 0) GTEST_SKIP() << "no level on this CPU packs several KV heads into one call (AVX-512 does)";
}

// A paged cache (positions scattered over blocks in any order) must give
// bit-identical results to the same rows stored contiguously: serving relies
// on it for reproducible output whatever the block layout.
TEST(Ops, PagedAttentionEqualsContiguousBitForBit) {
  const int hd = 64;
  const int64_t stride = hd, block = 16, n_kv = 75;  // 5 blocks, the last partly filled
  const std::vector<int32_t> table = {3, 0, 7, 2, 5};
  const int64_t n_rows = 8 * block;
  std::vector<uint16_t> k(n_kv * stride), v(n_kv * stride), pk(n_rows * stride), pv(n_rows * stride);
  const auto kf = test::random_floats(k.size(), 11);
  const auto vf = test::random_floats(v.size(), 12);
  for (size_t i = 0; i < k.size(); ++i) k[i] = fp32_to_fp16(kf[i]), v[i] = fp32_to_fp16(vf[i]);
  for (int64_t t = 0; t < n_kv; ++t) {
    const int64_t row = table[t / block] * block + t % block;
    std::copy_n(k.begin() + t * stride, stride, pk.begin() + row * stride);
    std::copy_n(v.begin() + t * stride, stride, pv.begin() + row * stride);
  }
  const auto q = test::random_floats(hd, 13, 2.0f);
  for (Isa isa : available_isas()) {
    const AttendFn fn = attend_kernel(isa);
    std::vector<float> want(hd), got(hd), scores(n_kv);
    fn(q.data(), KvView::f16(k.data(), v.data(), stride), KvSpan{0, n_kv}, hd, AttendParams{0.125f}, scores.data(), want.data());
    fn(q.data(), KvView::f16(pk.data(), pv.data(), stride, table.data(), block), KvSpan{0, n_kv}, hd, AttendParams{0.125f},
       scores.data(), got.data());
    for (int d = 0; d < hd; ++d) EXPECT_EQ(got[d], want[d]) << isa_name(isa) << " dim " << d;
  }
}

}  // namespace
}  // namespace osprey::kernels
