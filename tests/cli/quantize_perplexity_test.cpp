// osprey quantize and perplexity as a user meets them: a mix that runs, a dry
// run that writes nothing, refusals that name the problem and leave no file
// behind, perplexity's running figures, and inspect on a safetensors folder.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "convert/importance_matrix.h"
#include "formats/gguf.h"
#include "test_util.h"

namespace osprey {
namespace {

namespace fs = std::filesystem;

test::CommandResult osprey(const std::string& args) { return test::run_osprey(args); }
using test::contains;
std::string temp_path(const std::string& name) { return test::temp_path("osprey_quantize_test", name); }

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
    if (std::string(type) == "mxfp4") {
      EXPECT_EQ(tensor_type(out, "blk.0.ffn_up_exps.weight"), "mxfp4");
    }
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


TEST(Imatrix, GathersEveryMatrixAndQuantizeUsesIt) {
  const std::string text = "/usr/share/common-licenses/GPL-3";
  if (!fs::exists(text)) GTEST_SKIP() << text << " is absent";
  // A mixture of experts, so that per-expert data goes through the whole path.
  for (const char* preset : {"tiny", "tiny-qwen3moe", "tiny-phi3"}) {
    SCOPED_TRACE(preset);
    const std::string f16 = test::synth_model(preset, "f16");
    const std::string imatrix = temp_path(std::string(preset) + "-imatrix.gguf");
    const auto r = osprey("imatrix -q -m " + f16 + " -f " + text + " -c 64 --chunks 3 -o " + imatrix);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "over 3 windows of 64 tokens")) << r.out;
    auto m = ImportanceMatrix::load(imatrix);
    ASSERT_TRUE(m.ok()) << m.status().message();
    EXPECT_EQ(m->chunk_count, 3);
    EXPECT_EQ(m->chunk_size, 64);
    ASSERT_EQ(m->datasets.size(), 1u);
    auto model = GgufFile::open(f16);
    ASSERT_TRUE(model.ok());
    // Every matrix of every layer that a token passes through has data, over
    // 3 x 63 tokens (a window's last token predicts nothing, so it is not run).
    int64_t matrices = 0;
    for (const GgufTensorInfo& t : model->tensors()) {
      if (t.name.rfind("blk.", 0) != 0 || t.dims.size() < 2 || contains(t.name, "ffn_gate_inp")) continue;
      ++matrices;
      const auto it = m->entries.find(t.name);
      ASSERT_NE(it, m->entries.end()) << t.name;
      const ImportanceMatrix::Entry& e = it->second;
      EXPECT_EQ(e.n_cols, t.dims[0]) << t.name;
      EXPECT_EQ(e.n_experts, t.dims.size() >= 3 ? t.dims[2] : 1) << t.name;
      float total = 0;
      for (float c : e.counts) total += c;
      // Each token passes once through a dense matrix, n_expert_used times through a mixture's.
      if (e.n_experts == 1) {
        EXPECT_EQ(total, 189.0f) << t.name;
      } else {
        EXPECT_EQ(std::fmod(total, 189.0f), 0.0f) << t.name;
      }
    }
    EXPECT_EQ(static_cast<int64_t>(m->entries.size()), matrices);
    // Matrices that read the same normed input have the same sums.
    const std::string q = std::string(preset) == "tiny-phi3" ? "blk.0.attn_qkv.weight" : "blk.0.attn_q.weight";
    if (std::string(preset) == "tiny") {
      EXPECT_EQ(m->entries.at("blk.0.attn_q.weight").sum_sq, m->entries.at("blk.0.attn_v.weight").sum_sq);
      EXPECT_EQ(m->entries.at("blk.1.ffn_gate.weight").sum_sq, m->entries.at("blk.1.ffn_up.weight").sum_sq);
    }
    EXPECT_GT(m->entries.at(q).sum_sq[0], 0.0f);

    const std::string out = temp_path(std::string(preset) + "-iq.gguf");
    const auto qr = osprey("quantize -q " + f16 + " " + out + " q4_k_m --imatrix " + imatrix);
    ASSERT_EQ(qr.exit_code, 0) << qr.err;
    EXPECT_TRUE(contains(qr.out, "weights the error of")) << qr.out;
    EXPECT_EQ(osprey("run -m " + out + " -p 'Once upon a time' -n 4 --temp 0 -q").exit_code, 0);
    // The weights change what the k-quants choose.
    const std::string plain = temp_path(std::string(preset) + "-plain.gguf");
    ASSERT_EQ(osprey("quantize -q " + f16 + " " + plain + " q4_k_m").exit_code, 0);
    EXPECT_NE(test::read_file(out), test::read_file(plain));
    // The older layout, for ik_llama.cpp, holds the same weights.
    const std::string dat = temp_path(std::string(preset) + "-imatrix.dat");
    ASSERT_EQ(osprey("imatrix -q -m " + f16 + " -f " + text + " -c 64 --chunks 3 -o " + dat).exit_code, 0);
    auto legacy = ImportanceMatrix::load(dat);
    ASSERT_TRUE(legacy.ok()) << legacy.status().message();
    for (const auto& [name, e] : m->entries)
      for (int64_t x = 0; x < e.n_experts; ++x) {
        const std::vector<float> a = m->column_weights(name, e.n_cols, x), b = legacy->column_weights(name, e.n_cols, x);
        ASSERT_EQ(a.size(), b.size()) << name << " expert " << x;
        for (size_t j = 0; j < a.size(); ++j) ASSERT_NEAR(a[j], b[j], 1e-5f * a[j]) << name;
      }
    const std::string from_dat = temp_path(std::string(preset) + "-dat.gguf");
    EXPECT_EQ(osprey("quantize -q " + f16 + " " + from_dat + " q4_k_m --imatrix " + dat).exit_code, 0);
    for (const std::string& f : {imatrix, out, plain, dat, from_dat}) fs::remove(f);
  }
}

TEST(Imatrix, RefusesAMatrixFromAnotherModelAndBadFiles) {
  const std::string text = "/usr/share/common-licenses/GPL-3";
  if (!fs::exists(text)) GTEST_SKIP() << text << " is absent";
  // Data under names this model does not have: nothing would be weighted.
  ImportanceMatrix foreign;
  foreign.entries["model.layers.0.self_attn.q_proj.weight"] = {256, 1, std::vector<float>(256, 1.0f), {1.0f}};
  const std::string imatrix = temp_path("foreign.gguf");
  ASSERT_TRUE(foreign.save(imatrix).ok());
  const std::string out = temp_path("wrong.gguf");
  const auto wrong = osprey("quantize -q " + test::synth_model("tiny", "f16") + " " + out + " q4_k_m --imatrix " + imatrix);
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_TRUE(contains(wrong.err, "none of")) << wrong.err;
  EXPECT_FALSE(fs::exists(out));
  // A matrix of the right name and the wrong width.
  ImportanceMatrix narrow;
  narrow.entries["blk.0.attn_q.weight"] = {100, 1, std::vector<float>(100, 1.0f), {1.0f}};
  const std::string narrow_path = temp_path("narrow.gguf");
  ASSERT_TRUE(narrow.save(narrow_path).ok());
  const auto shape = osprey("quantize -q " + test::synth_model("tiny", "f16") + " " + out + " q4_k_m --imatrix " + narrow_path);
  EXPECT_EQ(shape.exit_code, 1);
  EXPECT_TRUE(contains(shape.err, "another model") && contains(shape.err, "blk.0.attn_q.weight")) << shape.err;
  EXPECT_FALSE(fs::exists(out));
  // A model file is not an importance matrix.
  const std::string model = test::synth_model("tiny", "f16");
  const auto not_imatrix = osprey("quantize -q " + model + " " + out + " q4_k_m --imatrix " + model);
  EXPECT_EQ(not_imatrix.exit_code, 1);
  EXPECT_TRUE(contains(not_imatrix.err, "--imatrix")) << not_imatrix.err;
  const std::string junk = temp_path("junk.dat");
  std::ofstream(junk) << "this is not an importance matrix at all";
  const auto bad = osprey("quantize -q " + model + " " + out + " q4_k_m --imatrix " + junk);
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_TRUE(contains(bad.err, junk)) << bad.err;
  const auto too_short = osprey("imatrix -m " + model + " -f " + temp_path("junk.dat") + " -c 512");
  EXPECT_EQ(too_short.exit_code, 1);
  EXPECT_TRUE(contains(too_short.err, "fewer than one window")) << too_short.err;
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
  // The tokenizer as osprey reads it; a broken one is reported, not fatal.
  std::ofstream(dir + "/tokenizer.json")
      << R"({"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]},"normalizer":{"type":"NFC"},)"
      << R"("pre_tokenizer":{"type":"ByteLevel","use_regex":true}})";
  const auto tok = osprey("inspect " + dir);
  EXPECT_TRUE(contains(tok.out, "tokenizer:   byte-level BPE, 3 tokens, 1 merges, NFC")) << tok.out;
  std::ofstream(dir + "/tokenizer.json") << R"({"model":{"type":"Unigram"}})";
  const auto bad_tok = osprey("inspect " + dir);
  EXPECT_EQ(bad_tok.exit_code, 0) << bad_tok.err;
  EXPECT_TRUE(contains(bad_tok.out, "Unigram")) << bad_tok.out;
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
