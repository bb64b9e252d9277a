#include <gtest/gtest.h>

#include "formats/gguf.h"
#include "models/model.h"
#include "test_util.h"

namespace osprey {
namespace {

// Copies a synthetic model with one change, so each error path sees an
// otherwise valid file.
std::vector<uint8_t> modified(const std::function<void(GgufWriter&, const GgufFile&)>& edit,
                              const std::function<bool(const GgufTensorInfo&)>& keep = nullptr) {
  auto f = GgufFile::open(test::synth_model("tiny", "q8_0"));
  EXPECT_TRUE(f.ok());
  GgufWriter w;
  for (const auto& [k, v] : f->metadata()) w.set(k, v);
  for (const auto& t : f->tensors())
    if (!keep || keep(t)) {
      EXPECT_TRUE(w.add_tensor(t.name, t.type, t.dims, {t.data, t.data + t.n_bytes}).ok());
    }
  edit(w, *f);
  return w.to_bytes();
}

std::string load_error(const std::vector<uint8_t>& bytes) {
  auto f = GgufFile::parse(bytes.data(), bytes.size(), "edited.gguf");
  if (!f.ok()) return f.status().message();
  auto m = Model::from_file(std::move(f).value(), ModelOptions{});
  return m.ok() ? "" : m.status().message();
}

TEST(ModelErrors, UnsupportedArchitectureIsNamed) {
  const auto b = modified([](GgufWriter& w, const GgufFile&) { w.set("general.architecture", GgufValue::str("mamba")); });
  const std::string e = load_error(b);
  EXPECT_NE(e.find("'mamba' is not supported"), std::string::npos) << e;
}

TEST(ModelErrors, MissingTensorIsNamed) {
  const auto b = modified([](GgufWriter&, const GgufFile&) {},
                          [](const GgufTensorInfo& t) { return t.name != "blk.1.ffn_up.weight"; });
  EXPECT_NE(load_error(b).find("'blk.1.ffn_up.weight' is missing"), std::string::npos);
}

TEST(ModelErrors, UnsupportedWeightTypeIsNamed) {
  // One matrix in a format GGUF defines but osprey has no arithmetic for.
  const auto b = modified(
      [](GgufWriter& w, const GgufFile& f) {
        const GgufTensorInfo* t = f.find_tensor("blk.1.ffn_up.weight");
        const uint64_t bytes = *dtype_row_bytes(DType::kIQ4_NL, t->dims[0]) * t->rows();
        EXPECT_TRUE(w.add_tensor(t->name, DType::kIQ4_NL, t->dims, std::vector<uint8_t>(bytes, 0)).ok());
      },
      [](const GgufTensorInfo& t) { return t.name != "blk.1.ffn_up.weight"; });
  const std::string e = load_error(b);
  EXPECT_NE(e.find("tensor 'blk.1.ffn_up.weight' has type iq4_nl, which osprey cannot compute with yet"), std::string::npos)
      << e;
  EXPECT_NE(e.find("q4_k"), std::string::npos) << "the message should list what does run: " << e;
}

TEST(ModelErrors, WrongShapeIsNamed) {
  const auto b = modified([](GgufWriter& w, const GgufFile&) { w.set("llama.feed_forward_length", GgufValue::u32(1024)); });
  const std::string e = load_error(b);
  EXPECT_NE(e.find("ffn_gate.weight' has shape [256, 512], expected [256, 1024]"), std::string::npos) << e;
}

TEST(ModelErrors, AbsurdHyperparametersAreRejected) {
  auto heads = modified([](GgufWriter& w, const GgufFile&) { w.set("llama.attention.head_count_kv", GgufValue::u32(3)); });
  EXPECT_NE(load_error(heads).find("must divide head_count"), std::string::npos);
  auto layers = modified([](GgufWriter& w, const GgufFile&) { w.set("llama.block_count", GgufValue::u32(0)); });
  EXPECT_NE(load_error(layers).find("block_count 0 is out of range"), std::string::npos);
  auto missing = modified([](GgufWriter& w, const GgufFile&) { w.remove("llama.embedding_length"); });
  EXPECT_NE(load_error(missing).find("'llama.embedding_length' is missing"), std::string::npos);
}

TEST(ModelErrors, ContextOverflowAndBadTokens) {
  ModelOptions mo;
  mo.n_ctx = 8;
  auto m = Model::load(test::synth_model("tiny", "q8_0"), mo);
  ASSERT_TRUE(m.ok());
  std::vector<int32_t> nine(9, 5);
  auto over = (*m)->eval(nine.data(), 9);
  ASSERT_FALSE(over.ok());
  EXPECT_NE(over.status().message().find("exceed the context size of 8"), std::string::npos);
  EXPECT_EQ((*m)->n_past(), 0);  // nothing was half-applied
  const int32_t bad = 100000;
  auto b = (*m)->eval(&bad, 1);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("outside the vocabulary"), std::string::npos);
  const int32_t neg = -1;
  EXPECT_FALSE((*m)->eval(&neg, 1).ok());
}

TEST(ModelErrors, ResetAndTruncateReplayIdentically) {
  auto m = Model::load(test::synth_model("tiny", "q4_0"), ModelOptions{});
  ASSERT_TRUE(m.ok());
  const std::vector<int32_t> t = {1, 2, 3, 4};
  std::vector<float> a((*m)->config().n_vocab);
  auto first = (*m)->eval(t.data(), 4);
  std::copy(*first, *first + a.size(), a.begin());
  (*m)->truncate(2);
  auto again = (*m)->eval(t.data() + 2, 2);
  EXPECT_TRUE(std::equal(a.begin(), a.end(), *again));
  (*m)->reset();
  auto fresh = (*m)->eval(t.data(), 4);
  EXPECT_TRUE(std::equal(a.begin(), a.end(), *fresh));
}

}  // namespace
}  // namespace osprey
