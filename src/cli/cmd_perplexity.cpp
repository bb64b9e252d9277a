// osprey perplexity -m FILE -f TEXT: how well a model predicts a text, the
// usual measure of what a quantization cost.
#include <cstdio>

#include "cli/commands.h"
#include "cli/text_windows.h"
#include "core/log.h"

namespace osprey::cli {

namespace {

struct PerplexityCliOptions : TextWindowOptions {
  bool quiet = false;
};

void run_perplexity(const PerplexityCliOptions& o) {
  if (o.quiet) log::set_level(log::Level::kWarn);
  TextWindows tw = load_text_windows(o);
  if (tw.n_windows > 0)
    std::fprintf(stderr, "perplexity: %zu tokens of text; %lld windows of %lld tokens, the last %lld of each scored\n",
                 tw.tokens.size(), static_cast<long long>(tw.n_windows), static_cast<long long>(o.ctx),
                 static_cast<long long>(o.ctx - o.ctx / 2 - 1));
  // The running figure after each window, as llama-perplexity prints it.
  auto result = perplexity(*tw.model, tw.tokens, tw.windows, [&](const PerplexityResult& r) {
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
  add_text_window_options(*cmd, *o, "Text file to score");
  cmd->add_flag("-q,--quiet", o->quiet, "Only the results");
  cmd->callback([o] { run_perplexity(*o); });
}

}  // namespace osprey::cli
