// The safetensors reader: real layouts read back exactly, sharded folders
// resolve through their index, and every kind of damaged or hostile file is
// refused with a message naming the file and, where there is one, the tensor.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "formats/safetensors.h"

namespace osprey {
namespace {

namespace fs = std::filesystem;

// A file: 8-byte little-endian header length, the header, the data.
std::string file_bytes(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

Expected<SafetensorsFile> parse(const std::string& bytes) {
  return SafetensorsFile::parse(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "test.safetensors");
}

std::string floats(std::initializer_list<float> v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(s.data(), std::data(v), s.size());
  return s;
}

TEST(Safetensors, ReadsTensorsMetadataAndData) {
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]},)"
      R"("a":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,12]}})";
  const std::string bytes = file_bytes(header, std::string(12, '\x01') + floats({1.5f, -2.0f}));
  auto f = parse(bytes);
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->metadata().at("format"), "pt");
  ASSERT_EQ(f->tensors().size(), 2u);
  const SafetensorsTensor* a = f->find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->type, DType::kBF16);
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(a->n_elements, 6);
  EXPECT_EQ(a->n_bytes, 12u);
  const SafetensorsTensor* b = f->find("b");
  ASSERT_NE(b, nullptr);
  float v[2];
  std::memcpy(v, b->data, 8);
  EXPECT_EQ(v[0], 1.5f);
  EXPECT_EQ(v[1], -2.0f);
  // Dtypes osprey does not compute in are read, and marked as such.
  auto ints = parse(file_bytes(R"({"i":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})", std::string(8, '\0')));
  ASSERT_TRUE(ints.ok());
  EXPECT_FALSE(ints->find("i")->type.has_value());
  // An empty file body with no tensors is a valid (if useless) file.
  EXPECT_TRUE(parse(file_bytes("{}", "")).ok());
}

struct Hostile {
  const char* what;
  std::string bytes;
  const char* message;  // a part of the error
};

TEST(Safetensors, HostileFilesAreRefusedByName) {
  const std::string ok_data(8, '\0');
  auto one = [&](const std::string& entry) { return file_bytes(R"({"t":)" + entry + "}", ok_data); };
  std::string huge_len(8, '\xff');
  const std::string deep = std::string(5000, '[') + std::string(5000, ']');
  const Hostile cases[] = {
      {"truncated", std::string("\x05\x00\x00", 3), "too short"},
      {"header past the end", file_bytes("{}", "").substr(0, 8) + "{", "runs past the end"},
      {"huge header length", huge_len + "{}", "runs past the end"},
      {"not JSON", file_bytes("{\"t\": nope}", ""), "not valid JSON"},
      {"not an object", file_bytes("[1,2]", ""), "not a JSON object"},
      {"deep nesting", file_bytes(deep, ""), "nested more than"},
      {"deep nesting inside an entry", file_bytes(R"({"t":)" + deep + "}", ""), "nested more than"},
      {"entry not an object", one("5"), "'t': its entry is not an object"},
      {"no dtype", one(R"({"shape":[2],"data_offsets":[0,8]})"), "'t': no \"dtype\""},
      {"unknown dtype", one(R"({"dtype":"Q7","shape":[2],"data_offsets":[0,8]})"), "'t': unknown dtype 'Q7'"},
      {"wrong dtype for the bytes", one(R"({"dtype":"F16","shape":[2],"data_offsets":[0,8]})"), "needs 4"},
      {"negative shape", one(R"({"dtype":"F32","shape":[-2],"data_offsets":[0,8]})"), "not a size"},
      {"fractional shape", one(R"({"dtype":"F32","shape":[2.5],"data_offsets":[0,8]})"), "not a size"},
      {"NaN shape", one(R"({"dtype":"F32","shape":[NaN],"data_offsets":[0,8]})"), "not valid JSON"},
      {"a number too large for any type", one(R"({"dtype":"F32","shape":[9999E0001994033221],"data_offsets":[0,8]})"),
       "not valid JSON"},
      {"string shape", one(R"({"dtype":"F32","shape":["2"],"data_offsets":[0,8]})"), "not a size"},
      {"absurd shape", one(R"({"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]})"), "absurdly large"},
      {"offsets past the data", one(R"({"dtype":"F32","shape":[4],"data_offsets":[0,16]})"), "runs past the end of the data"},
      {"offsets backwards", one(R"({"dtype":"F32","shape":[2],"data_offsets":[8,0]})"), "run backwards"},
      {"one offset", one(R"({"dtype":"F32","shape":[2],"data_offsets":[0]})"), "not a pair"},
      {"negative offset", one(R"({"dtype":"F32","shape":[2],"data_offsets":[-8,0]})"), "not a byte position"},
      {"overlap", file_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", ok_data),
       "overlaps"},
      {"hole", file_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", ok_data), "hole of 4 bytes"},
      {"trailing bytes", file_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", ok_data), "cover 4 bytes"},
      {"metadata not strings", file_bytes(R"({"__metadata__":{"n":5}})", ""), "not a string"},
  };
  for (const Hostile& h : cases) {
    auto f = parse(h.bytes);
    ASSERT_FALSE(f.ok()) << h.what;
    EXPECT_NE(f.status().message().find("test.safetensors"), std::string::npos) << h.what << ": " << f.status().message();
    EXPECT_NE(f.status().message().find(h.message), std::string::npos) << h.what << ": " << f.status().message();
  }
}

class SafetensorsFolder : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("osprey_st_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const std::string& name, const std::string& bytes) { std::ofstream(dir_ / name, std::ios::binary) << bytes; }
  std::string tensor_file(const std::string& name, float v) {
    return file_bytes(R"({")" + name + R"(":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", floats({v}));
  }
  fs::path dir_;
};

TEST_F(SafetensorsFolder, SingleFileAndShardsThroughTheIndex) {
  write("model.safetensors", tensor_file("w", 3.0f));
  auto single = SafetensorsModel::open(dir_.string());
  ASSERT_TRUE(single.ok()) << single.status().message();
  EXPECT_NE(single->find("w"), nullptr);

  write("model-00001-of-00002.safetensors", tensor_file("a", 1.0f));
  write("model-00002-of-00002.safetensors", tensor_file("b", 2.0f));
  write("model.safetensors.index.json",
        R"({"metadata":{"total_size":8},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}})");
  auto sharded = SafetensorsModel::open(dir_.string());
  ASSERT_TRUE(sharded.ok()) << sharded.status().message();
  EXPECT_EQ(sharded->shards().size(), 2u);
  EXPECT_EQ(sharded->tensors().size(), 2u);
  EXPECT_EQ(sharded->total_bytes(), 8u);
  float b;
  std::memcpy(&b, sharded->find("b")->data, 4);
  EXPECT_EQ(b, 2.0f);
  EXPECT_EQ(sharded->find("w"), nullptr) << "with an index, only the shards it names are read";
}

TEST_F(SafetensorsFolder, BrokenFoldersAreRefusedByName) {
  auto error_of = [&] {
    auto m = SafetensorsModel::open(dir_.string());
    return m.ok() ? std::string("opened") : m.status().message();
  };
  EXPECT_NE(error_of().find("no model.safetensors"), std::string::npos);
  write("model.safetensors.index.json", R"({"weight_map":{"a":"model-00001.safetensors"}})");
  EXPECT_NE(error_of().find("names shard model-00001.safetensors, which is not in"), std::string::npos) << error_of();
  write("model.safetensors.index.json", R"({"weight_map":{"a":"../../etc/passwd"}})");
  EXPECT_NE(error_of().find("is not a file in the folder"), std::string::npos) << error_of();
  write("model.safetensors.index.json", R"({"weight_map":{"a":7}})");
  EXPECT_NE(error_of().find("not a file name"), std::string::npos) << error_of();
  write("model.safetensors.index.json", R"({"weights":{}})");
  EXPECT_NE(error_of().find("no \"weight_map\""), std::string::npos) << error_of();
  write("model.safetensors.index.json", "{ not json");
  EXPECT_NE(error_of().find("not valid JSON"), std::string::npos) << error_of();
  // The index places a tensor in a shard that does not hold it.
  write("s1.safetensors", tensor_file("a", 1.0f));
  write("model.safetensors.index.json", R"({"weight_map":{"a":"s1.safetensors","b":"s1.safetensors"}})");
  EXPECT_NE(error_of().find("places tensor 'b' in s1.safetensors"), std::string::npos) << error_of();
  // One tensor in two shards.
  write("s2.safetensors", tensor_file("a", 2.0f));
  write("model.safetensors.index.json", R"({"weight_map":{"a":"s1.safetensors","x":"s2.safetensors"}})");
  EXPECT_NE(error_of().find("'a' is in both"), std::string::npos) << error_of();
  // A damaged shard names itself.
  write("s2.safetensors", "garbage");
  write("model.safetensors.index.json", R"({"weight_map":{"a":"s1.safetensors","x":"s2.safetensors"}})");
  EXPECT_NE(error_of().find("s2.safetensors"), std::string::npos) << error_of();
}

}  // namespace
}  // namespace osprey
