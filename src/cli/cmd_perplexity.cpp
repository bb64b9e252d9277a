// osprey perplexity -m FILE -f TEXT: how well a model predicts a text, the
// usual measure of what a quantization cost.
#include <cstdio>

#include "cli/commands.h"
#include "cli/progress.h"
#include "core/log.h"
#include "engine/perplexity.h"
#include "tokenizer/tokenizer.h"

namespace osprey::cli {

namespace {

struct PerplexityCliOptions {
  std::string model, text_file;
  int64_t ctx = 512, batch = 512, chunks = 0;
  int threads = 0;
  bool quiet = false;
};

void run_perplexity(const PerplexityCliOptions& o) {
  if (o.quiet) log::set_level(log::Level::kWarn);
  const std::string text = read_text(o.text_file);
  ModelOptions mo;
  mo.n_threads = o.threads;
  mo.n_ctx = o.ctx;
  mo.n_batch = std::min(o.batch, o.ctx);
  auto model = Model::load(o.model, mo);
  if (!model.ok()) throw Failure{model.status().message()};
  auto tok = Tokenizer::from_gguf((*model)->file());
  if (!tok.ok()) throw Failure{tok.status().message()};
  const Vocab& vocab = (*tok)->vocab();
  const std::vector<int32_t> tokens = (*tok)->encode(text, /*add_special=*/true, /*parse_special=*/false);

  PerplexityOptions po;
  po.n_ctx = o.ctx;
  po.max_chunks = o.chunks;
  po.bos = vocab.add_bos ? vocab.bos : -1;
  const int64_t windows = o.chunks > 0 ? std::min<int64_t>(o.chunks, static_cast<int64_t>(tokens.size()) / o.ctx)
                                       : static_cast<int64_t>(tokens.size()) / o.ctx;
  if (windows > 0)
    std::fprintf(stderr, "perplexity: %zu tokens of text; %lld windows of %lld tokens, the last %lld of each scored\n",
               tokens.size(), static_cast<long long>(windows), static_cast<long long>(o.ctx),
               static_cast<long long>(o.ctx - o.ctx / 2 - 1));
  // The running figure after each window, as llama-perplexity prints it.
  auto result = perplexity(**model, tokens, po, [&](const PerplexityResult& r) {
    std::printf("[%lld]%.4f,", static_cast<long long>(r.chunks), r.ppl);
    std::fflush(stdout);
  });
  if (!result.ok()) {
    std::printf("\n");
    throw Failure{result.status().message()};
  }
  std::printf("\nFinal estimate: PPL = %.4f +/- %.5f\n", result->ppl, result->ppl_error);
  const double evaluated = static_cast<double>(result->chunks * o.ctx);
  std::fprintf(stderr, "evaluated %lld tokens in %.2f s (%.1f tokens/s), %lld scored\n",
               static_cast<long long>(result->chunks * o.ctx), result->seconds, evaluated / result->seconds,
               static_cast<long long>(result->scored));
}

}  // namespace

void register_perplexity(CLI::App& app) {
  auto o = std::make_shared<PerplexityCliOptions>();
  CLI::App* cmd = app.add_subcommand(
      "perplexity",
      "Measure a model's perplexity on a text, as llama-perplexity does: non-overlapping windows of -c tokens, "
      "each starting from an empty cache with BOS, the second half of each scored. Prints the running figure "
      "after each window and the final estimate with its standard error.");
  cmd->add_option("-m,--model", o->model, "GGUF model file")->required();
  cmd->add_option("-f,--file", o->text_file, "Text file to score")->required();
  cmd->add_option("-c,--ctx-size", o->ctx, "Window length in tokens")->check(CLI::Range(int64_t{4}, int64_t{1} << 20));
  cmd->add_option("-b,--batch-size", o->batch, "Tokens per forward pass")->check(CLI::Range(int64_t{1}, int64_t{1} << 16));
  cmd->add_option("--chunks", o->chunks, "Score at most this many windows (0: all)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30));
  cmd->add_option("-t,--threads", o->threads, "Threads (default: one per core)")->check(CLI::Range(0, 1024));
  cmd->add_flag("-q,--quiet", o->quiet, "Only the results");
  cmd->callback([o] { run_perplexity(*o); });
}

}  // namespace osprey::cli
