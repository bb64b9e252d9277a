#include <gtest/gtest.h>

#include "formats/gguf.h"
#include "models/model.h"
#include "models/edited_gguf.h"
#include "test_util.h"

namespace osprey {
namespace {

// Copies a synthetic model with one change, so each error path sees an
// otherwise valid file.
std::vector<uint8_t> modified(const std::function<void(GgufWriter&, const GgufFile&)>& edit,
                              const std::function<bool(const GgufTensorInfo&)>& keep = nullptr,
                              const std::string& preset = "tiny") {
  return test::edited_gguf(test::synth_model(preset, "q8_0"), edit, keep).to_bytes();
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
  for (const char* arch : {"llama", "qwen3", "gemma3", "gemma2", "phi3"})
    EXPECT_NE(e.find(arch), std::string::npos) << "the message should list the supported families: " << e;
}

// Each family's own ways to be wrong, each named.
TEST(ModelErrors, FamilyTensorsAndSettingsAreChecked) {
  // Qwen3 without one of its per-head norms.
  auto qk = modified([](GgufWriter&, const GgufFile&) {},
                     [](const GgufTensorInfo& t) { return t.name != "blk.1.attn_k_norm.weight"; }, "tiny-qwen3");
  EXPECT_NE(load_error(qk).find("'blk.1.attn_k_norm.weight' is missing"), std::string::npos) << load_error(qk);
  // Phi-3's fused QKV one row short of Q + K + V.
  auto fused = modified(
      [](GgufWriter& w, const GgufFile& f) {
        const GgufTensorInfo* t = f.find_tensor("blk.0.attn_qkv.weight");
        const int64_t rows = t->dims[1] - 1;
        const uint64_t row_bytes = t->n_bytes / t->dims[1];
        EXPECT_TRUE(w.add_tensor(t->name, t->type, {t->dims[0], rows}, {t->data, t->data + row_bytes * rows}).ok());
      },
      [](const GgufTensorInfo& t) { return t.name != "blk.0.attn_qkv.weight"; }, "tiny-phi3");
  EXPECT_NE(load_error(fused).find("'blk.0.attn_qkv.weight' has shape [256, 767], expected [256, 768]"), std::string::npos)
      << load_error(fused);
  // Gemma 3 cannot guess its local window.
  auto window = modified([](GgufWriter& w, const GgufFile&) { w.remove("gemma3.attention.sliding_window"); }, nullptr,
                         "tiny-gemma3");
  EXPECT_NE(load_error(window).find("gemma3.attention.sliding_window is missing"), std::string::npos) << load_error(window);
  auto huge = modified([](GgufWriter& w, const GgufFile&) { w.set("gemma3.attention.sliding_window", GgufValue::u32(1u << 30)); },
                       nullptr, "tiny-gemma3");
  EXPECT_NE(load_error(huge).find("sliding_window 1073741824 is out of range"), std::string::npos) << load_error(huge);
  // A rope scaling osprey does not implement is refused by name, not run wrong.
  auto rope = modified([](GgufWriter& w, const GgufFile&) { w.set("llama.rope.scaling.type", GgufValue::str("su")); });
  EXPECT_NE(load_error(rope).find("rope scaling type 'su' is not supported"), std::string::npos) << load_error(rope);
  // A negative soft-cap.
  auto cap = modified([](GgufWriter& w, const GgufFile&) { w.set("gemma2.final_logit_softcapping", GgufValue::f32(-1)); },
                      nullptr, "tiny-gemma2");
  EXPECT_NE(load_error(cap).find("soft-cap"), std::string::npos) << load_error(cap);
  // An expert count that disagrees with the stacked expert tensors.
  auto experts = modified([](GgufWriter& w, const GgufFile&) { w.set("qwen3moe.expert_count", GgufValue::u32(4)); },
                          nullptr, "tiny-qwen3moe");
  EXPECT_NE(load_error(experts).find("'blk.0.ffn_gate_inp.weight' has shape [256, 8], expected [256, 4]"), std::string::npos)
      << load_error(experts);
  auto used = modified([](GgufWriter& w, const GgufFile&) { w.set("olmoe.expert_used_count", GgufValue::u32(9)); }, nullptr,
                       "tiny-olmoe");
  EXPECT_NE(load_error(used).find("expert_used_count 9 must be between 1 and expert_count 8"), std::string::npos)
      << load_error(used);
  // Layers beyond block_count would be ignored weights: refused.
  auto layers = modified([](GgufWriter& w, const GgufFile&) { w.set("qwen3.block_count", GgufValue::u32(1)); }, nullptr,
                         "tiny-qwen3");
  EXPECT_NE(load_error(layers).find("belongs to a layer beyond block_count 1"), std::string::npos) << load_error(layers);
  // A layer number too long for any integer is the same error, not an exception.
  auto huge_layer = modified([](GgufWriter& w, const GgufFile&) {
    EXPECT_TRUE(w.add_tensor("blk.99999999999999999999.extra.weight", DType::kF32, {4}, std::vector<uint8_t>(16, 0)).ok());
  });
  EXPECT_NE(load_error(huge_layer).find("'blk.99999999999999999999.extra.weight' belongs to a layer beyond block_count"),
            std::string::npos)
      << load_error(huge_layer);
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
