// LoRA adapters: osprey applies each pair beside the base product; the
// independent reference merges W + s * B A in double. The logits must meet,
// a zero scale must give the base model's bits, sequences with different
// adapters must share a pass without changing each other's bits, and a file
// that is not an adapter for this model must be refused by name.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>

#include "formats/gguf.h"
#include "models/model.h"
#include "reference/reference_model.h"
#include "models/edited_gguf.h"
#include "test_util.h"

namespace osprey {
namespace {

// `osprey synth --lora` for a synthesized model, cached beside it.
std::string synth_lora(const std::string& base, const std::string& type, uint64_t seed,
                       const std::string& extra = "") {
  const std::string path = base + ".lora-" + type + "-" + std::to_string(seed) + test::test_name(extra) + ".gguf";
  if (std::filesystem::exists(path)) return path;
  const std::string tmp = path + ".tmp" + std::to_string(::getpid());
  const auto r = test::run_synth("--lora '" + base + "' --type " + type + " --seed " + std::to_string(seed) +
                                  " " + extra + " -o '" + tmp + "'");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::filesystem::rename(tmp, path);
  return path;
}

double rel_rms(const float* got, const std::vector<double>& want) {
  double err = 0, ref = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    err += (got[i] - want[i]) * (got[i] - want[i]);
    ref += want[i] * want[i];
  }
  return std::sqrt(err / ref);
}

double rel_rms(const std::vector<double>& got, const std::vector<double>& want) {
  const std::vector<float> f(got.begin(), got.end());
  return rel_rms(f.data(), want);
}

const std::vector<int32_t> kPrompt = {1, 17, 300, 42, 99, 5, 250, 7, 120, 64, 3, 411};

struct Case {
  const char* preset;
  const char* type;      // the base model's
  const char* lora_type; // the adapter's (f32 lets the tolerance be tight)
  double tol;
};

class LoraReference : public ::testing::TestWithParam<Case> {};

// Over a prompt and 8 greedy steps, osprey with the adapter at 0.75 against
// the reference with the merged matrices. The adapter must also move the
// reference's logits well beyond the tolerance, or the test would prove nothing.
TEST_P(LoraReference, LogitsAgreeWithTheMergedReference) {
  const Case c = GetParam();
  const std::string base = test::synth_model(c.preset, c.type, 42, /*plain=*/true);
  ASSERT_FALSE(base.empty());
  const std::string adapter = synth_lora(base, c.lora_type, 7);
  const double scale = 0.75;
  reference::Model ref, plain;
  ASSERT_EQ(ref.load(base, 64), "");
  ASSERT_EQ(plain.load(base, 64), "");
  ASSERT_EQ(ref.add_lora(adapter, scale), "");
  ModelOptions mo;
  mo.n_threads = 2;
  mo.n_ctx = 64;
  mo.n_batch = 5;
  mo.lora = {{adapter, static_cast<float>(scale)}};
  auto model = Model::load(base, mo);
  ASSERT_TRUE(model.ok()) << model.status().message();
  ASSERT_EQ((*model)->adapters().size(), 1u);

  std::vector<double> want, without;
  for (int32_t t : kPrompt) want = ref.step(t), without = plain.step(t);
  EXPECT_GT(rel_rms(without, want), 10 * c.tol) << "the adapter hardly changes the logits";
  auto got = (*model)->eval(kPrompt.data(), static_cast<int64_t>(kPrompt.size()));
  ASSERT_TRUE(got.ok()) << got.status().message();
  for (int step = 0; step < 8; ++step) {
    EXPECT_LT(rel_rms(*got, want), c.tol) << c.preset << " step " << step;
    const int32_t next = static_cast<int32_t>(std::max_element(want.begin(), want.end()) - want.begin());
    want = ref.step(next);
    got = (*model)->eval(&next, 1);
    ASSERT_TRUE(got.ok());
  }
}

// llama with separate projections, qwen3 with Q/K norms, phi3 with fused
// attn_qkv and gate+up (the adapter's B is cut into the same parts), gemma3
// with post-norms and a window, and a quantized base under a q8_0/f16 adapter.
const Case kCases[] = {
    {"tiny", "f32", "f32", 5e-3},        {"tiny-qwen3", "f32", "f32", 5e-3}, {"tiny-phi3", "f32", "f32", 5e-3},
    {"tiny-gemma3", "f32", "f32", 5e-3}, {"tiny", "q8_0", "q8_0", 4e-2},
};

INSTANTIATE_TEST_SUITE_P(Families, LoraReference, ::testing::ValuesIn(kCases), [](const auto& info) {
  return test::test_name(std::string(info.param.preset) + "_" + info.param.type + "_" + info.param.lora_type);
});

std::unique_ptr<Model> load(const std::string& path, std::vector<LoraSpec> lora, int n_seq = 1, bool prefix = false) {
  ModelOptions mo;
  mo.n_threads = 2;
  mo.n_ctx = 64;
  mo.n_batch = 16;
  mo.n_seq_max = n_seq;
  mo.prefix_cache = prefix;
  mo.lora = std::move(lora);
  auto m = Model::load(path, mo);
  EXPECT_TRUE(m.ok()) << m.status().message();
  return m.ok() ? std::move(m).value() : nullptr;
}

std::vector<float> logits_of(Model& m, const std::vector<int32_t>& tokens) {
  auto got = m.eval(tokens.data(), static_cast<int64_t>(tokens.size()));
  EXPECT_TRUE(got.ok()) << got.status().message();
  if (!got.ok()) return {};
  return std::vector<float>(*got, *got + m.config().n_vocab);
}

TEST(Lora, ZeroScaleGivesTheBaseModelsBits) {
  const std::string base = test::synth_model("tiny-qwen3", "q8_0", 42, true);
  const std::string adapter = synth_lora(base, "q8_0", 7);
  auto plain = load(base, {});
  auto zero = load(base, {{adapter, 0.0f}});
  auto one = load(base, {{adapter, 1.0f}});
  ASSERT_TRUE(plain && zero && one);
  const auto want = logits_of(*plain, kPrompt);
  const auto got = logits_of(*zero, kPrompt);
  ASSERT_EQ(want.size(), got.size());
  EXPECT_EQ(std::memcmp(want.data(), got.data(), want.size() * sizeof(float)), 0);
  // The same after switching a loaded adapter off for the sequence.
  const float off = 0.0f;
  ASSERT_TRUE(one->seq_set_lora(0, &off).ok());
  const auto switched = logits_of(*one, kPrompt);
  EXPECT_EQ(std::memcmp(want.data(), switched.data(), want.size() * sizeof(float)), 0);
  // And on again, it differs.
  one->reset();
  const float on = 1.0f;
  ASSERT_TRUE(one->seq_set_lora(0, &on).ok());
  EXPECT_NE(logits_of(*one, kPrompt), want);
  // Only an empty sequence may change adapters.
  EXPECT_FALSE(one->seq_set_lora(0, &off).ok());
}

// Three sequences with three adapter settings in one pass: each gets the
// bits it gets alone.
TEST(Lora, SequencesWithDifferentAdaptersShareAPass) {
  const std::string base = test::synth_model("tiny", "q4_0", 42, true);
  const std::string a1 = synth_lora(base, "f16", 7), a2 = synth_lora(base, "q8_0", 8);
  const std::vector<std::vector<float>> scales = {{0, 0}, {1, 0}, {0.5f, -1}};
  const std::vector<std::vector<int32_t>> prompts = {{1, 5, 9, 13, 17}, {1, 400, 3, 22}, {1, 5, 9, 13, 17, 21}};
  std::vector<std::vector<float>> alone;
  for (size_t s = 0; s < scales.size(); ++s) {
    auto m = load(base, {{a1, 1}, {a2, 1}});
    ASSERT_TRUE(m && m->seq_set_lora(0, scales[s].data()).ok());
    alone.push_back(logits_of(*m, prompts[s]));
  }
  EXPECT_NE(alone[0], alone[2] ) << "the adapters should change the logits";
  auto m = load(base, {{a1, 1}, {a2, 1}}, 3);
  ASSERT_TRUE(m);
  std::vector<BatchItem> items;
  for (int s = 0; s < 3; ++s) {
    ASSERT_TRUE(m->seq_set_lora(s, scales[s].data()).ok());
    items.push_back({s, prompts[s].data(), static_cast<int64_t>(prompts[s].size()), true});
  }
  auto got = m->eval_batch(items.data(), items.size());
  ASSERT_TRUE(got.ok()) << got.status().message();
  const int64_t V = m->config().n_vocab;
  for (int s = 0; s < 3; ++s)
    EXPECT_EQ(std::memcmp(*got + s * V, alone[s].data(), V * sizeof(float)), 0) << "sequence " << s;
}

// The prefix cache shares KV blocks only between sequences that ran the
// same adapters: keys computed under an adapter are not the base model's.
TEST(Lora, PrefixCacheKeepsAdaptersApart) {
  const std::string base = test::synth_model("tiny", "q8_0", 42, true);
  const std::string adapter = synth_lora(base, "q8_0", 7);
  auto m = load(base, {{adapter, 1}}, 3, /*prefix=*/true);
  ASSERT_TRUE(m);
  std::vector<int32_t> prompt(40);
  for (int i = 0; i < 40; ++i) prompt[i] = 1 + i * 7;
  BatchItem first{0, prompt.data(), 40, true};
  ASSERT_TRUE(m->eval_batch(&first, 1).ok());
  const float off = 0, on = 1;
  ASSERT_TRUE(m->seq_set_lora(1, &off).ok());
  EXPECT_EQ(m->seq_attach_prefix(1, prompt.data(), 40), 0) << "blocks made with the adapter reused without it";
  ASSERT_TRUE(m->seq_set_lora(2, &on).ok());
  EXPECT_EQ(m->seq_attach_prefix(2, prompt.data(), 40), 32);
}

// What a user may pass as --lora by mistake, and what a hostile file may hold.
class LoraRefusal : public ::testing::Test {
 protected:
  std::string write(const std::string& name, const std::function<void(GgufWriter&, const GgufFile&)>& edit,
                    const std::function<bool(const GgufTensorInfo&)>& keep = nullptr) {
    const GgufWriter w = test::edited_gguf(synth_lora(base_, "q8_0", 7), edit, keep);
    const std::string path = test::temp_path("lora_test", name + ".gguf");
    EXPECT_TRUE(w.write(path).ok());
    return path;
  }
  std::string error(const std::string& adapter) {
    ModelOptions mo;
    mo.n_ctx = 32;
    mo.lora = {{adapter, 1}};
    auto m = Model::load(base_, mo);
    return m.ok() ? "" : m.status().message();
  }
  std::string base_ = test::synth_model("tiny", "q8_0", 42, true);
};

TEST_F(LoraRefusal, EachMistakeIsNamed) {
  auto none = [](GgufWriter&, const GgufFile&) {};
  const struct {
    std::string adapter, want;
  } cases[] = {
      {base_, "is not an adapter"},
      {write("arch", [](GgufWriter& w, const GgufFile&) { w.set("general.architecture", GgufValue::str("qwen2")); }),
       "adapter for 'qwen2' models; this model is 'llama'"},
      {write("type", [](GgufWriter& w, const GgufFile&) { w.set("general.type", GgufValue::str("model")); }),
       "is not an adapter (general.type is 'model')"},
      {write("kind", [](GgufWriter& w, const GgufFile&) { w.set("adapter.type", GgufValue::str("ia3")); }),
       "adapter.type is 'ia3'"},
      {write("alpha", [](GgufWriter& w, const GgufFile&) { w.set("adapter.lora.alpha", GgufValue::f32(NAN)); }),
       "adapter.lora.alpha"},
      {write("no_b", none, [](const GgufTensorInfo& t) { return t.name != "blk.1.ffn_up.weight.lora_b"; }),
       "'blk.1.ffn_up.weight' has lora_a but no lora_b"},
      {write("empty", none, [](const GgufTensorInfo&) { return false; }), "holds no LoRA tensors"},
      {write("stray",
             [](GgufWriter& w, const GgufFile&) {
               EXPECT_TRUE(w.add_tensor("blk.0.attn_q.weight", DType::kF32, {4}, std::vector<uint8_t>(16)).ok());
             }),
       "'blk.0.attn_q.weight' is not a LoRA tensor"},
      {write("missing",
             [](GgufWriter& w, const GgufFile& f) {
               for (const char* s : {"lora_a", "lora_b"}) {
                 const GgufTensorInfo* t = f.find_tensor(std::string("blk.0.attn_q.weight.") + s);
                 EXPECT_TRUE(w.add_tensor(std::string("blk.9.attn_q.weight.") + s, t->type, t->dims,
                                          {t->data, t->data + t->n_bytes}).ok());
               }
             }),
       "adapts 'blk.9.attn_q.weight', which this model does not have"},
      {write("embd",
             [](GgufWriter& w, const GgufFile& f) {
               const GgufTensorInfo* a = f.find_tensor("blk.0.attn_q.weight.lora_a");
               const GgufTensorInfo* b = f.find_tensor("blk.0.attn_q.weight.lora_b");
               EXPECT_TRUE(w.add_tensor("token_embd.weight.lora_a", a->type, a->dims, {a->data, a->data + a->n_bytes}).ok());
               EXPECT_TRUE(w.add_tensor("token_embd.weight.lora_b", b->type, b->dims, {b->data, b->data + b->n_bytes}).ok());
             }),
       "adapts 'token_embd.weight'; osprey applies adapters to the attention"},
      {synth_lora(test::synth_model("tiny-llama3", "q8_0", 42, true), "q8_0", 7),
       "this model's matrix needs [256, r]"},
  };
  for (const auto& c : cases) {
    const std::string e = error(c.adapter);
    EXPECT_NE(e.find(c.want), std::string::npos) << c.adapter << ": " << e;
  }
}

TEST(Lora, ScaleArgumentsParse) {
  auto a = parse_lora_spec("dir:with:colons/x.gguf:0.25");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->path, "dir:with:colons/x.gguf");
  EXPECT_EQ(a->scale, 0.25f);
  auto b = parse_lora_spec("c:/x.gguf");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->path, "c:/x.gguf");
  EXPECT_EQ(b->scale, 1.0f);
  EXPECT_FALSE(parse_lora_spec("x.gguf:nan").ok());
  EXPECT_FALSE(parse_lora_spec(":2").ok());
}

}  // namespace
}  // namespace osprey
