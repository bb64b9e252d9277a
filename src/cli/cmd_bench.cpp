// osprey bench: prompt-processing and generation throughput, modelled on
// llama-bench (same test names and JSON field names), plus the share of the
// machine's memory bandwidth that generation uses.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <utility>
#include <nlohmann/json.hpp>

#include "cli/bench_batched.h"
#include "cli/bench_restate.h"
#include "cli/commands.h"
#include "cli/speculation_flags.h"
#include "cli/load_model.h"
#include "cli/lora_flags.h"
#include "cli/kv_cache_flags.h"
#include "core/log.h"
#include "core/median.h"
#include "kernels/membw.h"
#include "models/device_pass.h"
#include "models/model.h"

namespace osprey::cli {

namespace {

struct BenchOptions {
  std::string device = "cpu";
  std::vector<std::string> models;
  std::vector<int64_t> prompt = {512};
  std::vector<int64_t> gen = {128};
  std::vector<std::string> pg;
  int threads = 0;
  int reps = 5;
  std::string output = "table";
  std::string trace;
  bool membw = false;
  KvCacheFlags kv_cache;
  bool f16_as_bf16 = false;
  FolderFlags folder;
  std::vector<std::string> lora;
  SpeculationFlags spec;
  int64_t restate = 128;
  int batch_seqs = 1;
  int64_t batch_depth = 512;
};

struct Test {
  int64_t n_prompt = 0, n_gen = 0;
  std::string name() const {
    if (n_prompt > 0 && n_gen > 0) return "pp" + std::to_string(n_prompt) + "+tg" + std::to_string(n_gen);
    return n_prompt > 0 ? "pp" + std::to_string(n_prompt) : "tg" + std::to_string(n_gen);
  }
};

// Bytes generation reads per token apart from the KV cache: every matrix once
// (the embedding contributes one row, unless it doubles as the output).
double weight_bytes_per_token(const Model& m) { return m.weights().bytes_per_token(); }

std::vector<int32_t> bench_tokens(int64_t n, int64_t n_vocab) {
  std::vector<int32_t> t(n);
  uint64_t s = 12345;
  for (auto& x : t) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    x = static_cast<int32_t>((s >> 33) % static_cast<uint64_t>(n_vocab));
  }
  return t;
}

// Seconds for one run of the test on a fresh sequence.
double run_once(Model& m, const Test& t) {
  m.reset();
  const auto tokens = bench_tokens(t.n_prompt + t.n_gen, m.config().n_vocab);
  const auto t0 = std::chrono::steady_clock::now();
  if (t.n_prompt > 0) {
    auto r = m.eval(tokens.data(), t.n_prompt);
    if (!r.ok()) throw Failure{r.status().message()};
  }
  for (int64_t i = 0; i < t.n_gen; ++i) {
    auto r = m.eval(&tokens[t.n_prompt + i], 1);
    if (!r.ok()) throw Failure{r.status().message()};
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The resident high-water mark (VmHWM). Falls back to getrusage, which
// cannot be reset, where /proc is not mounted.
double peak_rss_bytes() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) * 1024.0;
  struct rusage u {};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) * 1024.0;
}

// The bandwidth read loop's buffer is not the model's memory: after it is
// freed, the high-water mark restarts from what is resident (Linux >= 4.0;
// elsewhere the peak keeps the buffer).
void reset_peak_rss() {
  std::ofstream clear("/proc/self/clear_refs");
  if (clear) clear << "5";
}

std::vector<Test> parse_tests(const BenchOptions& o) {
  std::vector<Test> tests;
  for (int64_t p : o.prompt)
    if (p > 0) tests.push_back({p, 0});
  for (int64_t n : o.gen)
    if (n > 0) tests.push_back({0, n});
  for (const std::string& s : o.pg) {
    const size_t comma = s.find(',');
    try {
      if (comma == std::string::npos) throw std::invalid_argument(s);
      tests.push_back({std::stoll(s.substr(0, comma)), std::stoll(s.substr(comma + 1))});
    } catch (const std::exception&) {
      throw Failure{"--pg takes PROMPT,GEN (for example 512,128), got '" + s + "'"};
    }
  }
  for (const Test& t : tests)
    if (t.n_prompt < 0 || t.n_gen < 0 || t.n_prompt > 65536 || t.n_gen > 65536)
      throw Failure{"test sizes must be between 0 and 65536 tokens"};
  return tests;
}

// The machine's side of the figures: read bandwidth, measured between
// repetitions, and the model's peak RSS, kept apart from the read loop's own
// buffer.
class MachineProbe {
 public:
  explicit MachineProbe(int threads) : threads_(threads) {}
  double read_bandwidth() {
    rss_before_reset_ = peak_rss();
    ThreadPool pool(threads_);
    const double bw = kernels::measure_read_bandwidth(pool, size_t{256} << 20, 8);
    reset_peak_rss();
    lo_ = lo_ > 0 ? std::min(lo_, bw) : bw;
    hi_ = std::max(hi_, bw);
    return bw;
  }
  double peak_rss() const { return std::max(rss_before_reset_, peak_rss_bytes()); }
  // The range of every bandwidth measured beside generation ("" if none).
  std::string bandwidth_range() const {
    if (hi_ <= 0) return "";
    char range[64];
    if (hi_ - lo_ < 0.05e9) std::snprintf(range, sizeof range, "%.1f GB/s", hi_ / 1e9);
    else std::snprintf(range, sizeof range, "%.1f-%.1f GB/s", lo_ / 1e9, hi_ / 1e9);
    return range;
  }

 private:
  int threads_;
  double rss_before_reset_ = 0;
  double lo_ = 0, hi_ = 0;
};

struct Measured {
  std::vector<double> ts;  // tokens per second, each repetition
  double mean = 0, stddev = 0;
  double membw = 0;  // bytes per second beside generation; 0 for prompt tests
  double share = 0;  // of membw that generation used
};

// The mean and standard deviation of repetitions' tokens/s.
Measured summarize(std::vector<double> ts) {
  Measured out;
  out.ts = std::move(ts);
  double var = 0;
  for (double x : out.ts) out.mean += x / static_cast<double>(out.ts.size());
  for (double x : out.ts) var += (x - out.mean) * (x - out.mean) / static_cast<double>(std::max<size_t>(1, out.ts.size() - 1));
  out.stddev = std::sqrt(var);
  return out;
}

Measured measure(Model& m, const Test& t, int reps, MachineProbe& machine, Tracer* tracer) {
  run_once(m, t);  // warm-up: page the weights in, settle the clocks
  // A shared host's bandwidth moves by tens of percent within seconds, so
  // each repetition of a generation test is set against the read loop
  // measured just before and just after it, and the share quoted is the
  // median over the repetitions.
  const bool gen_only = t.n_prompt == 0 && t.n_gen > 0;
  std::vector<double> bws;  // before each repetition, and after the last
  if (gen_only) bws.push_back(machine.read_bandwidth());
  Measured out;
  for (int r = 0; r < reps; ++r) {
    // The trace holds the first measured repetition of every test.
    if (r == 0 && tracer) m.set_tracer(tracer);
    out.ts.push_back((t.n_prompt + t.n_gen) / run_once(m, t));
    m.set_tracer(nullptr);
    if (gen_only) bws.push_back(machine.read_bandwidth());
  }
  for (double bw : bws) out.membw += bw / static_cast<double>(bws.size());
  const Measured stats = summarize(out.ts);
  out.mean = stats.mean;
  out.stddev = stats.stddev;
  if (gen_only) {
    // Generation reads the weights and the KV cache so far; average over the run.
    const ModelConfig& c = m.config();
    const double kv = 2.0 * c.n_layer * (t.n_gen / 2.0) * c.n_head_kv * c.head_dim * 2;
    std::vector<double> shares;
    for (size_t r = 0; r < out.ts.size(); ++r)
      shares.push_back((weight_bytes_per_token(m) + kv) * out.ts[r] / ((bws[r] + bws[r + 1]) / 2));
    out.share = median(std::move(shares));
  }
  return out;
}

// One more run of `t` with the device timing each dispatch: time per token
// and share for every kernel, so a real GPU shows where its time goes.
// Timestamps cost a little, so the tokens/s above come from untimed runs.
nlohmann::json device_operations(Model& m, const Test& t, bool table) {
  DevicePass* dp = m.device_pass();
  if (dp == nullptr) return nullptr;
  if (!dp->time_operations(true)) {
    if (table) std::printf("| %s: the device cannot time its dispatches (no timestamp queries)\n", t.name().c_str());
    return nullptr;
  }
  dp->clear_operation_times();
  run_once(m, t);
  dp->time_operations(false);
  const double tokens = static_cast<double>(t.n_prompt + t.n_gen);
  double total = 0;
  for (const auto& op : dp->operation_times()) total += op.seconds;
  nlohmann::json out = nlohmann::json::array();
  if (table) std::printf("| %s on the device: %.2f ms per token in %zu kernels\n", t.name().c_str(), total / tokens * 1e3,
                         dp->operation_times().size());
  for (const auto& op : dp->operation_times()) {
    if (table)
      std::printf("|   %-20s %8.1f calls/token %10.3f ms/token %6.1f%%\n", op.kernel.c_str(), op.calls / tokens,
                  op.seconds / tokens * 1e3, total > 0 ? op.seconds / total * 100 : 0.0);
    out.push_back({{"kernel", op.kernel}, {"calls", op.calls}, {"seconds", op.seconds}});
  }
  return out;
}

void print_table_header() {
  std::printf("| %-28s | %10s | %6s | %7s | %13s | %20s | %8s |\n", "model", "size", "isa", "threads", "test", "t/s",
              "membw %");
  std::printf("| %s | %s | %s | %s | %s | %s | %s |\n", std::string(28, '-').c_str(), std::string(10, '-').c_str(),
              std::string(6, '-').c_str(), std::string(7, '-').c_str(), std::string(13, '-').c_str(),
              std::string(20, '-').c_str(), std::string(8, '-').c_str());
}

void print_table_row(const std::string& name, double file_bytes, const char* isa, int threads,
                     const std::string& test, const Measured& r) {
  char size[32], tps[48], bw[16];
  std::snprintf(size, sizeof size, "%.2f GiB", file_bytes / (1 << 30));
  std::snprintf(tps, sizeof tps, "%.2f ± %.2f", r.mean, r.stddev);
  bw[0] = 0;
  if (r.share > 0) std::snprintf(bw, sizeof bw, "%.0f%%", r.share * 100);
  // printf pads by bytes; "±" is two bytes but one column, so pad by hand.
  const std::string tps_cell = std::string(std::max(0, 20 - static_cast<int>(std::strlen(tps)) + 1), ' ') + tps;
  std::printf("| %-28s | %10s | %6s | %7d | %13s | %s | %8s |\n", name.substr(0, 28).c_str(), size, isa, threads,
              test.c_str(), tps_cell.c_str(), bw);
  std::fflush(stdout);
}

// --spec / --draft-model: the restating task (cli/bench_restate.h), its
// prompt's copy verbatim and then edited every 16th token, each timed with
// speculation and without.
void bench_speculation(const BenchOptions& o, Model& model, const ModelOptions& mo, const std::string& path,
                       double file_bytes, int threads, nlohmann::json& results) {
  auto tok = Tokenizer::from_gguf(model.file());
  if (!tok.ok()) throw Failure{tok.status().message()};
  const auto draft = load_draft_model(o.spec, model, **tok, mo);
  const std::string name = std::filesystem::path(path).filename().string();
  const char* isa = kernels::isa_name(kernels::active_isa());
  for (const int64_t edit_every : {int64_t{0}, int64_t{16}}) {
    const RestateResult rr = bench_restate(model, **tok, o.spec.options(draft.get()), o.restate, o.reps, edit_every);
    const double accept = rr.drafted > 0 ? static_cast<double>(rr.accepted) / static_cast<double>(rr.drafted) : 0;
    const double speedup = median(rr.spec_ts) / median(rr.plain_ts);
    const std::string test = (edit_every > 0 ? "edit" : "restate") + std::to_string(o.restate);
    if (o.output == "table") {
      print_table_row(name, file_bytes, isa, threads, test, summarize(rr.plain_ts));
      print_table_row(name, file_bytes, isa, threads, "+ " + std::string(o.spec.name()), summarize(rr.spec_ts));
      std::printf("| speculation (%s) on %s: %.2fx the decode speed without it; drafted %lld, accepted %lld (%.0f%%); "
                  "the replies are identical\n",
                  o.spec.name(), test.c_str(), speedup, static_cast<long long>(rr.drafted),
                  static_cast<long long>(rr.accepted), 100 * accept);
      std::fflush(stdout);
    }
    results.push_back({{"model_filename", path},
                       {"model_type", model.config().arch},
                       {"n_threads", threads},
                       {"test", test},
                       {"n_prompt", rr.n_prompt},
                       {"n_gen", o.restate},
                       {"edit_every", edit_every},
                       {"speculation", o.spec.name()},
                       {"plain_samples_ts", rr.plain_ts},
                       {"spec_samples_ts", rr.spec_ts},
                       {"speedup", speedup},
                       {"n_drafted", rr.drafted},
                       {"n_accepted", rr.accepted},
                       {"acceptance", accept},
                       {"cpu_isa", isa}});
  }
}

// --batch-seqs: for each generation length, the sequences decoding together
// against one decoding alone, at the same depth.
void bench_batched_decode(const BenchOptions& o, Model& model, const std::string& path, double file_bytes,
                          const char* isa, int threads, nlohmann::json& results, Tracer* tracer) {
  const std::string name = std::filesystem::path(path).filename().string();
  for (const int64_t g : o.gen) {
    if (g <= 0) continue;
    const BatchedResult r = bench_batched(model, o.batch_seqs, o.batch_depth, g, o.reps, tracer);
    const double speedup = median(r.batched_ts) / median(r.single_ts);
    const std::string single = "tg" + std::to_string(g) + "@d" + std::to_string(o.batch_depth);
    const std::string batched = single + " x" + std::to_string(o.batch_seqs);
    if (o.output == "table") {
      print_table_row(name, file_bytes, isa, threads, single, summarize(r.single_ts));
      print_table_row(name, file_bytes, isa, threads, batched, summarize(r.batched_ts));
      std::printf("| batched decode: %d sequences at depth %lld give %.2fx the tokens/s of one alone\n", o.batch_seqs,
                  static_cast<long long>(o.batch_depth), speedup);
      std::fflush(stdout);
    }
    results.push_back({{"model_filename", path},
                       {"model_type", model.config().arch},
                       {"n_threads", threads},
                       {"test", batched},
                       {"n_gen", g},
                       {"n_depth", o.batch_depth},
                       {"n_seqs", o.batch_seqs},
                       {"single_samples_ts", r.single_ts},
                       {"batched_samples_ts", r.batched_ts},
                       {"speedup", speedup},
                       {"cpu_isa", kernels::isa_name(kernels::active_isa())},
                       {"device", model.device_name()}});
  }
}

void bench(const BenchOptions& o) {
  const std::vector<Test> tests = parse_tests(o);
  const int threads = o.threads > 0 ? o.threads : default_thread_count();
  MachineProbe machine(threads);
  if (o.membw && o.models.empty()) {
    const double membw = machine.read_bandwidth();
    if (o.output == "json") std::printf("%s\n", nlohmann::json{{"membw_bytes_per_second", membw}, {"n_threads", threads}}.dump(2).c_str());
    else std::printf("memory read bandwidth: %.1f GB/s with %d threads\n", membw / 1e9, threads);
    return;
  }
  if (o.models.empty()) throw Failure{"give a model with -m (or --membw alone to measure the machine)"};
  const bool batched = o.batch_seqs > 1;
  int64_t max_gen = 0;
  for (const int64_t g : o.gen) max_gen = std::max(max_gen, g);
  if (batched && max_gen <= 0) throw Failure{"--batch-seqs times generation: give a length with -n"};

  // This command is native; the WebGPU back end lives in the WebAssembly build.
  if (o.device == "webgpu")
    throw Failure{"WebGPU runs in the WebAssembly build, in a browser: node scripts/bench_wasm.mjs MODEL --device webgpu "
                  "measures it there (tokens/s and the device's time per kernel, in headless Chromium)"};
  nlohmann::json results = nlohmann::json::array();
  if (o.output == "table") print_table_header();
  Tracer tracer;
  for (const std::string& path : o.models) {
    int64_t max_ctx = 0;
    for (const Test& t : tests) max_ctx = std::max(max_ctx, t.n_prompt + t.n_gen);
    const bool speculate = o.spec.mode != "none" || !o.spec.draft_model.empty();
    if (speculate) max_ctx = std::max(max_ctx, 2 * o.restate + 64);
    if (batched) max_ctx = std::max(max_ctx, o.batch_depth + max_gen);
    ModelOptions mo;
    mo.n_seq_max = o.batch_seqs;
    mo.n_threads = threads;
    mo.n_ctx = std::max<int64_t>(max_ctx, 16);
    mo.n_batch = 512;
    mo.device = o.device;
    mo.f16_as_bf16 = o.f16_as_bf16;
    apply_kv_cache_flags(o.kv_cache, mo);
    mo.lora = parse_lora_flags(o.lora);
    auto model = load_model(path, mo, o.folder);
    double file_bytes = 0;
    for (const auto& t : model->file().tensors()) file_bytes += static_cast<double>(t.n_bytes);
    const std::string name = std::filesystem::path(path).filename().string();
    // The isa column names the device when the pass runs on one.
    const std::string where = o.device == "cpu" ? kernels::isa_name(kernels::active_isa()) : o.device;
    const char* isa = where.c_str();
    if (o.device != "cpu" && o.output == "table") std::printf("| device: %s\n", model->device_name().c_str());

    for (const Test& t : tests) {
      const Measured r = measure(*model, t, o.reps, machine, o.trace.empty() ? nullptr : &tracer);
      if (o.output == "table") print_table_row(name, file_bytes, isa, threads, t.name(), r);
      const nlohmann::json ops = device_operations(*model, t, o.output == "table");
      results.push_back({{"model_filename", path},
                         {"model_type", model->config().arch},
                         {"model_size", static_cast<int64_t>(file_bytes)},
                         {"n_threads", threads},
                         {"n_prompt", t.n_prompt},
                         {"n_gen", t.n_gen},
                         {"avg_ts", r.mean},
                         {"stddev_ts", r.stddev},
                         {"avg_ns", static_cast<int64_t>((t.n_prompt + t.n_gen) / r.mean * 1e9)},
                         {"samples_ts", r.ts},
                         {"cpu_isa", kernels::isa_name(kernels::active_isa())},
                         {"device", model->device_name()},
                         {"type_k", dtype_name(mo.cache_type_k)},
                         {"type_v", dtype_name(mo.cache_type_v)},
                         {"peak_rss_bytes", static_cast<int64_t>(machine.peak_rss())},
                         {"membw_bytes_per_second", r.membw},
                         {"membw_share", r.share},
                         {"device_operations", ops}});
    }
    if (speculate && o.restate > 0) bench_speculation(o, *model, mo, path, file_bytes, threads, results);
    if (batched)
      bench_batched_decode(o, *model, path, file_bytes, isa, threads, results, o.trace.empty() ? nullptr : &tracer);
  }
  if (!o.trace.empty()) {
    if (Status st = tracer.write(o.trace); !st.ok()) throw Failure{st.message()};
    log::info("trace: " + std::to_string(tracer.size()) + " spans written to " + o.trace);
  }
  if (o.output == "json") {
    std::printf("%s\n", results.dump(2).c_str());
    return;
  }
  std::printf("\npeak RSS %.2f GiB", machine.peak_rss() / (1 << 30));
  if (o.kv_cache.k != "f16" || o.kv_cache.v != "f16")
    std::printf("; KV cache %s keys, %s values", o.kv_cache.k.c_str(), o.kv_cache.v.c_str());
  if (const std::string range = machine.bandwidth_range(); !range.empty())
    std::printf("; memory read bandwidth %s beside generation (membw %% = bytes read per token x tokens/s / the "
                "bandwidth measured just before and after each repetition, median over repetitions)",
                range.c_str());
  std::printf("\n");
}

}  // namespace

void register_bench(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* cmd = app.add_subcommand("bench", "Measure prompt processing and generation speed (llama-bench style)");
  cmd->add_option("-m,--model", o->models, "GGUF model file or Hugging Face folder (repeatable)");
  cmd->add_option("-p,--n-prompt", o->prompt, "Prompt lengths to test (0 to skip)")->capture_default_str();
  cmd->add_option("-n,--n-gen", o->gen, "Generation lengths to test (0 to skip)")->capture_default_str();
  cmd->add_option("--pg", o->pg, "PROMPT,GEN: a prompt followed by generation");
  cmd->add_option("-t,--threads", o->threads, "Threads (0: all cores)")->check(CLI::Range(0, 1024));
  add_kv_cache_options(*cmd, o->kv_cache);
  add_device_option(*cmd, o->device);
  add_f16_as_bf16_flag(*cmd, o->f16_as_bf16);
  add_folder_options(*cmd, o->folder);
  add_lora_options(*cmd, o->lora);
  add_speculation_options(*cmd, o->spec);
  cmd->add_option("--restate", o->restate,
                  "With --spec or --draft-model: tokens of the speculation test, a greedy reply that restates text "
                  "in its prompt (made from the model's own output), verbatim and with every 16th token of the copy "
                  "changed (an edit), timed with speculation and without (0 to skip)")
      ->capture_default_str()->check(CLI::Range(int64_t{0}, int64_t{8192}));
  cmd->add_option("--batch-seqs", o->batch_seqs,
                  "Also time batched decoding, the serving case: this many sequences, each --batch-depth positions "
                  "deep, decode one token each per forward pass, for each -n length; set against one sequence "
                  "decoding alone at that depth (1: off)")
      ->capture_default_str()->check(CLI::Range(1, 256));
  cmd->add_option("--batch-depth", o->batch_depth, "With --batch-seqs: the positions each sequence holds before it decodes")
      ->capture_default_str()->check(CLI::Range(int64_t{1}, int64_t{65536}));
  cmd->add_option("-r,--repetitions", o->reps, "Repetitions of each test")->capture_default_str()->check(CLI::Range(1, 1000));
  cmd->add_option("-o,--output", o->output, "table or json")->capture_default_str()->check(CLI::IsMember({"table", "json"}));
  cmd->add_option("--trace", o->trace, "Write a Chrome trace of the first measured repetition of each test");
  cmd->add_flag("--membw", o->membw, "Without -m: measure only the machine's memory read bandwidth (with -m it is measured beside each generation test)");
  cmd->callback([o] { bench(*o); });
}

}  // namespace osprey::cli
