// Importance-matrix files: both layouts round-trip, experts are kept apart,
// shapes are checked against the model, and damaged files are refused by name.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "convert/importance_matrix.h"
#include "formats/gguf.h"

namespace osprey {
namespace {

namespace fs = std::filesystem;

std::string temp_path(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("osprey_imatrix_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return (dir / name).string();
}

ImportanceMatrix sample() {
  ImportanceMatrix m;
  m.datasets = {"corpus.txt"};
  m.chunk_count = 4;
  m.chunk_size = 128;
  ImportanceMatrix::Entry dense{4, 1, {4, 8, 12, 16}, {4}};
  ImportanceMatrix::Entry experts{2, 3, {1, 2, 30, 60, 0, 0}, {1, 10, 0}};
  m.entries["blk.0.attn_q.weight"] = dense;
  m.entries["blk.0.ffn_up_exps.weight"] = experts;
  return m;
}

TEST(ImportanceMatrix, GgufRoundTripAndMeans) {
  const std::string path = temp_path("m.gguf");
  ASSERT_TRUE(sample().save(path).ok());
  auto m = ImportanceMatrix::load(path);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->chunk_count, 4);
  EXPECT_EQ(m->chunk_size, 128);
  EXPECT_EQ(m->datasets, std::vector<std::string>{"corpus.txt"});
  EXPECT_EQ(m->column_weights("blk.0.attn_q.weight", 4, 0), (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ(m->column_weights("blk.0.ffn_up_exps.weight", 2, 1), (std::vector<float>{3, 6}));
  EXPECT_TRUE(m->column_weights("blk.0.ffn_up_exps.weight", 2, 2).empty()) << "an expert never chosen has no data";
  EXPECT_TRUE(m->column_weights("blk.9.attn_q.weight", 4, 0).empty());
  // It is GGUF as llama-imatrix writes it.
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(*f->get_string("general.type"), "imatrix");
  const GgufTensorInfo* t = f->find_tensor("blk.0.ffn_up_exps.weight.in_sum2");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->dims, (std::vector<int64_t>{2, 3}));
  EXPECT_NE(f->find_tensor("blk.0.ffn_up_exps.weight.counts"), nullptr);
}

TEST(ImportanceMatrix, LegacyRoundTripSplitsExpertsByRowLength) {
  const std::string path = temp_path("m.dat");
  ASSERT_TRUE(sample().save(path).ok());
  auto m = ImportanceMatrix::load(path);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->chunk_count, 4);
  EXPECT_EQ(m->datasets, std::vector<std::string>{"corpus.txt"});
  EXPECT_EQ(m->column_weights("blk.0.attn_q.weight", 4, 0), (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ(m->column_weights("blk.0.ffn_up_exps.weight", 2, 0), (std::vector<float>{1, 2}));
  EXPECT_EQ(m->column_weights("blk.0.ffn_up_exps.weight", 2, 1), (std::vector<float>{3, 6}));
  EXPECT_TRUE(m->check_shape("blk.0.ffn_up_exps.weight", 2, 3).ok());
}

TEST(ImportanceMatrix, ShapeMismatchNamesTheTensor) {
  const ImportanceMatrix m = sample();
  EXPECT_TRUE(m.check_shape("blk.0.attn_q.weight", 4, 1).ok());
  EXPECT_TRUE(m.check_shape("not.in.the.matrix", 7, 1).ok());
  const Status s = m.check_shape("blk.0.attn_q.weight", 8, 1);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("blk.0.attn_q.weight"), std::string::npos) << s.message();
  EXPECT_FALSE(m.check_shape("blk.0.ffn_up_exps.weight", 2, 4).ok());
}

TEST(ImportanceMatrix, DamagedFilesAreRefusedByName) {
  const std::string good = temp_path("good.dat");
  ASSERT_TRUE(sample().save(good).ok());
  std::string bytes;
  {
    std::ifstream in(good, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto refused = [&](const std::string& content, const std::string& what) {
    const std::string path = temp_path("bad.dat");
    std::ofstream(path, std::ios::binary) << content;
    auto m = ImportanceMatrix::load(path);
    ASSERT_FALSE(m.ok()) << what;
    EXPECT_NE(m.status().message().find(path), std::string::npos) << what << ": " << m.status().message();
  };
  refused("", "empty");
  refused(bytes.substr(0, 30), "truncated in the first entry's values");
  std::string negative = bytes;
  const float minus = -1.0f;
  // The first entry (std::map order: attn_q) starts at 4; its values follow name, calls and count.
  std::memcpy(&negative[4 + 4 + 19 + 8], &minus, 4);
  refused(negative, "a negative sum of squares");
  std::string huge = bytes;
  const int32_t big = 1 << 30;
  std::memcpy(&huge[4 + 4 + 19 + 4], &big, 4);
  refused(huge, "a value count past the end");
  refused(std::string("GGUF") + std::string(20, '\0'), "a GGUF header cut short");

  // A GGUF file with an in_sum2 and no counts.
  GgufWriter w;
  w.set("general.type", GgufValue::str("imatrix"));
  std::vector<uint8_t> four(16, 0);
  ASSERT_TRUE(w.add_tensor("blk.0.attn_q.weight.in_sum2", DType::kF32, {4, 1}, four).ok());
  const std::string lone = temp_path("lone.gguf");
  ASSERT_TRUE(w.write(lone).ok());
  auto m = ImportanceMatrix::load(lone);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("counts"), std::string::npos) << m.status().message();
}

}  // namespace
}  // namespace osprey
