// The Vulkan back end, on whatever Vulkan device the machine has (Mesa's
// lavapipe, a CPU device, in CI): every kernel against a plain reference on
// random inputs, then whole models against the CPU build. Skips, saying why,
// only when no Vulkan device opens.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>

#include "backends/device.h"
#include "backends/weight_layout.h"
#include "core/fp16.h"
#include "kernels/ops.h"
#include "models/device_pass.h"
#include "models/model.h"
#include "quant/quant.h"
#include "test_util.h"

namespace osprey {
namespace {

using backends::Buffer;
using backends::Device;

std::unique_ptr<Device> open_or_null(std::string* why) {
  auto d = backends::open_device("vulkan");
  if (!d.ok()) {
    *why = d.status().message();
    return nullptr;
  }
  return std::move(d).value();
}

#define OPEN_DEVICE(d)                              \
  std::string why_;                                 \
  auto d = open_or_null(&why_);                     \
  if (!d) GTEST_SKIP() << "no Vulkan device: " << why_

Buffer upload(Device& d, const void* data, int64_t bytes) {
  auto b = d.alloc(std::max<int64_t>(bytes, 4), "test");
  EXPECT_TRUE(b.ok()) << b.status().message();
  if (bytes > 0) {
    EXPECT_TRUE(d.write(*b, 0, data, bytes).ok());
  }
  return *b;
}
template <class T>
Buffer upload(Device& d, const std::vector<T>& v) {
  return upload(d, v.data(), static_cast<int64_t>(v.size() * sizeof(T)));
}
template <class T>
std::vector<T> download(Device& d, Buffer b, size_t n) {
  std::vector<T> v(n);
  EXPECT_TRUE(d.read(b, 0, v.data(), static_cast<int64_t>(n * sizeof(T))).ok());
  return v;
}
const backends::KernelSource& kernel(const char* name) {
  const backends::KernelSource* k = backends::find_gpu_kernel(name);
  EXPECT_NE(k, nullptr) << name;
  return *k;
}
float round_fp16(float v) { return fp16_to_fp32(fp32_to_fp16(v)); }

// y = W x (+ y) for each weight type against the dequantized weights in
// double; more outputs than a workgroup's 16 and a ragged last group.
struct MatmulCase {
  DType type;
  int64_t n_out, n_in, n_tok;
};
class VulkanMatmul : public ::testing::TestWithParam<MatmulCase> {};

TEST_P(VulkanMatmul, MatchesDequantizedReference) {
  OPEN_DEVICE(d);
  const MatmulCase mc = GetParam();
  const QuantOps* ops = quant_ops(mc.type);
  ASSERT_NE(ops, nullptr);
  const std::vector<float> w = test::random_floats(mc.n_out * mc.n_in, 1);
  std::vector<uint8_t> q(quant_row_bytes(*ops, mc.n_in) * mc.n_out);
  for (int64_t o = 0; o < mc.n_out; ++o)
    ops->quantize(w.data() + o * mc.n_in, q.data() + o * quant_row_bytes(*ops, mc.n_in), mc.n_in);
  std::vector<float> deq(w.size());
  ops->dequantize(q.data(), deq.data(), static_cast<int64_t>(deq.size()));
  const std::vector<float> x = test::random_floats(mc.n_tok * mc.n_in, 2);
  const std::vector<float> y0 = test::random_floats(mc.n_tok * mc.n_out, 3);
  for (const bool acc : {false, true}) {
    const std::vector<uint32_t> packed = backends::pack_weights(mc.type, q.data(), mc.n_out * mc.n_in);
    // The size the upload splits matrices by is the size packing makes.
    ASSERT_EQ(backends::packed_bytes(mc.type, mc.n_out * mc.n_in), static_cast<int64_t>(packed.size()) * 4);
    const Buffer wb = upload(*d, packed);
    const Buffer xb = upload(*d, x);
    // dense: no experts, x row = y row
    const uint32_t params[9] = {static_cast<uint32_t>(mc.n_in), static_cast<uint32_t>(mc.n_out), acc ? 1u : 0u, 0,
                                static_cast<uint32_t>(mc.n_out), 0, 1, 0, static_cast<uint32_t>(mc.n_tok)};
    const uint32_t groups = static_cast<uint32_t>((mc.n_out + 63) / 64);
    // The one-token kernel (a workgroup per row) and the four-token one (a
    // workgroup per four rows; a ragged last tile): each against the
    // reference, and a row's result the same bits in both.
    std::vector<float> by_kernel[2];
    for (const bool tokens : {false, true}) {
      SCOPED_TRACE(tokens ? "four tokens a workgroup" : "one token a workgroup");
      const Buffer yb = upload(*d, y0);
      d->begin();
      const uint32_t grid_y = static_cast<uint32_t>(tokens ? (mc.n_tok + 3) / 4 : mc.n_tok);
      const backends::KernelSource& k = *backends::matrix_kernel(mc.type, tokens);
      if (tokens) d->dispatch(k, {wb, xb, yb}, params, sizeof params, std::min(groups, 32768u), grid_y, (groups + 32767) / 32768);
      else d->dispatch(k, {wb, xb, yb, xb}, params, sizeof params, std::min(groups, 32768u), grid_y, (groups + 32767) / 32768);
      ASSERT_TRUE(d->finish().ok());
      const std::vector<float> y = download<float>(*d, yb, y0.size());
      for (int64_t t = 0; t < mc.n_tok; ++t)
        for (int64_t o = 0; o < mc.n_out; ++o) {
          double ref = acc ? y0[t * mc.n_out + o] : 0, mag = std::fabs(ref);
          for (int64_t i = 0; i < mc.n_in; ++i) {
            ref += static_cast<double>(deq[o * mc.n_in + i]) * x[t * mc.n_in + i];
            mag += std::fabs(static_cast<double>(deq[o * mc.n_in + i]) * x[t * mc.n_in + i]);
          }
          // float sums in another order: within a few ulps of the sum of magnitudes
          ASSERT_NEAR(y[t * mc.n_out + o], ref, 4e-6 * mag + 1e-6) << "token " << t << " output " << o;
        }
      by_kernel[tokens] = y;
    }
    EXPECT_EQ(0, std::memcmp(by_kernel[0].data(), by_kernel[1].data(), y0.size() * sizeof(float)))
        << "a row's result differs between the one-token and four-token kernels";
  }
}

INSTANTIATE_TEST_SUITE_P(Types, VulkanMatmul,
                         ::testing::Values(MatmulCase{DType::kF32, 40, 96, 3}, MatmulCase{DType::kF16, 40, 96, 3},
                                           MatmulCase{DType::kQ8_0, 40, 96, 3}, MatmulCase{DType::kQ4_0, 40, 96, 3},
                                           MatmulCase{DType::kQ8_0, 7, 576, 2}, MatmulCase{DType::kQ5_0, 40, 96, 3},
                                           MatmulCase{DType::kQ4_1, 40, 96, 3}, MatmulCase{DType::kQ5_1, 40, 96, 3},
                                           MatmulCase{DType::kQ4_K, 40, 512, 3}, MatmulCase{DType::kQ5_K, 40, 512, 3},
                                           MatmulCase{DType::kQ6_K, 40, 512, 3}, MatmulCase{DType::kBF16, 40, 96, 3},
                                           MatmulCase{DType::kMXFP4, 40, 96, 3},
                                           MatmulCase{DType::kQ8_0, 70, 64, 9},
                                           // past 32768 workgroups: the outputs spill into the grid's z
                                           MatmulCase{DType::kQ4_0, 64 * 32768 + 21, 32, 1}),
                         [](const auto& info) {
                           return std::string(dtype_name(info.param.type)) + "_" + std::to_string(info.param.n_out) +
                                  "x" + std::to_string(info.param.n_in);
                         });

TEST(Vulkan, RmsNormMatchesReference) {
  OPEN_DEVICE(d);
  const int64_t rows = 5, n = 200;
  const std::vector<float> x = test::random_floats(rows * n, 4), w = test::random_floats(n, 5);
  const Buffer xb = upload(*d, x), wb = upload(*d, w), yb = upload(*d, std::vector<float>(rows * n));
  const Buffer ib = upload(*d, x);
  struct {
    uint32_t n;
    float eps;
  } p{static_cast<uint32_t>(n), 1e-5f};
  d->begin();
  d->dispatch(kernel("rms_norm"), {xb, wb, yb}, &p, sizeof p, rows);
  d->dispatch(kernel("rms_norm_inplace"), {ib, wb}, &p, sizeof p, rows);
  ASSERT_TRUE(d->finish().ok());
  const std::vector<float> y = download<float>(*d, yb, x.size()), yi = download<float>(*d, ib, x.size());
  std::vector<float> ref(n);
  for (int64_t r = 0; r < rows; ++r) {
    kernels::rmsnorm(ref.data(), x.data() + r * n, w.data(), n, 1e-5f);
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_NEAR(y[r * n + i], ref[i], 1e-5f * (1 + std::fabs(ref[i])));
      ASSERT_EQ(y[r * n + i], yi[r * n + i]);
    }
  }
}

TEST(Vulkan, RopeAppliesTheHostsAnglesInBothStyles) {
  OPEN_DEVICE(d);
  for (const kernels::RopeStyle style : {kernels::RopeStyle::kInterleaved, kernels::RopeStyle::kNeox}) {
    const int n_heads = 3, hd = 64, rope_dim = 48, rows = 4;  // a partial rotary dimension
    kernels::RopeParams rp;
    rp.style = style;
    rp.rope_dim = rope_dim;
    rp.freq_base = 10000.0f;
    std::vector<float> x = test::random_floats(rows * n_heads * hd, 6), cs(rows * rope_dim);
    const int64_t pos[rows] = {0, 7, 1000, 4095};
    for (int t = 0; t < rows; ++t) kernels::rope_cos_sin(pos[t], rp, cs.data() + t * rope_dim);
    const Buffer xb = upload(*d, x), cb = upload(*d, cs);
    const uint32_t p[4] = {n_heads, hd, rope_dim / 2, style == kernels::RopeStyle::kNeox ? 1u : 0u};
    d->begin();
    d->dispatch(kernel("rope"), {xb, cb}, p, sizeof p, rows);
    ASSERT_TRUE(d->finish().ok());
    const std::vector<float> y = download<float>(*d, xb, x.size());
    for (int t = 0; t < rows; ++t) {
      kernels::rope(x.data() + t * n_heads * hd, n_heads, hd, pos[t], rp);
      for (int i = 0; i < n_heads * hd; ++i) ASSERT_NEAR(y[t * n_heads * hd + i], x[t * n_heads * hd + i], 1e-5f);
    }
  }
}

TEST(Vulkan, ElementwiseKernels) {
  OPEN_DEVICE(d);
  const int64_t n = 1000, width = 100;
  const std::vector<float> g = test::random_floats(n, 7), u = test::random_floats(n, 8), b = test::random_floats(width, 9);
  const Buffer gb = upload(*d, g), ub = upload(*d, u), yb = upload(*d, g), bb = upload(*d, b);
  const std::vector<uint32_t> idx = {7, 2, 9};
  const Buffer ib = upload(*d, idx), db = upload(*d, std::vector<float>(3 * width));
  const uint32_t pn = n, pb[2] = {n, width}, pw = width;
  d->begin();
  d->dispatch(kernel("silu_gate"), {gb, ub}, &pn, sizeof pn, (n + 63) / 64);
  d->dispatch(kernel("add_bias"), {yb, bb}, pb, sizeof pb, (n + 63) / 64);
  d->dispatch(kernel("gather_rows"), {yb, ib, db}, &pw, sizeof pw, 3);
  ASSERT_TRUE(d->finish().ok());
  const std::vector<float> gs = download<float>(*d, gb, n), ys = download<float>(*d, yb, n), ds = download<float>(*d, db, 3 * width);
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_NEAR(gs[i], g[i] / (1 + std::exp(-g[i])) * u[i], 1e-5f * (1 + std::fabs(gs[i])));
    ASSERT_EQ(ys[i], g[i] + b[i % width]);
  }
  for (int r = 0; r < 3; ++r)
    for (int64_t i = 0; i < width; ++i) ASSERT_EQ(ds[r * width + i], ys[idx[r] * width + i]);
}

// Stacked experts: each routing slot's outputs come from its own expert's
// rows, reading its token's input (x_div = k), with the stack split into two
// parts of whole experts as a device that binds little would hold it; a slot
// whose expert sits in the other part is left alone by this one.
TEST(Vulkan, ExpertMatmulReadsEachSlotsExpertFromItsPart) {
  OPEN_DEVICE(d);
  const int64_t n_exp = 5, rows = 24, n_in = 64, n_tok = 3, k = 2;
  const QuantOps* ops = quant_ops(DType::kQ8_0);
  const int64_t row_bytes = quant_row_bytes(*ops, n_in);
  const std::vector<float> w = test::random_floats(n_exp * rows * n_in, 11);
  std::vector<uint8_t> q(row_bytes * n_exp * rows);
  for (int64_t o = 0; o < n_exp * rows; ++o) ops->quantize(&w[o * n_in], &q[o * row_bytes], n_in);
  std::vector<float> deq(w.size());
  ops->dequantize(q.data(), deq.data(), static_cast<int64_t>(deq.size()));
  const std::vector<float> x = test::random_floats(n_tok * n_in, 12);
  const std::vector<uint32_t> ids = {4, 0, 2, 3, 0, 4};  // [token][slot]; experts 0..2 and 3..4 in two parts
  const Buffer xb = upload(*d, x), ib = upload(*d, ids);
  const Buffer yb = upload(*d, std::vector<float>(n_tok * k * rows, -7.0f));
  const int64_t split = 3;  // experts in the first part
  const Buffer part0 = upload(*d, backends::pack_weights(DType::kQ8_0, q.data(), split * rows * n_in));
  const Buffer part1 =
      upload(*d, backends::pack_weights(DType::kQ8_0, q.data() + split * rows * row_bytes, (n_exp - split) * rows * n_in));
  d->begin();
  for (const auto& [buf, first, count] : {std::tuple{part0, int64_t{0}, split}, {part1, split, n_exp - split}}) {
    const uint32_t params[9] = {uint32_t(n_in), uint32_t(count * rows), 0, 0, uint32_t(rows), uint32_t(rows),
                                uint32_t(k), uint32_t(first), uint32_t(n_tok * k)};
    d->dispatch(kernel("mat_q8_0"), {buf, xb, yb, ib}, params, sizeof params, uint32_t((rows + 15) / 16),
                uint32_t(n_tok * k));
  }
  ASSERT_TRUE(d->finish().ok());
  const std::vector<float> y = download<float>(*d, yb, n_tok * k * rows);
  for (int64_t s = 0; s < n_tok * k; ++s)
    for (int64_t o = 0; o < rows; ++o) {
      double ref = 0, mag = 0;
      for (int64_t i = 0; i < n_in; ++i) {
        const double v = static_cast<double>(deq[(ids[s] * rows + o) * n_in + i]) * x[(s / k) * n_in + i];
        ref += v;
        mag += std::fabs(v);
      }
      ASSERT_NEAR(y[s * rows + o], ref, 4e-6 * mag + 1e-6) << "slot " << s << " output " << o;
    }
}

// The router: top k best first with ties to the lower index, under both
// gatings (softmax over all, or over the chosen k) and with renormalisation;
// then the weighed sum of each token's slots added to the residual stream.
TEST(Vulkan, MoeRouteAndCombineMatchReference) {
  OPEN_DEVICE(d);
  const int64_t n_exp = 6, k = 3, n_tok = 70, width = 40;  // more tokens than a workgroup
  std::vector<float> logits = test::random_floats(n_tok * n_exp, 13);
  for (int64_t i = 0; i < n_exp; ++i) logits[i] = i == 1 || i == 4 ? 2.0f : i == 3 ? 2.0f : -1.0f;  // a three-way tie
  const Buffer lb = upload(*d, logits);
  for (const uint32_t gating : {0u, 1u})
    for (const uint32_t renorm : {0u, 1u}) {
      const Buffer ib = upload(*d, std::vector<uint32_t>(n_tok * k)), wb = upload(*d, std::vector<float>(n_tok * k));
      const uint32_t params[5] = {uint32_t(n_tok), uint32_t(n_exp), uint32_t(k), gating, renorm};
      d->begin();
      d->dispatch(kernel("moe_route"), {lb, ib, wb}, params, sizeof params, uint32_t((n_tok + 63) / 64));
      ASSERT_TRUE(d->finish().ok());
      const std::vector<uint32_t> ids = download<uint32_t>(*d, ib, n_tok * k);
      const std::vector<float> wts = download<float>(*d, wb, n_tok * k);
      for (int64_t t = 0; t < n_tok; ++t) {
        const float* l = &logits[t * n_exp];
        std::vector<int> order(n_exp);
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return l[a] > l[b]; });
        std::vector<double> want(k);
        double all = 0, chosen = 0;
        for (int64_t e = 0; e < n_exp; ++e) all += std::exp(static_cast<double>(l[e]) - l[order[0]]);
        for (int64_t j = 0; j < k; ++j) chosen += std::exp(static_cast<double>(l[order[j]]) - l[order[0]]);
        double sum = 0;
        for (int64_t j = 0; j < k; ++j) {
          want[j] = std::exp(static_cast<double>(l[order[j]]) - l[order[0]]) / (gating == 0 ? all : chosen);
          sum += want[j];
        }
        for (int64_t j = 0; j < k; ++j) {
          ASSERT_EQ(ids[t * k + j], uint32_t(order[j])) << "token " << t << " choice " << j << " gating " << gating;
          ASSERT_NEAR(wts[t * k + j], renorm ? want[j] / sum : want[j], 1e-6) << "token " << t << " choice " << j;
        }
      }
      if (gating == 0 && renorm == 0) {
        EXPECT_EQ(ids[0], 1u);
        EXPECT_EQ(ids[1], 3u);
        EXPECT_EQ(ids[2], 4u);
        const std::vector<float> x = test::random_floats(n_tok * width, 14), rows = test::random_floats(n_tok * k * width, 15);
        const Buffer xb = upload(*d, x), rb = upload(*d, rows);
        const uint32_t cp[3] = {uint32_t(n_tok * width), uint32_t(width), uint32_t(k)};
        d->begin();
        d->dispatch(kernel("moe_combine"), {xb, rb, wb}, cp, sizeof cp, uint32_t((n_tok * width + 63) / 64));
        ASSERT_TRUE(d->finish().ok());
        const std::vector<float> got = download<float>(*d, xb, n_tok * width);
        for (int64_t t = 0; t < n_tok; ++t)
          for (int64_t i = 0; i < width; ++i) {
            double want_x = x[t * width + i];
            for (int64_t j = 0; j < k; ++j) want_x += static_cast<double>(wts[t * k + j]) * rows[(t * k + j) * width + i];
            ASSERT_NEAR(got[t * width + i], want_x, 1e-5) << "token " << t << " value " << i;
          }
      }
    }
}

// gpt-oss's clamped SwiGLU, with gates and ups past the clamps, against the
// CPU's; and each routing slot's row getting its own expert's bias.
TEST(Vulkan, ClampedSwigluAndExpertBiasMatchReference) {
  OPEN_DEVICE(d);
  const int64_t n = 640;
  std::vector<float> g = test::random_floats(n, 16), u = test::random_floats(n, 17);
  for (int64_t i = 0; i < n; i += 5) g[i] *= 30.0f, u[i] *= -30.0f;
  const Buffer gb = upload(*d, g), ub = upload(*d, u);
  const int64_t slots = 6, width = 24, n_exp = 4;
  const std::vector<float> y = test::random_floats(slots * width, 18), bias = test::random_floats(n_exp * width, 19);
  const std::vector<uint32_t> ids = {3, 0, 0, 2, 1, 3};
  const Buffer yb = upload(*d, y), bb = upload(*d, bias), ib = upload(*d, ids);
  const uint32_t pn = n, pe[2] = {uint32_t(slots * width), uint32_t(width)};
  d->begin();
  d->dispatch(kernel("swiglu_oai"), {gb, ub}, &pn, sizeof pn, (n + 63) / 64);
  d->dispatch(kernel("expert_bias"), {yb, bb, ib}, pe, sizeof pe, uint32_t((slots * width + 63) / 64));
  ASSERT_TRUE(d->finish().ok());
  const std::vector<float> gs = download<float>(*d, gb, n), ys = download<float>(*d, yb, slots * width);
  std::vector<float> ref(n);
  kernels::swiglu_oai_mul(ref.data(), g.data(), u.data(), n);
  for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(gs[i], ref[i], 1e-5f * (1 + std::fabs(ref[i]))) << "gate " << g[i] << " up " << u[i];
  for (int64_t s2 = 0; s2 < slots; ++s2)
    for (int64_t i = 0; i < width; ++i) ASSERT_EQ(ys[s2 * width + i], y[s2 * width + i] + bias[ids[s2] * width + i]);
}

// Gemma's kernels: GELU (tanh form) gating, gates far out included, where a
// device's tanh could overflow; a post-norm added into the residual; the
// final soft-cap.
TEST(Vulkan, GeluGatePostNormAndSoftcapMatchReference) {
  OPEN_DEVICE(d);
  const int64_t n = 1000, rows = 4, width = 250;
  std::vector<float> g = test::random_floats(n, 10);
  const std::vector<float> u = test::random_floats(n, 11), w = test::random_floats(width, 12);
  for (int64_t i = 0; i < n; i += 97) g[i] *= 300.0f;  // |g| up to a few hundred
  const std::vector<float> x = test::random_floats(rows * width, 13), y = test::random_floats(rows * width, 14);
  std::vector<float> logits = test::random_floats(n, 15);
  for (float& l : logits) l *= 100.0f;
  const Buffer gb = upload(*d, g), ub = upload(*d, u), wb = upload(*d, w), xb = upload(*d, x), yb = upload(*d, y),
               lb = upload(*d, logits);
  const uint32_t pn = n;
  const struct {
    uint32_t n;
    float eps;
  } pnorm{width, 1e-6f};
  const struct {
    uint32_t n;
    float cap;
  } pcap{n, 30.0f};
  d->begin();
  d->dispatch(kernel("gelu_gate"), {gb, ub}, &pn, sizeof pn, (n + 63) / 64);
  d->dispatch(kernel("rms_norm_add"), {yb, wb, xb}, &pnorm, sizeof pnorm, rows);
  d->dispatch(kernel("softcap"), {lb}, &pcap, sizeof pcap, (n + 63) / 64);
  ASSERT_TRUE(d->finish().ok());
  const std::vector<float> gs = download<float>(*d, gb, n), xs = download<float>(*d, xb, x.size()),
                           ls = download<float>(*d, lb, n);
  std::vector<float> ref(n);
  kernels::gelu_mul(ref.data(), g.data(), u.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_TRUE(std::isfinite(gs[i])) << "gate " << g[i];
    ASSERT_NEAR(gs[i], ref[i], 1e-5f * (1 + std::fabs(ref[i]))) << "gate " << g[i];
    ASSERT_NEAR(ls[i], 30.0f * std::tanh(logits[i] / 30.0f), 1e-4f);
  }
  std::vector<float> normed(width);
  for (int64_t r = 0; r < rows; ++r) {
    kernels::rmsnorm(normed.data(), y.data() + r * width, w.data(), width, 1e-6f);
    for (int64_t i = 0; i < width; ++i)
      ASSERT_NEAR(xs[r * width + i], x[r * width + i] + normed[i], 1e-5f * (1 + std::fabs(normed[i])));
  }
}

// kv_store then attention over a paged cache whose blocks are out of order,
// for grouped queries, a sliding window and a soft-cap, against softmax in
// double over the fp16-rounded query, keys and values.
TEST(Vulkan, AttentionOverPagedCacheMatchesReference) {
  OPEN_DEVICE(d);
  const int n_head = 4, n_kv = 2, hd = 80, kv_dim = n_kv * hd, n_pos = 150, max_blocks = 12;
  const std::vector<int32_t> table = {5, 0, 9, 3, 11, 1, 7, 2, 10, 4, 6, 8};  // sequence 0's blocks
  const std::vector<float> k = test::random_floats(n_pos * kv_dim, 10), v = test::random_floats(n_pos * kv_dim, 11);
  const std::vector<float> q = test::random_floats(3 * n_head * hd, 12);
  std::vector<uint32_t> slot(n_pos);
  for (int j = 0; j < n_pos; ++j) slot[j] = table[j / 16] * 16 + j % 16;
  const Buffer kb = upload(*d, k), vb = upload(*d, v), sb = upload(*d, slot), tb = upload(*d, table);
  const Buffer kc = upload(*d, std::vector<uint32_t>(max_blocks * 16 * kv_dim / 2));
  const Buffer vc = upload(*d, std::vector<uint32_t>(max_blocks * 16 * kv_dim / 2));
  const std::vector<uint32_t> rows = {0, 0, 0, 63, 0, n_pos - 1};  // (sequence, position) of 3 query rows
  const Buffer qb = upload(*d, q), rb = upload(*d, rows), ob = upload(*d, std::vector<float>(q.size()));
  const std::vector<float> sinks = {0.5f, -2.0f, 3.0f, 1.0f};  // a logit per head; 3.0 outweighs most scores
  const Buffer sinkb = upload(*d, sinks);
  for (const auto& [window, softcap, with_sinks] : {std::tuple{0u, 0.0f, false}, {50u, 0.0f, false}, {0u, 2.0f, false},
                                                    {50u, 0.0f, true}}) {
    const uint32_t half = kv_dim / 2;
    struct {
      uint32_t n_head, q_per_kv, head_dim, kv_dim, max_blocks, window;
      float scale, softcap;
      uint32_t has_sinks;
    } p{n_head, n_head / n_kv, hd, kv_dim, max_blocks, window, 1.0f / std::sqrt(float(hd)), softcap, with_sinks ? 1u : 0u};
    d->begin();
    d->dispatch(kernel("kv_store"), {kb, vb, sb, kc, vc}, &half, sizeof half, n_pos);
    d->dispatch(kernel("attention"), {qb, kc, vc, tb, rb, ob, sinkb}, &p, sizeof p, n_head, 3);
    ASSERT_TRUE(d->finish().ok());
    const std::vector<float> out = download<float>(*d, ob, q.size());
    for (int t = 0; t < 3; ++t)
      for (int h = 0; h < n_head; ++h) {
        const int end = static_cast<int>(rows[2 * t + 1]) + 1;
        const int begin = window > 0 && end > static_cast<int>(window) ? end - static_cast<int>(window) : 0;
        const int kvh = h / (n_head / n_kv);
        std::vector<double> s(end, 0);
        double mx = -1e300;
        for (int j = begin; j < end; ++j) {
          for (int i = 0; i < hd; ++i)
            s[j] += double(round_fp16(q[(t * n_head + h) * hd + i])) * round_fp16(k[j * kv_dim + kvh * hd + i]);
          s[j] *= p.scale;
          if (softcap > 0) s[j] = softcap * std::tanh(s[j] / softcap);
          mx = std::max(mx, s[j]);
        }
        if (with_sinks) mx = std::max<double>(mx, sinks[h]);
        double sum = with_sinks ? std::exp(sinks[h] - mx) : 0;  // the sink: in the sum, with no value
        for (int j = begin; j < end; ++j) sum += std::exp(s[j] - mx);
        for (int i = 0; i < hd; ++i) {
          double ref = 0;
          for (int j = begin; j < end; ++j) ref += std::exp(s[j] - mx) / sum * round_fp16(v[j * kv_dim + kvh * hd + i]);
          ASSERT_NEAR(out[(t * n_head + h) * hd + i], ref, 2e-5) << "row " << t << " head " << h << " value " << i
                                                                 << " window " << window << " softcap " << softcap
                                                                 << " sinks " << with_sinks;
        }
      }
  }
}

TEST(Vulkan, DispatchWithWrongBindingsFailsByName) {
  OPEN_DEVICE(d);
  const Buffer b = upload(*d, std::vector<float>(16));
  const uint32_t n = 16;
  d->begin();
  d->dispatch(kernel("silu_gate"), {b}, &n, sizeof n, 1);
  const Status s = d->finish();
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(test::contains(s.message(), "silu_gate takes 2 buffers")) << s.message();
}

// ---- Whole models against the CPU build ----

std::unique_ptr<Model> load(const std::string& path, const std::string& device, int n_seq = 1, int64_t n_batch = 64,
                            int threads = 2) {
  ModelOptions o;
  o.device = device;
  o.n_ctx = 128;
  o.n_batch = n_batch;
  o.n_seq_max = n_seq;
  o.n_threads = threads;
  auto m = Model::load(path, o);
  EXPECT_TRUE(m.ok()) << m.status().message();
  return m.ok() ? std::move(m).value() : nullptr;
}

std::vector<int32_t> prompt(int n, int seed) {
  std::vector<int32_t> t(n);
  for (int i = 0; i < n; ++i) t[i] = 3 + (i * 37 + seed * 101) % 200;
  return t;
}

int32_t argmax(const float* l, int64_t n) { return static_cast<int32_t>(std::max_element(l, l + n) - l); }

// The logits after a prompt and after each of `steps` greedy tokens.
std::vector<std::vector<float>> greedy_logits(Model& m, const std::vector<int32_t>& p, int steps) {
  const int64_t V = m.config().n_vocab;
  std::vector<std::vector<float>> out;
  auto l = m.eval(p.data(), static_cast<int64_t>(p.size()));
  EXPECT_TRUE(l.ok()) << l.status().message();
  if (!l.ok()) return out;
  out.emplace_back(*l, *l + V);
  for (int s = 0; s < steps; ++s) {
    const int32_t t = argmax(out.back().data(), V);
    l = m.eval(&t, 1);
    EXPECT_TRUE(l.ok()) << l.status().message();
    if (!l.ok()) return out;
    out.emplace_back(*l, *l + V);
  }
  return out;
}

std::vector<int32_t> tokens_of(const std::vector<std::vector<float>>& logits) {
  std::vector<int32_t> t;
  for (const auto& l : logits) t.push_back(argmax(l.data(), static_cast<int64_t>(l.size())));
  return t;
}

struct ModelCase {
  std::string preset, type;
};
// So that a failing case names its preset and type rather than its bytes.
void PrintTo(const ModelCase& m, std::ostream* os) { *os << m.preset << " " << m.type; }
class VulkanModel : public ::testing::TestWithParam<ModelCase> {};

// Successor-chain models: 32 greedy tokens equal the CPU's.
TEST_P(VulkanModel, GreedyTokensEqualCpu) {
  OPEN_DEVICE(d);
  d.reset();
  const std::string path = test::synth_model(GetParam().preset, GetParam().type);
  auto cpu = load(path, "cpu"), gpu = load(path, "vulkan");
  ASSERT_TRUE(cpu && gpu);
  const std::vector<int32_t> p = prompt(8, 1);
  EXPECT_EQ(tokens_of(greedy_logits(*gpu, p, 31)), tokens_of(greedy_logits(*cpu, p, 31)));
}

// Plain random weights, where every layer matters: the full logits after a
// prompt and 8 decode steps stay within 1% of the logits' spread of the
// CPU's. (The CPU encodes activations as 8-bit blocks for q8_0/q4_0
// weights; the GPU kernels multiply the floats, so the two differ by that
// rounding, not only by summation order.)
TEST_P(VulkanModel, LogitsMatchCpuOnPlainWeights) {
  OPEN_DEVICE(d);
  d.reset();
  const std::string path = test::synth_model(GetParam().preset, GetParam().type, 42, /*plain=*/true);
  auto cpu = load(path, "cpu"), gpu = load(path, "vulkan");
  ASSERT_TRUE(cpu && gpu);
  const std::vector<int32_t> p = prompt(12, 2);
  const auto want = greedy_logits(*cpu, p, 8);
  // Feed the GPU the CPU's tokens, so that both see the same sequence.
  const int64_t V = cpu->config().n_vocab;
  auto l = gpu->eval(p.data(), static_cast<int64_t>(p.size()));
  ASSERT_TRUE(l.ok()) << l.status().message();
  double worst = 0;
  for (size_t s = 0; s < want.size(); ++s) {
    if (s > 0) {
      const int32_t t = argmax(want[s - 1].data(), V);
      l = gpu->eval(&t, 1);
      ASSERT_TRUE(l.ok());
    }
    const auto [lo, hi] = std::minmax_element(want[s].begin(), want[s].end());
    const double spread = *hi - *lo;
    for (int64_t i = 0; i < V; ++i) {
      const double err = std::fabs((*l)[i] - want[s][i]) / spread;
      worst = std::isnan(err) ? INFINITY : std::max(worst, err);  // a NaN logit fails, never slips past max()
    }
  }
  RecordProperty("worst_logit_error_over_spread", std::to_string(worst));
  EXPECT_LT(worst, 0.01) << "worst |gpu - cpu| / (max - min of the cpu logits)";
}

INSTANTIATE_TEST_SUITE_P(Presets, VulkanModel,
                         ::testing::Values(ModelCase{"tiny", "q8_0"}, ModelCase{"tiny", "q4_0"},
                                           ModelCase{"tiny", "f16"}, ModelCase{"tiny", "f32"},
                                           ModelCase{"tiny-qwen3", "q8_0"}, ModelCase{"tiny-qwen3", "q4_0"},
                                           ModelCase{"smollm2-135m", "q8_0"}, ModelCase{"smollm2-135m", "q4_0"},
                                           // K-quants, with the Q5_0 fallback for rows not a multiple of 256
                                           ModelCase{"tiny", "q4_k"}, ModelCase{"tiny", "q6_k"},
                                           ModelCase{"tiny-qwen3", "q5_k"}, ModelCase{"smollm2-135m", "q4_k"},
                                           // GELU gating, post-norms, a rope base per layer kind and windows of 8
                                           // (Gemma 3); 26 layers with soft-capped scores and logits (Gemma 2);
                                           // fused QKV and gate/up rows, LongRoPE factors, a window of 16 (Phi-3)
                                           ModelCase{"tiny-gemma3", "q8_0"}, ModelCase{"tiny-gemma3", "q4_k"},
                                           ModelCase{"tiny-gemma2", "q4_0"}, ModelCase{"tiny-phi3", "q8_0"},
                                           ModelCase{"tiny-phi3", "q4_0"},
                                           // mixtures of experts routed on the device: 8 of 64 (Qwen3-MoE), OLMoE's
                                           // Q/K norms over whole rows, 2 of 8 (Mixtral)
                                           // (OLMoE in q4_k meets a near-tie on the CPU itself at step 19: its top two
                                           // logits 0.65% of their spread apart)
                                           ModelCase{"tiny-qwen3moe", "q4_k"}, ModelCase{"tiny-olmoe", "q8_0"},
                                           ModelCase{"tiny-mixtral", "q4_0"},
                                           // sinks, output and expert biases, clamped SwiGLU (gpt-oss; quantized
                                           // files below)
                                           ModelCase{"tiny-gpt-oss", "f16"}),
                         [](const auto& info) {
                           return test::test_name(info.param.preset + "_" + info.param.type);
                         });

// gpt-oss quantized, MXFP4 experts included: greedy tokens only. Its router
// keeps the top 4 of 32 and takes a softmax over those alone, so an expert
// that enters or leaves the 4 moves a layer's output by a whole share. The
// CPU rounds activations to 8 bits for these types, and that flips near-tied
// choices: measured here, the q8_0 file's logits stayed within 0.65% of the
// spread for 7 steps and then jumped to 8% at one step, while in f32 they
// agree to 3e-6 of it (the f16 case above holds the 1% bound).
TEST(VulkanModel, GptOssQuantizedGreedyTokensEqualCpu) {
  OPEN_DEVICE(d);
  d.reset();
  for (const char* type : {"q8_0", "mxfp4"}) {
    const std::string path = test::synth_model("tiny-gpt-oss", type);
    auto cpu = load(path, "cpu"), gpu = load(path, "vulkan");
    ASSERT_TRUE(cpu && gpu);
    const std::vector<int32_t> p = prompt(8, 1);
    EXPECT_EQ(tokens_of(greedy_logits(*gpu, p, 31)), tokens_of(greedy_logits(*cpu, p, 31))) << type;
  }
}

// A sequence's logits are bit for bit the same alone, beside other
// sequences in one batch, split over passes of another size, and on any
// host thread count.
TEST(VulkanModel, BatchAndThreadInvariance) {
  OPEN_DEVICE(d);
  d.reset();
  // A dense model, and a mixture whose batch routes every token on its own.
  for (const char* preset : {"tiny-qwen3", "tiny-qwen3moe"}) {
    SCOPED_TRACE(preset);
    const std::string path = test::synth_model(preset, "q8_0", 42, true);
    auto alone = load(path, "vulkan", 1, 64, 1);
    ASSERT_TRUE(alone);
    const std::vector<int32_t> a = prompt(20, 3), b = prompt(9, 4), c = prompt(33, 5);
    auto la = alone->eval(a.data(), static_cast<int64_t>(a.size()));
    ASSERT_TRUE(la.ok());
    const int64_t V = alone->config().n_vocab;
    const std::vector<float> want(*la, *la + V);
    for (const int64_t n_batch : {int64_t{64}, int64_t{7}}) {
      auto many = load(path, "vulkan", 3, n_batch, 2);
      ASSERT_TRUE(many);
      const BatchItem items[3] = {{1, b.data(), static_cast<int64_t>(b.size())},
                                  {0, a.data(), static_cast<int64_t>(a.size())},
                                  {2, c.data(), static_cast<int64_t>(c.size())}};
      auto l = many->eval_batch(items, 3);
      ASSERT_TRUE(l.ok()) << l.status().message();
      EXPECT_EQ(0, std::memcmp(*l + V, want.data(), V * sizeof(float))) << "batch of 3, passes of " << n_batch;
    }
  }
}

// Embeddings on the device: the pass's last residual rows come back and are
// pooled on the host as on the CPU; two inputs in one batch, one of them
// split over two passes, against the CPU's embeddings of the same inputs.
TEST(VulkanModel, EmbeddingsMatchCpu) {
  OPEN_DEVICE(d);
  d.reset();
  const std::string path = test::synth_model("tiny-qwen3", "f16", 42, /*plain=*/true);
  auto cpu = load(path, "cpu", 2, 64), gpu = load(path, "vulkan", 2, 7);  // passes of 7 rows: a input in two
  ASSERT_TRUE(cpu && gpu);
  const std::vector<int32_t> a = prompt(11, 6), b = prompt(5, 7);
  BatchItem items[2] = {{0, a.data(), static_cast<int64_t>(a.size())}, {1, b.data(), static_cast<int64_t>(b.size())}};
  for (BatchItem& it : items) it.logits = false, it.embed = true;
  const int64_t E = cpu->config().n_embd;
  ASSERT_TRUE(cpu->eval_batch(items, 2).ok());
  const std::vector<float> want(cpu->embeddings(), cpu->embeddings() + 2 * E);
  auto got = gpu->eval_batch(items, 2);
  ASSERT_TRUE(got.ok()) << got.status().message();
  for (int item = 0; item < 2; ++item) {
    double scale = 0;
    for (int64_t i = 0; i < E; ++i) scale = std::max<double>(scale, std::fabs(want[item * E + i]));
    ASSERT_GT(scale, 0) << "the CPU's embedding is all zeros";
    for (int64_t i = 0; i < E; ++i)
      ASSERT_NEAR(gpu->embeddings()[item * E + i], want[item * E + i], 1e-3 * scale) << "item " << item << " value " << i;
  }
}

// A weight matrix larger than the device binds at once is uploaded as
// parts of consecutive rows: Qwen2.5-0.5B's tied output head in q8_0 is
// 145 MB, and lavapipe binds 128 MiB.
TEST(VulkanModel, SplitsMatricesLargerThanABufferByRows) {
  OPEN_DEVICE(d);
  const int64_t limit = d->max_buffer_bytes();
  d.reset();
  const std::string path = test::synth_model("qwen2.5-0.5b", "q8_0");
  auto cpu = load(path, "cpu"), gpu = load(path, "vulkan");
  ASSERT_TRUE(cpu && gpu);
  if (limit > 160 * 1024 * 1024) GTEST_SKIP() << "this device binds " << limit << " bytes: nothing to split";
  const std::vector<int32_t> p = prompt(8, 1);
  EXPECT_EQ(tokens_of(greedy_logits(*gpu, p, 7)), tokens_of(greedy_logits(*cpu, p, 7)));
}

// A device that binds little (OSPREY_VULKAN_MAX_BUFFER lowers the limit on
// any device): stacked experts are uploaded in parts of whole experts, and a
// pass that wants more rows of logits than the logits buffer holds makes the
// rest in passes of the output head alone. Either way the logits are the
// unsplit ones, bit for bit.
TEST(VulkanModel, SplitsExpertsAndLogitsToWhatTheDeviceBinds) {
  OPEN_DEVICE(d);
  d.reset();
  struct Case {
    const char* preset;
    const char* cap;
    int64_t n_batch, logit_rows;
  };
  // tiny-qwen3moe: 8 experts of 36864 packed bytes each, 3 to a part. tiny-qwen3: 2560 bytes a row of
  // logits, 39 rows to a pass of 48.
  for (const Case& k : {Case{"tiny-qwen3moe", "140000", 16, 16}, Case{"tiny-qwen3", "100000", 48, 39}}) {
    SCOPED_TRACE(k.preset);
    const std::string path = test::synth_model(k.preset, "q8_0", 42, /*plain=*/true);
    auto whole = load(path, "vulkan", 1, k.n_batch);
    ASSERT_TRUE(whole);
    setenv("OSPREY_VULKAN_MAX_BUFFER", k.cap, 1);
    auto split = load(path, "vulkan", 1, k.n_batch);
    unsetenv("OSPREY_VULKAN_MAX_BUFFER");
    ASSERT_TRUE(split);
    EXPECT_GT(split->device_pass()->weight_parts(), whole->device_pass()->weight_parts()) << "nothing was split";
    EXPECT_EQ(whole->device_pass()->logit_rows(), k.n_batch);
    EXPECT_EQ(split->device_pass()->logit_rows(), k.logit_rows);
    const std::vector<int32_t> p = prompt(40, 8);
    BatchItem item{0, p.data(), static_cast<int64_t>(p.size())};
    item.all_logits = true;
    const int64_t V = whole->config().n_vocab, n = static_cast<int64_t>(p.size());
    auto a = whole->eval_batch(&item, 1);
    ASSERT_TRUE(a.ok()) << a.status().message();
    const std::vector<float> want(*a, *a + n * V);
    auto b = split->eval_batch(&item, 1);
    ASSERT_TRUE(b.ok()) << b.status().message();
    for (int64_t r = 0; r < n; ++r)
      ASSERT_EQ(0, std::memcmp(*b + r * V, want.data() + r * V, V * sizeof(float))) << "row " << r;
  }
  ModelOptions o;
  o.device = "vulkan";
  for (const char* cap : {"12", "-5000", "lots"}) {
    setenv("OSPREY_VULKAN_MAX_BUFFER", cap, 1);
    auto bad = Model::load(test::synth_model("tiny", "q8_0"), o);
    unsetenv("OSPREY_VULKAN_MAX_BUFFER");
    ASSERT_FALSE(bad.ok()) << cap;
    EXPECT_TRUE(test::contains(bad.status().message(), std::string("OSPREY_VULKAN_MAX_BUFFER=") + cap + " is not a byte count"))
        << bad.status().message();
  }
}

// bench --device: the device's timestamps give each kernel's share of a pass.
TEST(VulkanModel, TimesEachOperationWithTheDevicesTimestamps) {
  OPEN_DEVICE(d);
  d.reset();
  auto gpu = load(test::synth_model("tiny", "q8_0"), "vulkan");
  ASSERT_TRUE(gpu);
  DevicePass* dp = gpu->device_pass();
  ASSERT_NE(dp, nullptr);
  if (!dp->time_operations(true)) GTEST_SKIP() << "this Vulkan device has no timestamp queries";
  const std::vector<int32_t> p = prompt(8, 1);
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(gpu->eval(p.data(), static_cast<int64_t>(p.size())).ok());
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double total = 0;
  std::vector<std::string> kernels;
  for (const auto& op : dp->operation_times()) {
    EXPECT_GT(op.calls, 0) << op.kernel;
    EXPECT_GE(op.seconds, 0) << op.kernel;
    total += op.seconds;
    kernels.push_back(op.kernel);
  }
  for (const char* k : {"rms_norm", "mat_q8_0", "attention", "kv_store", "silu_gate"})
    EXPECT_NE(std::find(kernels.begin(), kernels.end(), k), kernels.end()) << k;
  EXPECT_GT(total, 0);
  EXPECT_LE(total, wall);
  // Off again: later passes add nothing.
  ASSERT_TRUE(dp->time_operations(false));
  auto calls = [&] {
    int64_t n = 0;
    for (const auto& op : dp->operation_times()) n += op.calls;
    return n;
  };
  const int64_t before = calls();
  const int32_t next = 3;
  ASSERT_TRUE(gpu->eval(&next, 1).ok());
  EXPECT_EQ(calls(), before);
  dp->clear_operation_times();
  EXPECT_TRUE(dp->operation_times().empty());
}

// A pass's commands are recorded once per shape and replayed: decoding
// records its first step only, and every replay still sees the new
// positions, cache slots and tokens (its logits equal a fresh recording's).
TEST(VulkanModel, RecordsEachPassShapeOnceAndReplaysIt) {
  OPEN_DEVICE(d);
  d.reset();
  const std::string path = test::synth_model("tiny-gemma3", "q8_0", 42, true);
  auto gpu = load(path, "vulkan");
  ASSERT_TRUE(gpu);
  DevicePass* dp = gpu->device_pass();
  ASSERT_NE(dp, nullptr);
  ASSERT_EQ(dp->passes_recorded(), 0);
  const std::vector<int32_t> p = prompt(10, 6);
  const auto replayed = greedy_logits(*gpu, p, 6);
  EXPECT_EQ(dp->passes_recorded(), 2) << "the prompt, then one decode step replayed 5 times";
  // Timing records every pass afresh: the same logits from new commands.
  auto fresh = load(path, "vulkan");
  ASSERT_TRUE(fresh);
  if (fresh->device_pass()->time_operations(true)) {
    const auto want = greedy_logits(*fresh, p, 6);
    ASSERT_EQ(want.size(), replayed.size());
    for (size_t s = 0; s < want.size(); ++s) EXPECT_EQ(want[s], replayed[s]) << "step " << s;
    EXPECT_EQ(fresh->device_pass()->passes_recorded(), 0);
  }
  // More shapes than are kept: the oldest is recorded again when it returns.
  gpu->reset();
  const int64_t before = dp->passes_recorded();
  for (int n = 1; n <= 17; ++n) {
    gpu->reset();
    const std::vector<int32_t> q = prompt(n + 1, n);
    ASSERT_TRUE(gpu->eval(q.data(), static_cast<int64_t>(q.size())).ok());
  }
  EXPECT_EQ(dp->passes_recorded(), before + 16) << "17 prompt lengths, one of which (10) was kept";
  auto again = [&](int n) {
    gpu->reset();
    const std::vector<int32_t> q = prompt(n, 1);
    EXPECT_TRUE(gpu->eval(q.data(), n).ok());
    return dp->passes_recorded();
  };
  EXPECT_EQ(again(2), before + 17) << "the least recently used shapes (1 and 2 rows) were let go";
  EXPECT_EQ(again(18), before + 17) << "the newest is kept";
}

TEST(VulkanModel, RefusesWhatItCannotRunByName) {
  OPEN_DEVICE(d);
  d.reset();
  ModelOptions o;
  o.device = "vulkan";
  o.n_ctx = 64;
  auto encoder = Model::load(test::synth_model("tiny-bert", "q8_0"), o);
  ASSERT_FALSE(encoder.ok());
  EXPECT_TRUE(test::contains(encoder.status().message(), "the bert family; encoders")) << encoder.status().message();
  // A type with no GPU kernel is named once, with the first tensor and a count.
  auto q3_k = Model::load(test::synth_model("tiny", "q3_k"), o);
  ASSERT_FALSE(q3_k.ok());
  EXPECT_TRUE(test::contains(q3_k.status().message(), "lacks: q3_k weights (blk.0.attn_q.weight and 14 more)"))
      << q3_k.status().message();
  EXPECT_TRUE(test::contains(q3_k.status().message(), "--device cpu runs it")) << q3_k.status().message();
  o.cache_type_k = DType::kQ8_0;
  auto q8cache = Model::load(test::synth_model("tiny", "q8_0"), o);
  ASSERT_FALSE(q8cache.ok());
  EXPECT_TRUE(test::contains(q8cache.status().message(), "f16 only")) << q8cache.status().message();
}

TEST(VulkanCli, NamesTheDeviceAndExplainsWhenThereIsNone) {
  const std::string path = test::synth_model("tiny", "q8_0");
  // No driver to load: the message says there is no device, not a crash.
  const auto none = test::run_command("VK_ICD_FILENAMES=/nonexistent/icd.json " + test::osprey_binary() + " run -m " +
                                      path + " -p hi -n 2 --device vulkan");
  EXPECT_NE(none.exit_code, 0);
  EXPECT_TRUE(test::contains(none.err, "no Vulkan device found")) << none.err;
  OPEN_DEVICE(d);
  const auto inspect = test::run_osprey("inspect --no-tensors --device vulkan " + path);
  EXPECT_EQ(inspect.exit_code, 0) << inspect.err;
  EXPECT_TRUE(test::contains(inspect.out, "device:      vulkan (" + d->adapter() + ") runs this model")) << inspect.out;
  const auto bert = test::run_osprey("inspect --no-tensors --device vulkan " + test::synth_model("tiny-bert", "q8_0"));
  EXPECT_TRUE(test::contains(bert.out, "vulkan cannot run this model; it lacks: the bert family")) << bert.out;
  const auto bad = test::run_osprey("run -m " + path + " -p hi --device metal");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_TRUE(test::contains(bad.err, "--device")) << bad.err;
  const auto bench = test::run_osprey("bench -m " + path + " -p 4 -n 2 -r 1 --device vulkan");
  EXPECT_EQ(bench.exit_code, 0) << bench.err;
  EXPECT_TRUE(test::contains(bench.out, "tg2 on the device:")) << bench.out;
  EXPECT_TRUE(test::contains(bench.out, "mat_q8_0")) << bench.out;
  // WebGPU is the WebAssembly build's, in a browser; natively that is said.
  const auto webgpu = test::run_osprey("run -m " + path + " -p hi --device webgpu");
  EXPECT_NE(webgpu.exit_code, 0);
  EXPECT_TRUE(test::contains(webgpu.err, "no WebGPU back end: WebGPU runs in the WebAssembly build")) << webgpu.err;
  // bench names the script that measures it there, before printing a table.
  const auto webgpu_bench = test::run_osprey("bench -m " + path + " -p 4 -n 2 -r 1 --device webgpu");
  EXPECT_NE(webgpu_bench.exit_code, 0);
  EXPECT_TRUE(test::contains(webgpu_bench.err, "node scripts/bench_wasm.mjs MODEL --device webgpu")) << webgpu_bench.err;
  EXPECT_EQ(webgpu_bench.out, "");
}

}  // namespace
}  // namespace osprey
