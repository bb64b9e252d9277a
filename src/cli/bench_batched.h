// bench's batched-decode test, the serving case: n_seqs sequences, each
// already holding `depth` positions, decode one token each per step, all in
// one forward pass. It is set against one sequence decoding alone at the
// same depth, so the figure is what batching buys: a step reads the weights
// once for every sequence, where one sequence alone reads them per token.
// The sequences are filled once (untimed); each repetition cuts them back to
// `depth` and times `n_gen` steps.
#pragma once

#include <cstdint>
#include <vector>

#include "models/model.h"

namespace osprey::cli {

struct BatchedResult {
  std::vector<double> batched_ts;  // tokens/s over all sequences, each repetition
  std::vector<double> single_ts;   // tokens/s of sequence 0 decoding alone, each repetition
};

// `m` must hold n_seqs sequences of depth + n_gen positions. A tracer, when
// given, records the first batched repetition and the first single one.
// Throws Failure on an evaluation error.
BatchedResult bench_batched(Model& m, int n_seqs, int64_t depth, int64_t n_gen, int reps, Tracer* tracer = nullptr);

}  // namespace osprey::cli
