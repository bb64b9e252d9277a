#include "engine/perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace osprey {

namespace {

// -log softmax(logits)[target], in double so that a 256k-entry vocabulary
// sums without losing the small terms.
double negative_log_likelihood(const float* logits, int64_t n_vocab, int32_t target) {
  const float max = *std::max_element(logits, logits + n_vocab);
  double sum = 0;
  for (int64_t i = 0; i < n_vocab; ++i) sum += std::exp(static_cast<double>(logits[i]) - max);
  return std::log(sum) - (static_cast<double>(logits[target]) - max);
}

}  // namespace

Expected<PerplexityResult> perplexity(Model& model, const std::vector<int32_t>& tokens,
                                      const PerplexityOptions& o, PerplexityProgress progress) {
  const int64_t n_ctx = o.n_ctx;
  if (n_ctx < 4) return InvalidArgument("the perplexity window must be at least 4 tokens, not " + std::to_string(n_ctx));
  if (n_ctx > model.n_ctx())
    return InvalidArgument("a window of " + std::to_string(n_ctx) + " tokens is longer than the model's context of " +
                           std::to_string(model.n_ctx()));
  int64_t chunks = static_cast<int64_t>(tokens.size()) / n_ctx;
  if (o.max_chunks > 0) chunks = std::min(chunks, o.max_chunks);
  if (chunks == 0)
    return InvalidArgument("the text is " + std::to_string(tokens.size()) + " tokens, shorter than one window of " +
                           std::to_string(n_ctx) + "; give more text or a smaller context (-c)");
  const int64_t first = n_ctx / 2;  // positions before this only give context
  const int64_t n_vocab = model.config().n_vocab;
  // Rows of logits per evaluation: a pass's worth, but not more than 256 MiB of them.
  const int64_t rows_per_eval = std::max<int64_t>(1, std::min<int64_t>(n_ctx, (int64_t{256} << 20) / (4 * n_vocab)));

  PerplexityResult r;
  double nll_sum = 0, nll_sq_sum = 0;
  const auto start = std::chrono::steady_clock::now();
  std::vector<int32_t> window(static_cast<size_t>(n_ctx));
  for (int64_t c = 0; c < chunks; ++c) {
    std::copy_n(tokens.begin() + c * n_ctx, n_ctx, window.begin());
    if (o.bos >= 0) window[0] = o.bos;
    model.seq_clear(0);
    // The first half only as context; then the logits after each of
    // positions first .. n_ctx-2, each scoring the token that follows it.
    BatchItem context{0, window.data(), first, /*logits=*/false};
    if (auto e = model.eval_batch(&context, 1); !e.ok()) return e.status();
    for (int64_t at = first; at < n_ctx - 1; at += rows_per_eval) {
      const int64_t n = std::min(rows_per_eval, n_ctx - 1 - at);
      BatchItem scored{0, window.data() + at, n, /*logits=*/true, /*all_logits=*/true};
      auto logits = model.eval_batch(&scored, 1);
      if (!logits.ok()) return logits.status();
      for (int64_t k = 0; k < n; ++k) {
        const double v = negative_log_likelihood(*logits + k * n_vocab, n_vocab, window[at + k + 1]);
        nll_sum += v;
        nll_sq_sum += v * v;
      }
      r.scored += n;
    }
    r.chunks = c + 1;
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double mean = nll_sum / static_cast<double>(r.scored);
    r.ppl = std::exp(mean);
    // The standard error of the mean log-likelihood, carried through exp():
    // d ppl = ppl * d mean.
    const double var = nll_sq_sum / static_cast<double>(r.scored) - mean * mean;
    r.ppl_error = r.scored > 1 && var > 0 ? r.ppl * std::sqrt(var / static_cast<double>(r.scored - 1)) : 0;
    progress(r);
  }
  model.seq_clear(0);
  return r;
}

}  // namespace osprey
