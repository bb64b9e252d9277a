#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>

#include "cli/commands.h"
#include "cli/load_model.h"
#include "cli/lora_flags.h"
#include "cli/kv_cache_flags.h"
#include "cli/speculation_flags.h"
#include "core/log.h"
#include "engine/generator.h"

namespace osprey::cli {

namespace {

struct RunOptions {
  std::string model, prompt, prompt_file, trace;
  std::string device = "cpu";
  int64_t n_predict = 128;
  int threads = 0;
  int64_t ctx = 0;
  int64_t batch = 64;
  SamplingParams sampling;
  int64_t seed = -1;
  KvCacheFlags kv_cache;
  bool f16_as_bf16 = false;
  FolderFlags folder;
  std::vector<std::string> lora;
  bool no_bos = false, ignore_eos = false, echo = false, show_ids = false, quiet = false;
  SpeculationFlags spec;
};

void run(const RunOptions& o) {
  if (o.quiet) log::set_level(log::Level::kWarn);
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  ModelOptions mo;
  mo.n_threads = o.threads;
  mo.n_ctx = o.ctx;
  mo.n_batch = o.batch;
  mo.device = o.device;
  mo.f16_as_bf16 = o.f16_as_bf16;
  apply_kv_cache_flags(o.kv_cache, mo);
  mo.lora = parse_lora_flags(o.lora);
  auto model = load_model(o.model, mo, o.folder);
  auto tok = Tokenizer::from_gguf(model->file());
  if (!tok.ok()) throw Failure{tok.status().message()};
  const double load_s = std::chrono::duration<double>(Clock::now() - t0).count();

  const std::string prompt = o.prompt_file.empty() ? o.prompt : read_text(o.prompt_file);
  std::vector<int32_t> ids = (*tok)->encode(prompt, !o.no_bos, /*parse_special=*/true);
  if (ids.empty()) throw Failure{"the prompt is empty after tokenization; give some text with -p"};

  ReplyOptions go;
  go.max_tokens = o.n_predict;
  go.sampling = o.sampling;
  go.sampling.seed = o.seed >= 0 ? static_cast<uint64_t>(o.seed) : std::random_device{}();
  go.ignore_eos = o.ignore_eos;
  const auto draft = load_draft_model(o.spec, *model, **tok, mo);
  go.speculation = o.spec.options(draft.get());

  if (o.echo) {
    std::fputs(prompt.c_str(), stdout);
    std::fflush(stdout);
  }
  Tracer tracer;
  if (!o.trace.empty()) model->set_tracer(&tracer);
  ModelRunner runner(*model);
  auto result = generate(runner, **tok, ids, go, [](int32_t, const std::string& text) {
    std::fputs(text.c_str(), stdout);
    std::fflush(stdout);
    return true;
  });
  std::fputc('\n', stdout);
  if (!result.ok()) throw Failure{result.status().message()};
  if (!o.trace.empty()) {
    model->set_tracer(nullptr);
    if (Status st = tracer.write(o.trace); !st.ok()) throw Failure{st.message()};
    log::info("trace: " + std::to_string(tracer.size()) + " spans written to " + o.trace);
  }
  const GenerateResult& r = *result;
  if (r.finish == FinishReason::kContextFull)
    log::warn("generation stopped: the context of " + std::to_string(model->n_ctx()) +
              " tokens is full (raise it with -c)");
  if (o.show_ids) {
    std::string line = "generated ids: [";
    for (size_t i = 0; i < r.tokens.size(); ++i) line += (i ? ", " : "") + std::to_string(r.tokens[i]);
    std::fprintf(stderr, "%s]\n", line.c_str());
  }
  if (!o.quiet) {
    const double pp = r.prompt_seconds > 0 ? r.n_prompt / r.prompt_seconds : 0;
    // The first generated token comes from the prompt pass; the rest each cost one decode step.
    const double n_decode = r.tokens.size() > 1 ? static_cast<double>(r.tokens.size() - 1) : 0;
    const double tg = r.gen_seconds > 0 ? n_decode / r.gen_seconds : 0;
    std::fprintf(stderr,
                 "\nload: %.2f s | prompt: %lld tokens, %.1f tokens/s | generation: %zu tokens, %.1f tokens/s | "
                 "threads: %d | seed: %llu | stop: %s\n",
                 load_s, static_cast<long long>(r.n_prompt), pp, r.tokens.size(), tg, model->n_threads(),
                 static_cast<unsigned long long>(go.sampling.seed), finish_reason_name(r.finish));
    if (go.speculation.enabled())
      std::fprintf(stderr, "speculation: %s | drafted %lld | accepted %lld (%.0f%%)\n", o.spec.name(),
                   static_cast<long long>(r.n_drafted), static_cast<long long>(r.n_accepted),
                   r.n_drafted > 0 ? 100.0 * static_cast<double>(r.n_accepted) / static_cast<double>(r.n_drafted) : 0.0);
  }
}

}  // namespace

void register_run(CLI::App& app) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* cmd = app.add_subcommand("run", "Generate text from a prompt, streamed to stdout");
  cmd->add_option("-m,--model", o->model, "GGUF model file, or a Hugging Face model folder (converted as it loads)")->required()->envname("OSPREY_MODEL");
  auto* p = cmd->add_option("-p,--prompt", o->prompt, "Prompt text");
  auto* f = cmd->add_option("-f,--file", o->prompt_file, "Read the prompt from a file");
  p->excludes(f);
  cmd->add_option("-n,--n-predict", o->n_predict, "Tokens to generate; -1 until end of text or context")
      ->capture_default_str()->check(CLI::Range(int64_t{-1}, int64_t{1} << 30));
  cmd->add_option("-t,--threads", o->threads, "Threads (0: all cores)")->capture_default_str()->check(CLI::Range(0, 1024));
  cmd->add_option("-c,--ctx-size", o->ctx, "Context size in tokens (0: the model's, at most 4096)")
      ->capture_default_str()->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
  cmd->add_option("-b,--batch-size", o->batch, "Prompt tokens per forward pass")
      ->capture_default_str()->check(CLI::Range(int64_t{1}, int64_t{4096}));
  add_kv_cache_options(*cmd, o->kv_cache);
  add_device_option(*cmd, o->device);
  add_f16_as_bf16_flag(*cmd, o->f16_as_bf16);
  add_folder_options(*cmd, o->folder);
  add_lora_options(*cmd, o->lora);
  cmd->add_option("--temp", o->sampling.temperature, "Temperature; 0 is greedy")->capture_default_str();
  cmd->add_option("--top-k", o->sampling.top_k, "Keep the k most likely tokens (0: off)")->capture_default_str();
  cmd->add_option("--top-p", o->sampling.top_p, "Nucleus sampling mass (1: off)")->capture_default_str();
  cmd->add_option("--min-p", o->sampling.min_p, "Drop tokens below this fraction of the best one's probability")
      ->capture_default_str();
  cmd->add_option("--repeat-penalty", o->sampling.repeat_penalty, "Penalty for repeated tokens (1: off)")
      ->capture_default_str();
  cmd->add_option("--frequency-penalty", o->sampling.frequency_penalty, "Subtract count x this from a seen token's logit")
      ->capture_default_str();
  cmd->add_option("--presence-penalty", o->sampling.presence_penalty, "Subtract this from a seen token's logit")
      ->capture_default_str();
  cmd->add_option("--repeat-last-n", o->sampling.penalty_last_n, "Tokens the penalties look back over (-1: all)")
      ->capture_default_str();
  cmd->add_option("-s,--seed", o->seed, "Random seed (-1: pick one and print it)")->capture_default_str();
  add_speculation_options(*cmd, o->spec);
  cmd->add_flag("--no-bos", o->no_bos, "Do not add the BOS token");
  cmd->add_flag("--ignore-eos", o->ignore_eos, "Keep generating past end-of-text tokens");
  cmd->add_flag("--echo", o->echo, "Print the prompt before the generated text");
  cmd->add_flag("--show-ids", o->show_ids, "Print the generated token ids on stderr");
  cmd->add_flag("-q,--quiet", o->quiet, "No statistics on stderr");
  cmd->add_option("--trace", o->trace, "Write a Chrome trace (chrome://tracing, Perfetto) with one span per operation");
  cmd->callback([o] {
    if (o->prompt.empty() && o->prompt_file.empty()) throw Failure{"give a prompt with -p TEXT or -f FILE"};
    const Status s = o->sampling.validate(1 << 30);
    if (!s.ok()) throw Failure{s.message()};
    run(*o);
  });
}

}  // namespace osprey::cli
