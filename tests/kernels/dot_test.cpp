// Every dot kernel variant the build compiled is checked against the scalar
// reference on random data of awkward lengths. Variants this CPU cannot run
// are reported as skipped.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/planar_act.h"
#include "kernels/repack.h"
#include "quant/quant.h"
#include "test_util.h"
#if defined(__EMSCRIPTEN__)
#include "kernels/wasm/wasm.h"
#endif

namespace osprey {
namespace {

using kernels::Isa;

struct Case {
  Isa isa;
  DType type;
};

class DotVariant : public ::testing::TestWithParam<Case> {};

TEST_P(DotVariant, MatchesScalarReference) {
  const Case c = GetParam();
  const auto avail = kernels::available_isas();
  if (std::find(avail.begin(), avail.end(), c.isa) == avail.end())
    GTEST_SKIP() << kernels::isa_name(c.isa) << " is compiled but this CPU cannot run it";
  const QuantOps* ops = quant_ops(c.type);
  const QuantOps* act = quant_ops(ops->dot_type);
  const kernels::DotFn fast = kernels::dot_kernel(c.type, c.isa);
  ASSERT_NE(fast, nullptr);
  // 1, 3 and 31 blocks, and a row of 11 blocks at 100x magnitude.
  for (int64_t blocks : {1, 3, 31, 11}) {
    const int64_t n = blocks * std::max<int64_t>(ops->block_len, 32);
    const float scale = blocks == 11 ? 100.0f : 1.0f;
    int worst_row = -1;
    double worst = 0;
    for (int row = 0; row < 8; ++row) {
      const auto w = test::random_floats(n, 100 + row, scale);
      const auto a = test::random_floats(n, 200 + row, scale);
      std::vector<uint8_t> qw(quant_row_bytes(*ops, n)), qa(quant_row_bytes(*act, n));
      ops->quantize(w.data(), qw.data(), n);
      act->quantize(a.data(), qa.data(), n);
      const float ref = ops->dot(qw.data(), qa.data(), n);
      const float got = fast(qw.data(), qa.data(), n);
      // Both sum the same exact integer (or float) products; only the order
      // of float additions differs, so the gap is a few ulps of the sum of
      // magnitudes.
      double mag = 0;
      for (int64_t i = 0; i < n; ++i) mag += std::fabs(static_cast<double>(w[i]) * a[i]);
      const double err = std::fabs(static_cast<double>(got) - ref) / (mag + 1e-30);
      if (err > worst) worst = err, worst_row = row;
    }
    EXPECT_LT(worst, 2e-6) << kernels::isa_name(c.isa) << " " << dtype_name(c.type) << " n=" << n
                           << ": worst relative error " << worst << " at row " << worst_row;
  }
}

// The multi-row kernels, with their own activation encoding, against the
// scalar reference: 1 to 6 rows (full groups of 4 and remainders) and odd
// block counts (the paired loops' tail).
TEST_P(DotVariant, RowKernelMatchesScalarReference) {
  const Case c = GetParam();
  const auto avail = kernels::available_isas();
  if (std::find(avail.begin(), avail.end(), c.isa) == avail.end())
    GTEST_SKIP() << kernels::isa_name(c.isa) << " is compiled but this CPU cannot run it";
  const QuantOps* ops = quant_ops(c.type);
  const QuantOps* ref_act = quant_ops(ops->dot_type);
  const kernels::RowKernel k = kernels::row_kernel(c.type, c.isa);
  for (int64_t blocks : {1, 2, 3, 31}) {
    const int64_t n = blocks * std::max<int64_t>(ops->block_len, 32);
    const int64_t row_bytes = quant_row_bytes(*ops, n);
    for (int64_t n_rows = 1; n_rows <= 6; ++n_rows) {
      const auto w = test::random_floats(n * n_rows, 300 + n_rows);
      const auto a = test::random_floats(n, 400 + n_rows, 3.0f);
      std::vector<uint8_t> qw(row_bytes * n_rows), ref_a(quant_row_bytes(*ref_act, n)), act(k.encoded_bytes(n));
      for (int64_t r = 0; r < n_rows; ++r) ops->quantize(w.data() + r * n, qw.data() + r * row_bytes, n);
      ref_act->quantize(a.data(), ref_a.data(), n);
      k.encode_row(a.data(), act.data(), n);
      std::vector<float> got(n_rows);
      k.dots(qw.data(), row_bytes, n_rows, act.data(), n, got.data());
      // The prefill tile: the same activation row repeated for 1-4 tokens,
      // the last token's row scaled by -2 so each token's column differs.
      for (int n_tok = 1; n_tok <= 4; ++n_tok) {
        const int64_t stride = k.encoded_bytes(n);
        std::vector<uint8_t> acts(stride * n_tok);
        std::vector<float> scaled(a.size());
        for (size_t i = 0; i < a.size(); ++i) scaled[i] = -2.0f * a[i];
        for (int t = 0; t < n_tok; ++t) k.encode_row(t == n_tok - 1 && t > 0 ? scaled.data() : a.data(), acts.data() + t * stride, n);
        std::vector<float> tile(n_tok * 8, NAN);
        k.tile(qw.data(), row_bytes, n_rows, acts.data(), stride, n_tok, n, tile.data(), 8);
        for (int t = 0; t < n_tok; ++t)
          for (int64_t r = 0; r < n_rows; ++r) {
            const float factor = t == n_tok - 1 && t > 0 ? -2.0f : 1.0f;
            double mag = 0;
            for (int64_t i = 0; i < n; ++i) mag += std::fabs(static_cast<double>(w[r * n + i]) * a[i]);
            // Re-encoding a scaled row rounds differently, so the scaled token is checked loosely.
            const double tol = factor == 1.0f ? 2e-6 * mag : 2e-2 * mag;
            EXPECT_NEAR(tile[t * 8 + r], factor * got[r], tol)
                << kernels::isa_name(c.isa) << " " << dtype_name(c.type) << " tile tokens=" << n_tok << " token " << t
                << " row " << r;
          }
      }
      for (int64_t r = 0; r < n_rows; ++r) {
        const float want = ops->dot(qw.data() + r * row_bytes, ref_a.data(), n);
        double mag = 0;
        for (int64_t i = 0; i < n; ++i) mag += std::fabs(static_cast<double>(w[r * n + i]) * a[i]);
        EXPECT_NEAR(got[r], want, 2e-6 * mag) << kernels::isa_name(c.isa) << " " << dtype_name(c.type) << " n=" << n
                                              << " rows=" << n_rows << " row " << r;
      }
    }
  }
}

// Kernels that read a repacked layout: rows repacked as a model does at
// load, against the scalar reference on the file's rows. Block counts cover
// the groups of eight scales, odd pairs and a lone last block. A row's
// result must not depend on the rows or tokens beside it, bit for bit,
// since batching relies on that. Matrices of 5 rows get the per-row
// layouts; of 24 rows, also those that interleave rows in groups of 8;
// of 48, those of 16 too; of 64, those of 32 (F16/BF16). The
// prompt is two of the kernel's token tiles and one token more, and each
// token also leads tiles of every size the kernel has.
class PackedKernel : public ::testing::TestWithParam<std::tuple<Case, int64_t>> {};

TEST_P(PackedKernel, MatchesScalarReference) {
  const auto [c, n_rows] = GetParam();
  const auto avail = kernels::available_isas();
  if (std::find(avail.begin(), avail.end(), c.isa) == avail.end())
    GTEST_SKIP() << kernels::isa_name(c.isa) << " is compiled but this CPU cannot run it";
  const kernels::RowKernel k = kernels::packed_row_kernel(c.type, c.isa, n_rows);
  if (k.repack == nullptr) GTEST_SKIP() << "no repacked kernel for " << dtype_name(c.type) << " at this level";
  ASSERT_EQ(n_rows % k.row_group, 0) << "a kernel whose row groups do not divide the matrix";
  const int64_t g = k.row_group;
  const QuantOps* ops = quant_ops(c.type);
  const QuantOps* ref_act = quant_ops(ops->dot_type);
  for (int64_t blocks : {1, 2, 3, 7, 8, 9, 17, 18, 31, 64}) {
    const int64_t n = blocks * ops->block_len;
    const int64_t row_bytes = quant_row_bytes(*ops, n);
    const auto w = test::random_floats(n * n_rows, 500 + blocks);
    std::vector<uint8_t> file(row_bytes * n_rows), packed(row_bytes * n_rows);
    for (int64_t r = 0; r < n_rows; ++r) ops->quantize(w.data() + r * n, file.data() + r * row_bytes, n);
    for (int64_t r = 0; r < n_rows; r += g) k.repack(file.data() + r * row_bytes, packed.data() + r * row_bytes, n);
    ASSERT_NE(k.unpack, nullptr);
    for (int64_t r = 0; r < n_rows; ++r) {
      std::vector<uint8_t> back(row_bytes);
      k.unpack(packed.data() + r / g * g * row_bytes, r % g, back.data(), n);
      ASSERT_EQ(std::memcmp(back.data(), file.data() + r * row_bytes, row_bytes), 0)
          << "unpack(repack(row)) differs, blocks=" << blocks << " row " << r;
    }
    const int n_tok = 2 * k.tile_tokens + 1;
    const int64_t stride = k.encoded_bytes(n);
    std::vector<uint8_t> acts(stride * n_tok), ref_a(quant_row_bytes(*ref_act, n));
    std::vector<std::vector<float>> xs;
    for (int t = 0; t < n_tok; ++t) {
      xs.push_back(test::random_floats(n, 600 + 10 * blocks + t, 3.0f));
      k.encode_row(xs[t].data(), acts.data() + t * stride, n);
    }
    std::vector<float> tile(n_tok * n_rows);
    k.tile(packed.data(), row_bytes, n_rows, acts.data(), stride, n_tok, n, tile.data(), n_rows);
    for (int t = 0; t < n_tok; ++t) {
      ref_act->quantize(xs[t].data(), ref_a.data(), n);
      std::vector<float> alone(n_rows);
      k.dots(packed.data(), row_bytes, n_rows, acts.data() + t * stride, n, alone.data());
      for (int64_t r = 0; r < n_rows; ++r) {
        const float want = ops->dot(file.data() + r * row_bytes, ref_a.data(), n);
        double mag = 0;
        for (int64_t i = 0; i < n; ++i) mag += std::fabs(static_cast<double>(w[r * n + i]) * xs[t][i]);
        EXPECT_NEAR(alone[r], want, 2e-6 * mag) << kernels::isa_name(c.isa) << " " << dtype_name(c.type)
                                                << " blocks=" << blocks << " token " << t << " row " << r;
        EXPECT_EQ(tile[t * n_rows + r], alone[r]) << "a tile of " << n_tok << " tokens changed token " << t << " row " << r;
        // Its own group of rows alone (a single row for per-row layouts).
        std::vector<float> own(g);
        k.dots(packed.data() + r / g * g * row_bytes, row_bytes, g, acts.data() + t * stride, n, own.data());
        EXPECT_EQ(own[r % g], alone[r]) << "row " << r << " in its group alone differs from row " << r << " among " << n_rows;
      }
      // Every tile size the kernel has, as the first tile of a prompt of
      // that many tokens: the split of a prompt into tiles changes no bits.
      for (int nt = 2; nt <= k.tile_tokens && t + nt <= n_tok; ++nt) {
        std::vector<float> part(nt * n_rows);
        k.tile(packed.data(), row_bytes, n_rows, acts.data() + t * stride, stride, nt, n, part.data(), n_rows);
        for (int64_t r = 0; r < n_rows; ++r)
          EXPECT_EQ(part[r], alone[r]) << "a tile of " << nt << " tokens changed token " << t << " row " << r;
      }
    }
  }
}

// F16 rows interleaved in groups of 32 are one layout at both x86 levels,
// and each output is the same lane-wise FMA chain over k: a model repacked
// once answers with the same bits whether it runs at AVX2 or AVX-512.
TEST(PackedKernel, F16GroupsOf32AgreeAcrossLevels) {
  const auto avail = kernels::available_isas();
  if (std::find(avail.begin(), avail.end(), Isa::kAvx512) == avail.end())
    GTEST_SKIP() << "this CPU cannot run AVX-512, so there is only one x86 level to compare";
  const int64_t n_rows = 64, n = 200, n_tok = 5;
  const kernels::RowKernel lo = kernels::packed_row_kernel(DType::kF16, Isa::kAvx2, n_rows);
  const kernels::RowKernel hi = kernels::packed_row_kernel(DType::kF16, Isa::kAvx512, n_rows);
  ASSERT_EQ(lo.row_group, 32);
  ASSERT_EQ(hi.row_group, 32);
  const QuantOps* ops = quant_ops(DType::kF16);
  const int64_t row_bytes = quant_row_bytes(*ops, n);
  const auto w = test::random_floats(n * n_rows, 901);
  std::vector<uint8_t> file(row_bytes * n_rows), packed_lo(file.size()), packed_hi(file.size());
  for (int64_t r = 0; r < n_rows; ++r) ops->quantize(w.data() + r * n, file.data() + r * row_bytes, n);
  for (int64_t r = 0; r < n_rows; r += 32) {
    lo.repack(file.data() + r * row_bytes, packed_lo.data() + r * row_bytes, n);
    hi.repack(file.data() + r * row_bytes, packed_hi.data() + r * row_bytes, n);
  }
  ASSERT_EQ(packed_lo, packed_hi);
  const int64_t stride_lo = lo.encoded_bytes(n), stride_hi = hi.encoded_bytes(n);
  std::vector<uint8_t> acts_lo(stride_lo * n_tok), acts_hi(stride_hi * n_tok);
  for (int t = 0; t < n_tok; ++t) {
    const auto x = test::random_floats(n, 910 + t, 3.0f);
    lo.encode_row(x.data(), acts_lo.data() + t * stride_lo, n);
    hi.encode_row(x.data(), acts_hi.data() + t * stride_hi, n);
  }
  std::vector<float> got_lo(n_tok * n_rows), got_hi(n_tok * n_rows);
  lo.tile(packed_lo.data(), row_bytes, n_rows, acts_lo.data(), stride_lo, n_tok, n, got_lo.data(), n_rows);
  hi.tile(packed_hi.data(), row_bytes, n_rows, acts_hi.data(), stride_hi, n_tok, n, got_hi.data(), n_rows);
  for (int64_t i = 0; i < n_tok * n_rows; ++i)
    ASSERT_EQ(got_lo[i], got_hi[i]) << "token " << i / n_rows << " row " << i % n_rows;
  lo.dots(packed_lo.data(), row_bytes, n_rows, acts_lo.data(), n, got_lo.data());
  hi.dots(packed_hi.data(), row_bytes, n_rows, acts_hi.data(), n, got_hi.data());
  for (int64_t r = 0; r < n_rows; ++r) ASSERT_EQ(got_lo[r], got_hi[r]) << "decode, row " << r;
}

// The SIMD activation encoders write exactly the scalar encoder's bytes,
// also for values on rounding halves, zeros, infinities and NaN.
// Rows of 9 blocks of 32 for the q8_0 encoders: random values; rounding
// halves of both signs (each block led by 127, so that x * id lands on the
// halves exactly); and a block of zeros, infinities, NaN alone in a block,
// -0 and magnitudes far apart.
std::vector<std::vector<float>> q8_encoder_rows(uint64_t seed) {
  const int64_t n = 32 * 9;
  std::vector<std::vector<float>> rows;
  rows.push_back(test::random_floats(n, seed, 3.0f));
  std::vector<float> halves(n);
  for (int64_t i = 0; i < n; ++i) halves[i] = static_cast<float>((i % 255) - 127) + 0.5f * ((i % 3) - 1);
  for (int64_t b = 0; b < n; b += 32) halves[b] = 127.0f;
  rows.push_back(halves);
  std::vector<float> odd(n, 0.0f);  // block 0 all zeros
  odd[40] = INFINITY, odd[70] = -INFINITY, odd[100] = NAN, odd[140] = 1e30f, odd[141] = -1e-30f;
  odd[200] = NAN, odd[230] = -0.0f, odd[260] = 1e-38f;
  rows.push_back(odd);
  return rows;
}

TEST(ActivationEncoding, SimdEncodersEqualScalarByteForByte) {
  const int64_t n = 32 * 9;
  const std::vector<std::vector<float>> rows = q8_encoder_rows(77);
  for (Isa isa : kernels::available_isas())
    for (DType t : {DType::kQ4_0, DType::kQ8_0}) {
      for (const kernels::RowKernel& k : {kernels::row_kernel(t, isa), kernels::packed_row_kernel(t, isa, 5),
                                          kernels::packed_row_kernel(t, isa, 8)}) {
        if (k.encode == nullptr || k.act_bytes != kernels::planar_q8_bytes) continue;
        // Per-row repacked layouts pair blocks by halves; interleaved rows do not.
        const bool paired = k.repack != nullptr && k.row_group == 1;
        for (size_t r = 0; r < rows.size(); ++r) {
          std::vector<uint8_t> want(kernels::planar_q8_bytes(n)), got(want.size());
          (paired ? kernels::encode_planar_q8_paired : kernels::encode_planar_q8)(rows[r].data(), want.data(), n);
          k.encode(rows[r].data(), got.data(), n);
          for (size_t i = 0; i < want.size(); ++i)
            ASSERT_EQ(want[i], got[i]) << kernels::isa_name(isa) << " " << dtype_name(t) << (paired ? " paired" : "")
                                       << " row " << r << " byte " << i;
        }
      }
    }
}

#if defined(__EMSCRIPTEN__)
// The SIMD128 kernels' encoder (16-bit levels) writes what the scalar q8_0
// encoder gives, widened: on rounding halves of both signs, zeros, NaN,
// infinities and magnitudes far apart.
TEST(ActivationEncoding, WasmEncoderEqualsScalarByteForByte) {
  const int64_t n = 32 * 9;
  const std::vector<std::vector<float>> rows = q8_encoder_rows(80);
  for (DType t : {DType::kQ4_0, DType::kQ8_0}) {
    const kernels::RowKernel k = kernels::row_kernel(t, Isa::kWasmSimd128);
    ASSERT_NE(k.encode, nullptr) << dtype_name(t);
    for (size_t r = 0; r < rows.size(); ++r) {
      std::vector<uint8_t> want(k.act_bytes(n)), got(want.size());
      kernels::wasm::encode_widened_q8_reference(t, rows[r].data(), want.data(), n);
      k.encode(rows[r].data(), got.data(), n);
      for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(want[i], got[i]) << dtype_name(t) << " row " << r << " byte " << i;
    }
  }
}
#endif

// The same for the Q8_K encoders of the k-quant kernels: the scale comes
// from the first value of largest magnitude with its sign, so rows where
// -m and m tie, where only NaN or zeros fill a block, and halves after
// scaling must come out as the scalar encoder has them.
TEST(ActivationEncoding, SimdQ8KEncodersEqualScalarByteForByte) {
  const int64_t n = 256 * 5;
  std::vector<std::vector<float>> rows;
  rows.push_back(test::random_floats(n, 78, 3.0f));
  std::vector<float> ties = test::random_floats(n, 79, 1.0f);
  ties[3] = -5.0f, ties[200] = 5.0f;          // block 0: the negative comes first
  ties[256 + 10] = 4.0f, ties[256 + 11] = -4.0f;  // block 1: the positive does
  ties[512 + 255] = -7.0f;                    // block 2: the last value
  rows.push_back(ties);
  std::vector<float> halves(n);
  for (int64_t i = 0; i < n; ++i) halves[i] = static_cast<float>((i % 255) - 127) + 0.5f * ((i % 3) - 1);
  for (int64_t b = 0; b < n; b += 256) halves[b] = -127.0f;  // iscale 1: x lands on halves exactly
  rows.push_back(halves);
  std::vector<float> odd(n, 0.0f);  // block 0 all zeros
  odd[256 + 40] = INFINITY, odd[256 + 70] = -INFINITY, odd[256 + 100] = NAN;
  odd[512 + 7] = NAN;  // block 2: NaN alone
  odd[768 + 140] = 1e30f, odd[768 + 141] = -1e-30f, odd[1024 + 1] = -0.0f, odd[1024 + 9] = 1e-38f;
  rows.push_back(odd);
  int checked = 0;
  for (Isa isa : kernels::available_isas())
    for (DType t : {DType::kQ4_K, DType::kQ6_K}) {
      for (const kernels::RowKernel& k : {kernels::row_kernel(t, isa), kernels::packed_row_kernel(t, isa, 16)}) {
        if (k.encode == nullptr || k.act_bytes != kernels::planar_q8k_bytes) continue;
        ++checked;
        for (size_t r = 0; r < rows.size(); ++r) {
          std::vector<uint8_t> want(kernels::planar_q8k_bytes(n)), got(want.size());
          kernels::encode_planar_q8k(rows[r].data(), want.data(), n);
          k.encode(rows[r].data(), got.data(), n);
          for (size_t i = 0; i < want.size(); ++i)
            ASSERT_EQ(want[i], got[i]) << kernels::isa_name(isa) << " " << dtype_name(t) << " row " << r << " byte " << i;
        }
      }
    }
#if defined(__x86_64__)
  if (kernels::cpu_features().avx2) {
    EXPECT_GT(checked, 0) << "no SIMD Q8_K encoder was found to check";
  }
#endif
}

// The interleaved Q4_0/Q8_0 layout is one stream: a full chunk's scales fill
// one 64-byte line right before its payloads, every payload vector of a full
// chunk starts on a line (for 16 rows), a short last chunk closes the gap,
// and the offsets
// tile the group's bytes exactly once.
TEST(RowGroupLayout, OneStreamOfLineAlignedChunks) {
  for (int rows : {8, 16})
    for (int64_t payload : {16, 32})
      for (int64_t nb : {1, 2, 5, 8, 9}) {
        const kernels::RowGroupLayout g{nb, payload, rows};
        const int64_t k = kernels::RowGroupLayout::chunk_blocks(rows);
        std::vector<int> seen(static_cast<size_t>(nb * g.block_bytes()), 0);
        for (int64_t b = 0; b < nb; ++b)
          for (int64_t r = 0; r < rows; ++r) {
            const int64_t chunk_start = (b - b % k) * g.block_bytes();
            EXPECT_EQ(g.scale_offset(b, r), chunk_start + 2 * (rows * (b % k) + r));
            const bool full = b - b % k + k <= nb;
            if (full) {
              EXPECT_LT(g.scale_offset(b, r), chunk_start + 64);
            }
            seen[g.scale_offset(b, r)] += 1, seen[g.scale_offset(b, r) + 1] += 1;
            for (int64_t v = 0; v < payload / 4; ++v) {
              const int64_t at = g.payload_offset(b, r, v);
              if (full && rows == 16 && r == 0) {
                EXPECT_EQ(at % 64, 0) << "block " << b << " vector " << v;
              }
              ASSERT_LE(at + 4, static_cast<int64_t>(seen.size())) << "block " << b << " row " << r << " past the group";
              for (int i = 0; i < 4; ++i) seen[at + i] += 1;
            }
          }
        for (size_t i = 0; i < seen.size(); ++i)
          ASSERT_EQ(seen[i], 1) << "rows " << rows << " payload " << payload << " blocks " << nb << " byte " << i;
      }
}

std::vector<Case> all_cases() {
  std::vector<Case> out;
  for (Isa isa : kernels::compiled_isas())
    for (DType t : supported_dtypes()) out.push_back({isa, t});
  return out;
}

INSTANTIATE_TEST_SUITE_P(AllVariants, DotVariant, ::testing::ValuesIn(all_cases()), [](const auto& info) {
  return std::string(kernels::isa_name(info.param.isa)) + "_" + dtype_name(info.param.type);
});

INSTANTIATE_TEST_SUITE_P(AllVariants, PackedKernel,
                         ::testing::Combine(::testing::ValuesIn(all_cases()), ::testing::Values(int64_t{5}, int64_t{24}, int64_t{48}, int64_t{64})),
                         [](const auto& info) {
                           const Case c = std::get<0>(info.param);
                           return std::string(kernels::isa_name(c.isa)) + "_" + dtype_name(c.type) + "_rows" +
                                  std::to_string(std::get<1>(info.param));
                         });

}  // namespace
}  // namespace osprey
