// osprey imatrix -m FILE -f TEXT -o OUT: runs a sample text through a model
// and records, for every weight matrix, how large each input column was.
// `osprey quantize --imatrix OUT` then spends the k-quants' precision where
// the model reads it, which matters most at 2-4 bits.
#include <cstdio>

#include "cli/commands.h"
#include "cli/progress.h"
#include "cli/text_windows.h"
#include "convert/importance_matrix.h"
#include "core/log.h"
#include "models/activation_stats.h"

namespace osprey::cli {

namespace {

struct ImatrixCliOptions : TextWindowOptions {
  std::string output = "imatrix.gguf";
  bool quiet = false;
};

ImportanceMatrix to_importance_matrix(const ActivationStats& stats) {
  ImportanceMatrix m;
  for (const auto& [name, e] : stats.entries()) {
    ImportanceMatrix::Entry& out = m.entries[name];
    out.n_cols = e.n_cols;
    out.n_experts = e.n_experts;
    out.sum_sq.assign(e.sum_sq.begin(), e.sum_sq.end());
    out.counts.assign(e.count.begin(), e.count.end());
  }
  return m;
}

void run_imatrix(const ImatrixCliOptions& o) {
  if (o.quiet) log::set_level(log::Level::kWarn);
  TextWindows tw = load_text_windows(o);
  if (tw.n_windows == 0)
    throw Failure{o.text_file + " holds " + std::to_string(tw.tokens.size()) + " tokens, fewer than one window of " +
                  std::to_string(o.ctx) + " (lower -c or use a longer text)"};
  std::fprintf(stderr, "imatrix: %zu tokens of text; %lld windows of %lld tokens\n", tw.tokens.size(),
               static_cast<long long>(tw.n_windows), static_cast<long long>(o.ctx));
  ActivationStats stats;
  tw.model->set_activation_stats(&stats);
  ProgressBar bar("imatrix", !o.quiet);
  // The perplexity comes for free with the windows, and says whether the
  // text was one the model could read.
  auto result = perplexity(*tw.model, tw.tokens, tw.windows, [&](const PerplexityResult& r) {
    bar.update(r.chunks, tw.n_windows, std::to_string(r.chunks) + "/" + std::to_string(tw.n_windows) + " windows");
  });
  bar.finish();
  tw.model->set_activation_stats(nullptr);
  if (!result.ok()) throw Failure{result.status().message()};

  ImportanceMatrix m = to_importance_matrix(stats);
  m.datasets = {o.text_file};
  m.chunk_count = result->chunks;
  m.chunk_size = o.ctx;
  if (Status s = m.save(o.output); !s.ok()) throw Failure{s.message()};
  std::printf("imatrix: wrote %s: %zu matrices over %lld windows of %lld tokens (PPL %.4f) in %.1f s\n",
              o.output.c_str(), m.entries.size(), static_cast<long long>(result->chunks),
              static_cast<long long>(o.ctx), result->ppl, result->seconds);
}

}  // namespace

void register_imatrix(CLI::App& app) {
  auto o = std::make_shared<ImatrixCliOptions>();
  CLI::App* cmd = app.add_subcommand(
      "imatrix",
      "Compute an importance matrix: run a sample text through the model in windows of -c tokens and record, "
      "for every weight matrix, the mean square of each input column. Pass the result to "
      "`osprey quantize --imatrix`. The file is GGUF as llama-imatrix writes it, so llama-quantize reads it too.");
  add_text_window_options(*cmd, *o, "Sample text (a few hundred KiB of the kind of text the model will see)");
  cmd->add_option("-o,--output", o->output, "Where to write the importance matrix: GGUF, or the older layout ik_llama.cpp and older llama.cpp read when the name ends in .dat")->capture_default_str();
  cmd->add_flag("-q,--quiet", o->quiet, "No progress bar");
  cmd->callback([o] { run_imatrix(*o); });
}

}  // namespace osprey::cli
