#include "cli/bench_batched.h"

#include <chrono>

#include "cli/commands.h"

namespace osprey::cli {

namespace {

// Sequence s's tokens: its own stream, so that no two share a prefix.
std::vector<int32_t> sequence_tokens(int s, int64_t n, int64_t n_vocab) {
  std::vector<int32_t> t(n);
  uint64_t x = 0x9e3779b97f4a7c15ull * static_cast<uint64_t>(s + 1);
  for (auto& v : t) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    v = static_cast<int32_t>((x >> 33) % static_cast<uint64_t>(n_vocab));
  }
  return t;
}

void check(const Expected<const float*>& r) {
  if (!r.ok()) throw Failure{r.status().message()};
}

// Sequence s back at `depth` positions: cut back, or refilled when sliding
// windows had dropped what the cut would need.
void to_depth(Model& m, int s, const std::vector<int32_t>& tokens, int64_t depth) {
  m.seq_truncate(s, depth);
  if (m.seq_n_past(s) == depth) return;
  m.seq_clear(s);
  BatchItem fill{s, tokens.data(), depth};
  fill.logits = false;
  check(m.eval_batch(&fill, 1));
}

}  // namespace

BatchedResult bench_batched(Model& m, int n_seqs, int64_t depth, int64_t n_gen, int reps, Tracer* tracer) {
  const int64_t V = m.config().n_vocab;
  std::vector<std::vector<int32_t>> tokens;
  for (int s = 0; s < n_seqs; ++s) {
    tokens.push_back(sequence_tokens(s, depth + n_gen, V));
    m.seq_clear(s);
    to_depth(m, s, tokens[s], depth);
  }
  // Tokens/s of the first `n` sequences decoding n_gen steps together, one
  // token each per pass, from `depth` (n = 1: sequence 0 alone).
  std::vector<BatchItem> step(n_seqs);
  auto decode = [&](int n, Tracer* t = nullptr) {
    for (int s = 0; s < n; ++s) to_depth(m, s, tokens[s], depth);
    m.set_tracer(t);
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < n_gen; ++i) {
      for (int s = 0; s < n; ++s) step[s] = BatchItem{s, &tokens[s][depth + i], 1};
      check(m.eval_batch(step.data(), n));
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    m.set_tracer(nullptr);
    return static_cast<double>(n * n_gen) / seconds;
  };
  decode(n_seqs);  // warm-up: page in the weights, settle the clocks
  decode(1);
  BatchedResult out;
  // Alternated, so that a drifting machine moves both alike.
  for (int r = 0; r < reps; ++r) {
    out.batched_ts.push_back(decode(n_seqs, r == 0 ? tracer : nullptr));
    out.single_ts.push_back(decode(1, r == 0 ? tracer : nullptr));
  }
  for (int s = 0; s < n_seqs; ++s) m.seq_clear(s);
  return out;
}

}  // namespace osprey::cli
