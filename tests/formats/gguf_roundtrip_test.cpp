#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "formats/gguf.h"

namespace osprey {
namespace {

GgufWriter sample_writer() {
  GgufWriter w;
  w.set("general.architecture", GgufValue::str("llama"));
  w.set("a.u8", GgufValue::scalar_int(GgufType::kU8, 200));
  w.set("a.i8", GgufValue::scalar_int(GgufType::kI8, -100));
  w.set("a.u16", GgufValue::scalar_int(GgufType::kU16, 60000));
  w.set("a.i16", GgufValue::scalar_int(GgufType::kI16, -30000));
  w.set("a.u32", GgufValue::u32(4000000000u));
  w.set("a.i32", GgufValue::i32(-2000000000));
  w.set("a.u64", GgufValue::u64(18000000000000000000ull));
  w.set("a.i64", GgufValue::scalar_int(GgufType::kI64, -9000000000000000000ll));
  w.set("a.f32", GgufValue::f32(0.125f));
  GgufValue f64;
  f64.type = GgufType::kF64;
  f64.f = 1e300;
  w.set("a.f64", f64);
  w.set("a.bool", GgufValue::boolean(true));
  w.set("a.str", GgufValue::str("héllo\n"));
  w.set("a.strs", GgufValue::string_array({"", "x", "▁y"}));
  w.set("a.ints", GgufValue::int_array(GgufType::kI32, {1, -2, 3}));
  w.set("a.floats", GgufValue::float_array({0.5, -1.5}));
  GgufValue nested;
  nested.type = GgufType::kArray;
  nested.elem_type = GgufType::kArray;
  nested.nested = {GgufValue::int_array(GgufType::kU8, {1, 2}), GgufValue::int_array(GgufType::kU8, {3})};
  w.set("a.nested", nested);
  std::vector<uint8_t> t1(4 * 6);
  for (size_t i = 0; i < t1.size(); ++i) t1[i] = static_cast<uint8_t>(i);
  EXPECT_TRUE(w.add_tensor("t1", DType::kF32, {3, 2}, t1).ok());
  std::vector<uint8_t> t2(34 * 2, 7);
  EXPECT_TRUE(w.add_tensor("t2", DType::kQ8_0, {64}, t2).ok());
  return w;
}

TEST(Gguf, WriteReadIsIdentical) {
  const GgufWriter w = sample_writer();
  const std::vector<uint8_t> bytes = w.to_bytes();
  auto f = GgufFile::parse(bytes.data(), bytes.size(), "mem");
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->version(), 3u);
  ASSERT_EQ(f->metadata().size(), 17u);
  EXPECT_EQ(f->find("a.u64")->i, static_cast<int64_t>(18000000000000000000ull));
  EXPECT_EQ(f->find("a.i8")->i, -100);
  EXPECT_EQ(*f->get_string("a.str"), "héllo\n");
  EXPECT_EQ(f->find("a.strs")->strings[2], "▁y");
  EXPECT_EQ(f->find("a.nested")->nested[1].ints[0], 3);
  ASSERT_EQ(f->tensors().size(), 2u);
  const GgufTensorInfo* t1 = f->find_tensor("t1");
  ASSERT_NE(t1, nullptr);
  EXPECT_EQ(t1->dims, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(t1->n_bytes, 24u);
  EXPECT_EQ(t1->data[5], 5);
  EXPECT_EQ(static_cast<uint64_t>(f->find_tensor("t2")->data - bytes.data()) % 32, 0u);

  // Write back what was read: the bytes must be identical.
  GgufWriter again;
  for (const auto& [k, v] : f->metadata()) again.set(k, v);
  for (const auto& t : f->tensors())
    ASSERT_TRUE(again.add_tensor(t.name, t.type, t.dims, std::vector<uint8_t>(t.data, t.data + t.n_bytes)).ok());
  EXPECT_EQ(again.to_bytes(), bytes);
}

TEST(Gguf, FileWriteIsAtomicAndReadable) {
  const std::string path = std::filesystem::temp_directory_path() / "osprey-roundtrip.gguf";
  ASSERT_TRUE(sample_writer().write(path).ok());
  EXPECT_FALSE(std::filesystem::exists(path + ".partial"));
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->tensors().size(), 2u);
  std::filesystem::remove(path);
}

TEST(Gguf, TypedGettersNameTheProblem) {
  const std::vector<uint8_t> bytes = sample_writer().to_bytes();
  auto f = GgufFile::parse(bytes.data(), bytes.size(), "mem");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(*f->get_int("a.i16"), -30000);
  EXPECT_EQ(*f->get_int("missing", 7), 7);
  auto wrong = f->get_int("a.str");
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("'a.str' has type string"), std::string::npos);
  auto missing = f->get_string("nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("'nope' is missing"), std::string::npos);
  auto arr = f->get_array("a.ints", GgufType::kString);
  ASSERT_FALSE(arr.ok());
  EXPECT_NE(arr.status().message().find("array of i32"), std::string::npos);
}

TEST(Gguf, WriterRejectsWrongTensorSize) {
  GgufWriter w;
  EXPECT_FALSE(w.add_tensor("x", DType::kF32, {4}, std::vector<uint8_t>(15)).ok());
  EXPECT_FALSE(w.add_tensor("x", DType::kQ4_0, {33}, std::vector<uint8_t>(18)).ok());
}

}  // namespace
}  // namespace osprey
