#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/matmul.h"
#include "kernels/membw.h"
#include "kernels/ops.h"
#include "test_util.h"

namespace osprey::kernels {

WeightMatrix make_matrix(DType t, int64_t n_in, int64_t n_out, std::vector<uint8_t>& storage) {
  const QuantOps* ops = quant_ops(t);
  const int64_t row = quant_row_bytes(*ops, n_in);
  storage.resize(row * n_out);
  const auto w = test::random_floats(n_in * n_out, 5);
  for (int64_t r = 0; r < n_out; ++r) ops->quantize(w.data() + r * n_in, storage.data() + r * row, n_in);
  return {storage.data(), ops, row_kernel(t, active_isa()), n_in, n_out, row, "test"};
}

namespace {

// The split of output rows over threads must not change a single bit.
TEST(Matmul, ResultIsIdenticalForAnyThreadCount) {
  for (DType t : {DType::kQ4_0, DType::kQ8_0, DType::kQ4_K, DType::kF16}) {
    std::vector<uint8_t> storage;
    const WeightMatrix w = make_matrix(t, 512, 77, storage);
    const auto x = test::random_floats(3 * 512, 9);
    std::vector<float> first;
    for (int threads : {1, 2, 3, 5}) {
      ThreadPool pool(threads);
      std::vector<uint8_t> scratch(matmul_scratch_bytes(w, 3));
      std::vector<float> y(3 * 77);
      matmul(pool, w, x.data(), 3, y.data(), scratch.data());
      if (first.empty()) first = y;
      ASSERT_EQ(std::memcmp(first.data(), y.data(), y.size() * 4), 0)
          << dtype_name(t) << " differs with " << threads << " threads";
    }
  }
}

TEST(Matmul, MatchesDequantizedProduct) {
  std::vector<uint8_t> storage;
  const WeightMatrix w = make_matrix(DType::kQ8_0, 256, 40, storage);
  const auto x = test::random_floats(2 * 256, 3);
  ThreadPool pool(2);
  std::vector<uint8_t> scratch(matmul_scratch_bytes(w, 2));
  std::vector<float> y(2 * 40);
  matmul(pool, w, x.data(), 2, y.data(), scratch.data());
  std::vector<float> row(256);
  for (int64_t t = 0; t < 2; ++t)
    for (int64_t r = 0; r < 40; ++r) {
      w.ops->dequantize(w.data + r * w.row_bytes, row.data(), 256);
      double expect = 0, mag = 0;
      for (int i = 0; i < 256; ++i) {
        expect += row[i] * static_cast<double>(x[t * 256 + i]);
        mag += std::fabs(row[i] * x[t * 256 + i]);
      }
      // Activations are rounded to 8 bits: error about 0.4% of the magnitude.
      EXPECT_NEAR(y[t * 40 + r], expect, 0.01 * mag) << "token " << t << " row " << r;
    }
}

}  // namespace
}  // namespace osprey::kernels

namespace osprey::kernels {
namespace {

// One parallel region over several matrices must give exactly what separate
// products give, also when their activation encodings differ.
TEST(MatmulGroup, EqualsSeparateProducts) {
  std::vector<uint8_t> s0, s1, s2;
  const WeightMatrix a = make_matrix(DType::kQ4_0, 256, 40, s0);
  const WeightMatrix b = make_matrix(DType::kQ6_K, 256, 24, s1);  // another encoding
  const WeightMatrix c = make_matrix(DType::kQ8_0, 256, 33, s2);  // shares a's encoding where kernels allow
  const WeightMatrix* ws[3] = {&a, &b, &c};
  const auto x = test::random_floats(3 * 256, 21);
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    std::vector<float> ya(3 * 40), yb(3 * 24), yc(3 * 33);
    float* ys[3] = {ya.data(), yb.data(), yc.data()};
    std::vector<uint8_t> scratch(matmul_group_scratch_bytes(ws, 3, 3));
    matmul_group(pool, ws, 3, x.data(), 3, ys, scratch.data());
    for (int i = 0; i < 3; ++i) {
      std::vector<float> alone(3 * ws[i]->n_out);
      std::vector<uint8_t> s(matmul_scratch_bytes(*ws[i], 3));
      matmul(pool, *ws[i], x.data(), 3, alone.data(), s.data());
      EXPECT_EQ(std::memcmp(alone.data(), ys[i], alone.size() * 4), 0) << "matrix " << i << ", " << threads << " threads";
    }
  }
}

// A matrix repacked as a model repacks it: for its row count, the fastest
// kernel (which may interleave rows in groups of 8).
WeightMatrix make_packed(DType t, int64_t n_in, int64_t n_out, std::vector<uint8_t>& file, std::vector<uint8_t>& packed) {
  WeightMatrix w = make_matrix(t, n_in, n_out, file);
  w.kernel = packed_row_kernel(t, active_isa(), n_out);
  packed = file;
  if (w.kernel.repack != nullptr)
    for (int64_t r = 0; r < n_out; r += w.kernel.row_group)
      w.kernel.repack(file.data() + r * w.row_bytes, packed.data() + r * w.row_bytes, n_in);
  w.data = packed.data();
  return w;
}

// The interleaved kernels too (groups of 8, 16 and 32 rows where the level
// has them) give the same bits at any thread count, for a prompt of a full
// 12-token tile and more.
TEST(MatmulGroup, RepackedResultIsIdenticalForAnyThreadCount) {
  const int64_t n_in = 256, n_out = 96, n_tok = 13;
  for (DType t : {DType::kQ4_0, DType::kQ8_0, DType::kQ4_K, DType::kQ6_K, DType::kF16, DType::kBF16}) {
    std::vector<uint8_t> file, packed;
    const WeightMatrix w = make_packed(t, n_in, n_out, file, packed);
    const auto x = test::random_floats(n_tok * n_in, 19);
    std::vector<float> first;
    for (int threads : {1, 2, 3, 5}) {
      ThreadPool pool(threads);
      std::vector<uint8_t> scratch(matmul_scratch_bytes(w, n_tok));
      std::vector<float> y(n_tok * n_out);
      matmul(pool, w, x.data(), n_tok, y.data(), scratch.data());
      if (first.empty()) first = y;
      ASSERT_EQ(std::memcmp(first.data(), y.data(), y.size() * 4), 0)
          << dtype_name(t) << " (rows in groups of " << w.kernel.row_group << ") differs with " << threads << " threads";
    }
  }
}

// Interleaved and per-row layouts side by side in one region, with row
// counts that are not multiples of the 16-row split, groups of 32 rows
// beside groups of 8 and 16, and a prompt long enough for several token
// tiles of every kernel (4 tokens, and 12 for the F16 groups of 32) plus a
// remainder: each matrix gets exactly what it gets alone, at any thread
// count, and agrees with the file-layout kernels.
TEST(MatmulGroup, RepackedLayoutsMixedInOneRegion) {
  const int64_t n_in = 512, n_tok = 27;
  std::vector<uint8_t> f0, p0, f1, p1, f2, p2, f3, p3;
  const WeightMatrix a = make_packed(DType::kQ8_0, n_in, 33, f0, p0);  // 33 rows: a per-row layout
  const WeightMatrix b = make_packed(DType::kQ4_0, n_in, 40, f1, p1);  // groups of 8 where the level has them
  const WeightMatrix c = make_packed(DType::kQ4_K, n_in, 24, f2, p2);
  const WeightMatrix d = make_packed(DType::kF16, n_in, 64, f3, p3);  // groups of 32 where the level has them
  const WeightMatrix* ws[4] = {&a, &b, &c, &d};
  const std::vector<uint8_t>* files[4] = {&f0, &f1, &f2, &f3};
  const auto x = test::random_floats(n_tok * n_in, 31);
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    std::vector<float> ya(n_tok * 33), yb(n_tok * 40), yc(n_tok * 24), yd(n_tok * 64);
    float* ys[4] = {ya.data(), yb.data(), yc.data(), yd.data()};
    std::vector<uint8_t> scratch(matmul_group_scratch_bytes(ws, 4, n_tok));
    matmul_group(pool, ws, 4, x.data(), n_tok, ys, scratch.data());
    for (int i = 0; i < 4; ++i) {
      const WeightMatrix& w = *ws[i];
      std::vector<float> alone(n_tok * w.n_out), file_layout(n_tok * w.n_out);
      std::vector<uint8_t> s(matmul_scratch_bytes(w, n_tok));
      matmul(pool, w, x.data(), n_tok, alone.data(), s.data());
      EXPECT_EQ(std::memcmp(alone.data(), ys[i], alone.size() * 4), 0) << "matrix " << i << ", " << threads << " threads";
      WeightMatrix plain = w;
      plain.kernel = row_kernel(w.ops->type, active_isa());
      plain.data = files[i]->data();
      std::vector<uint8_t> s2(matmul_scratch_bytes(plain, n_tok));
      matmul(pool, plain, x.data(), n_tok, file_layout.data(), s2.data());
      for (size_t k = 0; k < alone.size(); ++k)
        ASSERT_NEAR(ys[i][k], file_layout[k], 1e-4 * (1 + std::fabs(file_layout[k])))
            << "matrix " << i << " element " << k;
    }
  }
}

// The norm fused into the input encoding gives exactly what rmsnorm and then
// the product give, at any thread count.
TEST(MatmulGroup, FusedNormEqualsNormThenProduct) {
  const int64_t n_in = 512, n_tok = 6;
  std::vector<uint8_t> f0, p0, f1, p1;
  const WeightMatrix a = make_packed(DType::kQ4_0, n_in, 40, f0, p0);
  const WeightMatrix b = make_packed(DType::kQ6_K, n_in, 24, f1, p1);
  const WeightMatrix* ws[2] = {&a, &b};
  const auto x = test::random_floats(n_tok * n_in, 41, 3.0f);
  const auto g = test::random_floats(n_in, 42);
  std::vector<float> xn(x.size());
  for (int64_t t = 0; t < n_tok; ++t) rmsnorm(xn.data() + t * n_in, x.data() + t * n_in, g.data(), n_in, 1e-5f);
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    std::vector<float> wa(n_tok * 40), wb(n_tok * 24), ga(wa.size()), gb(wb.size());
    float* want[2] = {wa.data(), wb.data()};
    float* got[2] = {ga.data(), gb.data()};
    std::vector<uint8_t> s1(matmul_group_scratch_bytes(ws, 2, n_tok));
    matmul_group(pool, ws, 2, xn.data(), n_tok, want, s1.data());
    std::vector<uint8_t> s2(norm_matmul_group_scratch_bytes(ws, 2, n_tok, threads));
    norm_matmul_group(pool, ws, 2, x.data(), g.data(), 1e-5f, n_tok, got, s2.data(), static_cast<int64_t>(s2.size()));
    EXPECT_EQ(std::memcmp(wa.data(), ga.data(), wa.size() * 4), 0) << threads << " threads";
    EXPECT_EQ(std::memcmp(wb.data(), gb.data(), wb.size() * 4), 0) << threads << " threads";
  }
}

}  // namespace
}  // namespace osprey::kernels

namespace osprey::kernels {
namespace {

// The bandwidth read loop reads every word exactly once, whatever the
// length (whole lines or a ragged tail) and the thread count: the checksum
// is the sum of the words.
TEST(ReadBandwidth, ReadAllSumsEveryWordOnce) {
  for (int64_t n : {int64_t{0}, int64_t{5}, int64_t{4096}, int64_t{4096 * 3 + 13}, int64_t{100003}}) {
    std::vector<uint64_t> data(static_cast<size_t>(n));
    uint64_t want = 0;
    for (int64_t i = 0; i < n; ++i) want += data[i] = static_cast<uint64_t>(i) * 2654435761u + 7;
    for (int threads : {1, 2, 3}) {
      ThreadPool pool(threads);
      EXPECT_EQ(read_all(pool, data.data(), n), want) << n << " words, " << threads << " threads";
    }
  }
}

}  // namespace
}  // namespace osprey::kernels
