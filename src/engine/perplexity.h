// Perplexity over a text, measured as llama.cpp's llama-perplexity measures
// it so that the two figures can be compared: the tokens are cut into
// non-overlapping windows of n_ctx; each window starts with BOS (replacing
// its first token) when the model adds one, is evaluated from an empty
// cache, and only its second half is scored, so every scored token sees at
// least n_ctx/2 tokens of context.
#pragma once

#include <cstdint>
#include <vector>

#include "core/function_ref.h"
#include "models/model.h"
#include "osprey/status.h"

namespace osprey {

struct PerplexityOptions {
  int64_t n_ctx = 512;     // window length; at most the model's context
  int64_t max_chunks = 0;  // 0: every whole window the text holds
  int32_t bos = -1;        // written over each window's first token; -1: none
};

struct PerplexityResult {
  int64_t chunks = 0;
  int64_t scored = 0;    // tokens whose probability counted
  double ppl = 0;        // exp(mean negative log-likelihood)
  double ppl_error = 0;  // its standard error (0 with fewer than two tokens)
  double seconds = 0;    // evaluating, as tokens per second: chunks * n_ctx / seconds
};

// Called after each window with the figures so far.
using PerplexityProgress = FunctionRef<void(const PerplexityResult& so_far)>;

// Uses sequence 0 of `model`, clearing it before each window and at the end.
Expected<PerplexityResult> perplexity(Model& model, const std::vector<int32_t>& tokens,
                                      const PerplexityOptions& options, PerplexityProgress progress);

}  // namespace osprey
