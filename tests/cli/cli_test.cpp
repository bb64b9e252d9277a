// The osprey command as a user meets it: help, real runs, and clear errors.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <tuple>
#include <nlohmann/json.hpp>

#include "test_util.h"

namespace osprey {
namespace {

test::CommandResult osprey(const std::string& args) { return test::run_command(test::osprey_binary() + " " + args); }

bool contains(const std::string& s, const std::string& needle) { return s.find(needle) != std::string::npos; }

TEST(Cli, HelpForEverySubcommand) {
  const auto top = osprey("--help");
  EXPECT_EQ(top.exit_code, 0);
  for (const char* sub : {"run", "inspect", "tokenize", "synth", "bench", "quantize", "perplexity", "imatrix", "convert", "serve", "chat"}) {
    EXPECT_TRUE(contains(top.out, sub)) << sub;
    const auto h = osprey(std::string(sub) + " --help");
    EXPECT_EQ(h.exit_code, 0) << sub;
    EXPECT_TRUE(contains(h.out, "--")) << sub;
  }
  EXPECT_TRUE(contains(osprey("run --help").out, "--temp"));
  EXPECT_TRUE(contains(osprey("synth --help").out, "tinyllama-1.1b"));
}

TEST(Cli, RunStreamsTextAndReportsSpeed) {
  const std::string model = test::synth_model("tiny", "q8_0");
  const auto r = osprey("run -m " + model + " -p 'Once upon a time' -n 12 --temp 0 --show-ids");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(r.out.empty());
  EXPECT_TRUE(contains(r.err, "prompt:")) << r.err;
  EXPECT_TRUE(contains(r.err, "generation: 12 tokens")) << r.err;
  EXPECT_TRUE(contains(r.err, "tokens/s"));
  // Greedy is deterministic: the same command gives the same ids.
  const auto again = osprey("run -m " + model + " -p 'Once upon a time' -n 12 --temp 0 --show-ids");
  auto ids = [](const std::string& err) {
    const size_t at = err.find("generated ids");
    return err.substr(at, err.find(']', at) - at);
  };
  EXPECT_EQ(ids(r.err), ids(again.err));
  // So is sampling with a fixed seed.
  const auto s1 = osprey("run -m " + model + " -p 'Hi' -n 12 --temp 1 --seed 7 --show-ids -q");
  const auto s2 = osprey("run -m " + model + " -p 'Hi' -n 12 --temp 1 --seed 7 --show-ids -q");
  EXPECT_EQ(s1.err, s2.err);
  EXPECT_EQ(s1.out, s2.out);
}

TEST(Cli, ContextLimitsAreClear) {
  const std::string model = test::synth_model("tiny", "q8_0");
  const auto too_long = osprey("run -m " + model + " -c 16 -p 'this prompt is certainly longer than sixteen tokens of context'");
  EXPECT_EQ(too_long.exit_code, 1);
  EXPECT_TRUE(contains(too_long.err, "context has room for 16")) << too_long.err;
  const auto fills = osprey("run -m " + model + " -c 24 -p 'Once' -n 100 --temp 0");
  EXPECT_EQ(fills.exit_code, 0) << fills.err;
  EXPECT_TRUE(contains(fills.err, "context of 24 tokens is full")) << fills.err;
}

// synth --lora writes an adapter that inspect describes and run applies:
// at scale 0 the output and its log-probabilities are the base model's, at
// scale 1 the perplexity of a text moves.
TEST(Cli, LoraAdapterFromSynthRunsAndScales) {
  const std::string model = test::synth_model("tiny", "q8_0");
  const std::string adapter = test::temp_path("cli_test", "lora.gguf");
  const auto made = osprey("synth --lora " + model + " --lora-rank 4 --lora-alpha 8 -o " + adapter);
  ASSERT_EQ(made.exit_code, 0) << made.err;
  EXPECT_TRUE(contains(made.err, "rank 4, alpha 8")) << made.err;
  const auto info = osprey("inspect " + adapter);
  EXPECT_TRUE(contains(info.out, "lora for llama models, 15 matrices, alpha 8")) << info.out;
  const std::string text = test::temp_path("cli_test", "lora.txt");
  std::ofstream(text) << "the quick brown fox jumps over the lazy dog, again and again and again, until the end of the text";
  auto ppl = [&](const std::string& extra) {
    const auto r = osprey("perplexity -m " + model + " -f " + text + " -c 16 " + extra);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "Final estimate: PPL = ")) << r.out;
    return r.out;
  };
  const std::string plain = ppl("");
  EXPECT_EQ(ppl("--lora " + adapter + ":0"), plain);
  EXPECT_NE(ppl("--lora " + adapter), plain);
  const auto wrong = osprey("run -m " + model + " --lora " + model + " -p hi");
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_TRUE(contains(wrong.err, "is not an adapter")) << wrong.err;
  const auto scale = osprey("run -m " + model + " --lora " + adapter + ":1e9 -p hi");
  EXPECT_EQ(scale.exit_code, 1);
  EXPECT_TRUE(contains(scale.err, "not a finite number of sensible size")) << scale.err;
}

TEST(Cli, BadInputGivesAMessageNotACrash) {
  const auto missing = osprey("run -m /no/such/model.gguf -p hi");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_TRUE(contains(missing.err, "/no/such/model.gguf")) << missing.err;
  const std::string junk = std::filesystem::temp_directory_path() / "osprey-junk.gguf";
  std::ofstream(junk) << "GGUF this is not really a model";
  const auto corrupt = osprey("inspect " + junk);
  EXPECT_EQ(corrupt.exit_code, 1);
  EXPECT_TRUE(contains(corrupt.err, "corrupt GGUF")) << corrupt.err;
  const auto temp = osprey("run -m " + test::synth_model("tiny", "q8_0") + " -p hi --temp -1");
  EXPECT_EQ(temp.exit_code, 1);
  EXPECT_TRUE(contains(temp.err, "temperature")) << temp.err;
  const auto preset = osprey("synth --preset nope -o /tmp/x.gguf");
  EXPECT_EQ(preset.exit_code, 1);
  EXPECT_TRUE(contains(preset.err, "unknown preset 'nope'"));
}

TEST(Cli, InspectShowsModelTokenizerTensorsAndMemory) {
  const auto r = osprey("inspect " + test::synth_model("tiny-qwen2", "q4_0"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* needle : {"qwen2", "n_head_kv", "byte-level BPE", "pre-tokenizer", "blk.0.attn_q.bias", "q4_0",
                             "memory:", "KV cache", "2 (Q4_0)"})
    EXPECT_TRUE(contains(r.out, needle)) << needle;
}

// inspect names the kernel level that runs and, per weight type of the
// file's matrices, the layout and prompt tiles its kernel uses. The scalar
// level, forced, is the same on every machine.
TEST(Cli, InspectNamesTheKernelsThatRun) {
  const std::string model = test::synth_model("tiny", "q4_0");
  const auto best = osprey("inspect --no-tensors " + model);
  ASSERT_EQ(best.exit_code, 0) << best.err;
  EXPECT_TRUE(contains(best.out, "kernels:     ")) << best.out;
  EXPECT_TRUE(contains(best.out, "(this CPU: ")) << best.out;
  EXPECT_TRUE(contains(best.out, "  q4_0   rows ")) << best.out;
  EXPECT_FALSE(contains(best.out, "  f32    rows")) << "1-D norm weights are not matrices\n" << best.out;
  const auto scalar = test::run_command("OSPREY_ISA=scalar " + test::osprey_binary() + " inspect --no-tensors " + model);
  ASSERT_EQ(scalar.exit_code, 0) << scalar.err;
  EXPECT_TRUE(contains(scalar.out, "kernels:     scalar (")) << scalar.out;
  EXPECT_TRUE(contains(scalar.out, "  q4_0   rows as stored, one token at a time")) << scalar.out;
}

// The relative RMS error of one type on the "by type" line of inspect --against.
double error_of(const std::string& out, const std::string& type) {
  const size_t at = out.find("by type:");
  if (at == std::string::npos) return -1;
  const size_t t = out.find(" " + type + " ", at);
  return t == std::string::npos ? -1 : std::stod(out.substr(t + type.size() + 2));
}

TEST(Cli, InspectAgainstTheSourceFileReportsQuantizationError) {
  // Same preset and seed, so the q4_0 and q3_k files are encodings of the f32 one.
  const std::string f32 = test::synth_model("tiny", "f32");
  const auto self = osprey("inspect --no-tensors " + f32 + " --against " + f32);
  ASSERT_EQ(self.exit_code, 0) << self.err;
  EXPECT_EQ(error_of(self.out, "f32"), 0.0) << self.out;
  for (const auto& [type, lo, hi] : {std::tuple{"q4_0", 0.04, 0.12}, std::tuple{"q3_k", 0.08, 0.18}}) {
    const auto r = osprey("inspect " + test::synth_model("tiny", type) + " --against " + f32);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "blk.0.ffn_down.weight")) << "no per-tensor line";
    const double e = error_of(r.out, type);
    EXPECT_GT(e, lo) << type << "\n" << r.out;
    EXPECT_LT(e, hi) << type << "\n" << r.out;
  }
  const auto missing = osprey("inspect " + f32 + " --against /no/such/file.gguf");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_TRUE(contains(missing.err, "/no/such/file.gguf")) << missing.err;
}

TEST(Cli, TokenizeIdsAndPieces) {
  const std::string model = test::synth_model("tiny-llama3", "q8_0");
  const auto ids = osprey("tokenize -m " + model + " --ids 'Hello world'");
  ASSERT_EQ(ids.exit_code, 0);
  EXPECT_EQ(ids.out.front(), '[');
  const auto pieces = osprey("tokenize -m " + model + " --no-bos 'Hello world'");
  EXPECT_TRUE(contains(pieces.out, "-> 'H")) << pieces.out;
  EXPECT_FALSE(contains(pieces.out, "begin_of_text")) << "--no-bos still added BOS";
  const std::string dir = test::shared_testdata_dir();
  if (dir.empty()) GTEST_SKIP() << "../shared/testdata is absent: vocabulary-only files not checked";
  const auto vocab_only = osprey("tokenize -m " + dir + "/vocab/ggml-vocab-llama-spm.gguf --ids --no-bos 'Hello world'");
  EXPECT_EQ(vocab_only.exit_code, 0) << vocab_only.err;
  EXPECT_EQ(vocab_only.out, "[15043, 3186]\n");
}

TEST(Cli, BenchReportsLlamaBenchFields) {
  const std::string model = test::synth_model("tiny", "q4_0");
  const auto r = osprey("bench -m " + model + " -p 16 -n 8 --pg 8,4 -r 2 -o json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* field : {"\"n_prompt\": 16", "\"n_gen\": 8", "\"n_threads\"", "\"avg_ts\"", "\"stddev_ts\"",
                            "\"membw_share\"", "\"peak_rss_bytes\"", "\"cpu_isa\""})
    EXPECT_TRUE(contains(r.out, field)) << field << "\n" << r.out;
  // Only generation is set against the read bandwidth: a real share there
  // (the tiny model sits in cache, so it may pass 100%), none for prompts.
  int gen_tests = 0;
  for (const auto& t : nlohmann::json::parse(r.out)) {
    const double share = t.at("membw_share").get<double>();
    if (t.at("n_prompt").get<int64_t>() == 0) {
      ++gen_tests;
      EXPECT_GT(t.at("membw_bytes_per_second").get<double>(), 1e8) << t.dump();
      EXPECT_TRUE(std::isfinite(share) && share > 0) << t.dump();
    } else {
      EXPECT_EQ(share, 0.0) << t.dump();
    }
  }
  EXPECT_EQ(gen_tests, 1);
  const auto table = osprey("bench -m " + model + " -p 8 -n 0 -r 1");
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_TRUE(contains(table.out, "pp8"));
  const auto bad = osprey("bench -m " + model + " --pg 12");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_TRUE(contains(bad.err, "--pg takes PROMPT,GEN"));
}

// bench --batch-seqs: sequences decoding together set against one alone at
// the same depth, with both rows and the ratio; a window model whose cut
// sequences must be refilled works too; without -n it says what is missing.
TEST(Cli, BenchTimesBatchedDecodeAgainstOneSequence) {
  const std::string model = test::synth_model("tiny", "q8_0");
  const auto r = osprey("bench -m " + model + " -p 0 -n 6 --batch-seqs 4 --batch-depth 40 -r 2 -o json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), 2u) << r.out;  // tg6, then the batched test
  const auto& b = j[1];
  EXPECT_EQ(b.at("test"), "tg6@d40 x4");
  EXPECT_EQ(b.at("n_seqs"), 4);
  EXPECT_EQ(b.at("batched_samples_ts").size(), 2u);
  EXPECT_GT(b.at("speedup").get<double>(), 0) << b.dump();
  const auto table = osprey("bench -m " + test::synth_model("tiny-gemma3", "q8_0") +
                            " -p 0 -n 4 --batch-seqs 3 --batch-depth 20 -r 1");
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_TRUE(contains(table.out, "tg4@d20 x3")) << table.out;
  EXPECT_TRUE(contains(table.out, "batched decode: 3 sequences at depth 20 give")) << table.out;
  const auto bad = osprey("bench -m " + model + " -p 8 -n 0 --batch-seqs 4");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_TRUE(contains(bad.err, "--batch-seqs times generation: give a length with -n")) << bad.err;
}

// bench --spec: the restating task, verbatim and edited, timed with and
// without speculation; prompt lookup drafts the restated text (every draft of
// the verbatim copy holds, since the tiny model's reply follows its prompt's
// copy), and the edits cost some drafts.
TEST(Cli, BenchMeasuresSpeculationOnARestatingTask) {
  const std::string model = test::synth_model("tiny", "q8_0");
  const auto r = osprey("bench -m " + model + " -p 0 -n 0 --spec ngram --restate 48 -r 1 -o json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), 2u) << r.out;
  for (const auto& t : j) {
    EXPECT_EQ(t.at("speculation"), "ngram");
    EXPECT_GT(t.at("n_drafted").get<int64_t>(), 0) << t.dump();
    EXPECT_GT(t.at("speedup").get<double>(), 0) << t.dump();
  }
  EXPECT_EQ(j[0].at("test"), "restate48");
  EXPECT_EQ(j[0].at("acceptance").get<double>(), 1.0) << j[0].dump();
  EXPECT_EQ(j[1].at("test"), "edit48");
  EXPECT_LT(j[1].at("acceptance").get<double>(), 1.0) << j[1].dump();
  const auto table = osprey("bench -m " + model + " -p 0 -n 0 --spec ngram --restate 16 -r 1");
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_TRUE(contains(table.out, "speculation (ngram) on restate16")) << table.out;
  EXPECT_TRUE(contains(table.out, "the replies are identical")) << table.out;
}

// --trace writes a Chrome trace with one span per operation of every pass:
// the nine per-layer operations once per layer and pass, plus the pass itself.
TEST(Cli, TraceHasOneSpanPerOperationPerStep) {
  const std::string model = test::synth_model("tiny", "q8_0");
  const std::string trace = (std::filesystem::temp_directory_path() / "osprey_cli_trace.json").string();
  std::filesystem::remove(trace);
  const auto r = osprey("run -m " + model + " -p 'Once upon a time' -n 5 --temp 0 --trace " + trace);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(test::read_file(trace));
  std::map<std::string, int> count;
  std::map<int64_t, int> per_layer;
  for (const auto& e : j.at("traceEvents")) {
    EXPECT_EQ(e.at("ph"), "X");
    EXPECT_GE(e.at("dur").get<double>(), 0.0);
    count[e.at("name").get<std::string>()]++;
    if (e.at("args").contains("layer")) per_layer[e.at("args").at("layer").get<int64_t>()]++;
  }
  // One prompt pass and four decode passes; the tiny preset has 2 layers.
  const int passes = 5;
  EXPECT_EQ(count["forward"], passes);
  EXPECT_EQ(count["output"], passes);
  for (const char* op : {"norm_qkv", "rope_kv_write", "attention", "attn_output", "norm_ffn_gate_up", "gate_act",
                         "ffn_down"})
    EXPECT_EQ(count[op], 2 * passes) << op;
  EXPECT_EQ(per_layer.size(), 2u);
  const auto bad = osprey("run -m " + model + " -p hi -n 1 --trace /nonexistent-dir/t.json");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_TRUE(contains(bad.err, "cannot write the trace")) << bad.err;
}

TEST(Cli, SynthListsPresets) {
  const auto r = osprey("synth --list-presets");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* p : {"tinyllama-1.1b", "llama-3.2-1b", "qwen2.5-0.5b", "smollm2-135m", "tiny"})
    EXPECT_TRUE(contains(r.out, p)) << p;
}

}  // namespace
}  // namespace osprey
