// bench's speculative-decoding test: a greedy reply that restates text the
// prompt already holds, as when a model is asked to repeat or lightly edit a
// document or code. The task is made from the model's own output, so that it
// is repetitive for any model, real or synthetic: N tokens generated
// greedily from a seed, then the prompt "seed + those tokens + seed", whose
// greedy continuation is those tokens again. With `edit_every` k > 0, every
// k-th token of the copy in the prompt is replaced by another, as in a file
// being edited: the reply no longer matches the prompt everywhere, and
// prompt lookup has to find its place again after each change. Each
// repetition generates the N tokens from that prompt without speculation
// and with it, and the two replies must be identical.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/drafter.h"
#include "models/model.h"
#include "tokenizer/tokenizer.h"

namespace osprey::cli {

struct RestateResult {
  std::vector<double> plain_ts, spec_ts;  // decode tokens/s, each repetition
  int64_t drafted = 0, accepted = 0;      // over the repetitions with speculation
  int64_t n_prompt = 0;
};

// Throws Failure if a reply with speculation differs from the one without.
RestateResult bench_restate(Model& m, const Tokenizer& tok, const SpeculationOptions& spec, int64_t n_gen, int reps,
                            int64_t edit_every);

}  // namespace osprey::cli
