// osprey quantize and perplexity as a user meets them: a mix that runs, a dry
// run that writes nothing, refusals that name the problem and leave no file
// behind, perplexity's running figures, and inspect on a safetensors folder.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "formats/gguf.h"
#include "test_util.h"

namespace osprey {
namespace {

namespace fs = std::filesystem;

test::CommandResult osprey(const std::string& args) { return test::run_command(test::osprey_binary() + " " + args); }
bool contains(const std::string& s, const std::string& needle) { return s.find(needle) != std::string::npos; }

std::string temp_path(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("osprey_quantize_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return (dir / name).string();
}

std::string tensor_type(const std::string& path, const std::string& tensor) {
  auto f = GgufFile::open(path);
  if (!f.ok()) return "unreadable: " + f.status().message();
  const GgufTensorInfo* t = f->find_tensor(tensor);
  return t == nullptr ? "missing" : dtype_name(t->type);
}

TEST(Quantize, AMixThatLoadsAndRuns) {
  const std::string f16 = test::synth_model("tiny", "f16");
  const std::string out = temp_path("mix.gguf");
  const auto r = osprey("quantize " + f16 + " " + out + " q4_k_m -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "Q4_K_M")) << r.out;
  EXPECT_TRUE(contains(r.out, "bits per weight")) << r.out;
  EXPECT_EQ(tensor_type(out, "output.weight"), "q6_k");
  EXPECT_EQ(tensor_type(out, "blk.0.attn_q.weight"), "q4_k");
  // Of two layers, the last (the last eighth) gets the extra bits.
  EXPECT_EQ(tensor_type(out, "blk.0.ffn_down.weight"), "q4_k");
  EXPECT_EQ(tensor_type(out, "blk.1.ffn_down.weight"), "q6_k");
  EXPECT_EQ(tensor_type(out, "blk.0.attn_norm.weight"), "f32");
  auto file = GgufFile::open(out);
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(*file->get_int("general.file_type"), 15);
  const auto run = osprey("run -m " + out + " -p 'Once upon a time' -n 8 --temp 0 -q");
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_FALSE(fs::exists(out + ".partial"));
  // The same input and recipe give the same bytes, whatever the thread count.
  const std::string again = temp_path("mix1.gguf");
  ASSERT_EQ(osprey("quantize -q " + f16 + " " + again + " q4_k_m -t 1").exit_code, 0);
  EXPECT_EQ(test::read_file(out), test::read_file(again));
}

TEST(Quantize, EveryTypeOspreyReadsCanBeWritten) {
  const std::string f32 = test::synth_model("tiny", "f32");
  for (const char* type : {"q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_k", "q3_k_s", "q4_k_s", "q5_k_s", "q6_k", "bf16"}) {
    const std::string out = temp_path(std::string(type) + ".gguf");
    const auto r = osprey("quantize -q --pure " + f32 + " " + out + " " + type);
    ASSERT_EQ(r.exit_code, 0) << type << ": " << r.err;
    std::string base = type;
    if (base.size() > 4 && base.substr(base.size() - 2) == "_s") base.resize(base.size() - 2);
    EXPECT_EQ(tensor_type(out, "blk.1.ffn_up.weight"), base) << type;
    EXPECT_EQ(tensor_type(out, "output.weight"), base) << type << " with --pure";
    const auto inspect = osprey("inspect --no-tensors " + out + " --against " + f32);
    EXPECT_EQ(inspect.exit_code, 0) << inspect.err;
    fs::remove(out);
  }
}

TEST(Quantize, EveryFamilyQuantizesAndRuns) {
  // Fused Q/K/V (Phi-3), sliding windows (Gemma 3), experts (Qwen3-MoE), and
  // gpt-oss, whose MXFP4 experts are kept as they are.
  for (const auto& [preset, type] : {std::pair{"tiny-phi3", "f16"}, std::pair{"tiny-gemma3", "f16"},
                                     std::pair{"tiny-qwen3moe", "f16"}, std::pair{"tiny-gpt-oss", "mxfp4"}}) {
    const std::string in = test::synth_model(preset, type);
    const std::string out = temp_path(std::string(preset) + "-q4_k_m.gguf");
    // synth writes gpt-oss's other matrices as q8_0: quantizing those again needs the flag.
    const std::string flags = std::string(type) == "mxfp4" ? " --allow-requantize" : "";
    const auto r = osprey("quantize -q" + flags + " " + in + " " + out + " q4_k_m");
    ASSERT_EQ(r.exit_code, 0) << preset << ": " << r.err;
    const auto run = osprey("run -m " + out + " -p 'Once upon a time' -n 4 --temp 0 -q");
    EXPECT_EQ(run.exit_code, 0) << preset << ": " << run.err;
    if (std::string(type) == "mxfp4") EXPECT_EQ(tensor_type(out, "blk.0.ffn_up_exps.weight"), "mxfp4");
    fs::remove(out);
  }
  EXPECT_EQ(tensor_type(test::synth_model("tiny-phi3", "f16"), "blk.0.attn_qkv.weight"), "f16");
}

TEST(Quantize, DryRunListsTheChoicesAndWritesNothing) {
  const std::string f16 = test::synth_model("tiny", "f16");
  const std::string out = temp_path("dry.gguf");
  const auto r = osprey("quantize --dry-run " + f16 + " " + out + " q3_k_m");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "blk.0.attn_v.weight")) << r.out;
  EXPECT_TRUE(contains(r.out, "would write")) << r.out;
  EXPECT_FALSE(fs::exists(out));
}

TEST(Quantize, OverridesForOutputAndEmbeddings) {
  const std::string f16 = test::synth_model("tiny", "f16");
  const std::string out = temp_path("override.gguf");
  const auto r = osprey("quantize -q " + f16 + " " + out + " q4_0 --output-tensor-type q8_0 --token-embedding-type f16");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(tensor_type(out, "output.weight"), "q8_0");
  EXPECT_EQ(tensor_type(out, "token_embd.weight"), "f16");
  const auto bad = osprey("quantize -q " + f16 + " " + out + " q4_0 --output-tensor-type q9_9");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_TRUE(contains(bad.err, "q9_9")) << bad.err;
}

TEST(Quantize, RefusalsNameTheProblemAndLeaveNoFile) {
  const std::string f16 = test::synth_model("tiny", "f16");
  const std::string q8 = test::synth_model("tiny", "q8_0");
  const std::string out = temp_path("refused.gguf");

  const auto unknown = osprey("quantize " + f16 + " " + out + " q4_k_x");
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_TRUE(contains(unknown.err, "q4_k_x") && contains(unknown.err, "Q4_K_M")) << unknown.err;

  const auto same = osprey("quantize " + f16 + " " + f16 + " q4_0");
  EXPECT_EQ(same.exit_code, 1);
  EXPECT_TRUE(contains(same.err, "input file")) << same.err;

  const auto requant = osprey("quantize " + q8 + " " + out + " q4_0");
  EXPECT_EQ(requant.exit_code, 1);
  EXPECT_TRUE(contains(requant.err, "already quantized") && contains(requant.err, "--allow-requantize"))
      << requant.err;
  EXPECT_FALSE(fs::exists(out));
  const auto allowed = osprey("quantize -q --allow-requantize " + q8 + " " + out + " q4_0");
  EXPECT_EQ(allowed.exit_code, 0) << allowed.err;
  fs::remove(out);

  const auto missing = osprey("quantize /no/such/model.gguf " + out + " q4_0");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_TRUE(contains(missing.err, "/no/such/model.gguf")) << missing.err;

  // A NaN in the weights: named with its tensor and row, and nothing written.
  const std::string damaged = temp_path("nan.gguf");
  fs::copy_file(test::synth_model("tiny", "f32"), damaged, fs::copy_options::overwrite_existing);
  {
    auto f = GgufFile::open(damaged);
    ASSERT_TRUE(f.ok());
    const GgufTensorInfo* t = f->find_tensor("blk.1.ffn_up.weight");
    ASSERT_NE(t, nullptr);
    const uint64_t at = f->data_offset() + t->offset + 3 * static_cast<uint64_t>(t->dims[0]) * 4 + 8;
    std::fstream io(damaged, std::ios::in | std::ios::out | std::ios::binary);
    io.seekp(static_cast<std::streamoff>(at));
    const float nan = std::numeric_limits<float>::quiet_NaN();
    io.write(reinterpret_cast<const char*>(&nan), sizeof nan);
  }
  const auto bad = osprey("quantize -q " + damaged + " " + out + " q4_k_m");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_TRUE(contains(bad.err, "blk.1.ffn_up.weight") && contains(bad.err, "row 3")) << bad.err;
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out + ".partial"));
}

TEST(PerplexityCli, RunningFiguresAndFinalEstimate) {
  const std::string model = test::synth_model("tiny", "q8_0");
  const std::string text = "/usr/share/common-licenses/GPL-3";
  if (!fs::exists(text)) GTEST_SKIP() << text << " is absent";
  const auto r = osprey("perplexity -m " + model + " -f " + text + " -c 64 --chunks 5 -q");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (int i = 1; i <= 5; ++i) EXPECT_TRUE(contains(r.out, "[" + std::to_string(i) + "]")) << r.out;
  EXPECT_FALSE(contains(r.out, "[6]")) << r.out;
  EXPECT_TRUE(contains(r.out, "Final estimate: PPL = ")) << r.out;
  EXPECT_TRUE(contains(r.err, "tokens/s")) << r.err;
  const std::string short_text = temp_path("short.txt");
  std::ofstream(short_text) << "too short";
  const auto bad = osprey("perplexity -m " + model + " -f " + short_text + " -c 64");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_TRUE(contains(bad.err, "shorter than one window")) << bad.err;
  const auto missing = osprey("perplexity -m " + model + " -f /no/such/text.txt");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_TRUE(contains(missing.err, "/no/such/text.txt")) << missing.err;
}


TEST(InspectSafetensors, FolderAndFileAndErrors) {
  const std::string dir = temp_path("hf");
  fs::create_directories(dir);
  // One F32 tensor of 2 values and a config naming the family.
  const std::string header = R"({"model.norm.weight":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  std::string bytes(8, '\0');
  bytes[0] = static_cast<char>(header.size());
  bytes += header + std::string(8, '\0');
  std::ofstream(dir + "/model.safetensors", std::ios::binary) << bytes;
  std::ofstream(dir + "/config.json") << R"({"model_type":"qwen3","architectures":["Qwen3ForCausalLM"]})";
  const auto r = osprey("inspect " + dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "model_type:  qwen3")) << r.out;
  EXPECT_TRUE(contains(r.out, "1 tensors, 2 parameters")) << r.out;
  EXPECT_TRUE(contains(r.out, "model.norm.weight")) << r.out;
  const auto file = osprey("inspect " + dir + "/model.safetensors");
  EXPECT_EQ(file.exit_code, 0) << file.err;
  std::ofstream(dir + "/model.safetensors", std::ios::binary) << bytes.substr(0, 20);
  const auto broken = osprey("inspect " + dir);
  EXPECT_EQ(broken.exit_code, 1);
  EXPECT_TRUE(contains(broken.err, "model.safetensors") && contains(broken.err, "runs past the end")) << broken.err;
  const auto empty = osprey("inspect " + temp_path(""));
  EXPECT_EQ(empty.exit_code, 1);
  EXPECT_TRUE(contains(empty.err, "no model.safetensors")) << empty.err;
}

}  // namespace
}  // namespace osprey
