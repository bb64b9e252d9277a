// Turns logits into the next token through a chain of small stages:
//   logit bias -> repetition/frequency/presence penalties -> top-k -> top-p
//   -> min-p -> temperature -> seeded draw
// Temperature <= 0 means greedy (argmax, lowest id on ties). Randomness comes
// from a generator owned by the sampler and seeded explicitly, so the same
// seed, logits and history give the same tokens on every machine.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "osprey/status.h"
#include "sampling/descending_order.h"

namespace osprey {

struct SamplingParams {
  float temperature = 0.8f;
  int32_t top_k = 40;          // 0: off
  float top_p = 0.95f;         // 1: off
  float min_p = 0.05f;         // 0: off
  float repeat_penalty = 1.0f; // 1: off; divides positive logits of seen tokens, multiplies negative ones
  float frequency_penalty = 0.0f;  // subtracts count * value
  float presence_penalty = 0.0f;   // subtracts value once per seen token
  int32_t penalty_last_n = 64;     // how many recent tokens the penalties look at; -1: all
  uint64_t seed = 0;
  std::vector<std::pair<int32_t, float>> logit_bias;

  // Checks every field; names the first bad one.
  Status validate(int32_t n_vocab) const;
  bool greedy() const { return temperature <= 0.0f; }
  // Whether any penalty changes the logits of seen tokens.
  bool penalises() const { return repeat_penalty != 1.0f || frequency_penalty != 0.0f || presence_penalty != 0.0f; }
};

struct TokenCandidate {
  int32_t id;
  float logit;
  float p;
};

// The stages, exposed so each can be tested on a hand-made array.
namespace sampling {
void apply_penalties(std::vector<TokenCandidate>& c, const std::vector<int32_t>& recent, const SamplingParams& p);
void top_k(std::vector<TokenCandidate>& c, int32_t k);           // keeps the k largest, sorted descending
// Keeps the candidates top-p and min-p keep at temperature 1: the smallest
// prefix of the order (descending logit, then id) whose probability reaches
// top_p, cut where a probability falls below min_p times the first's. c ends
// up as that prefix, in order, with p filled. 1 and 0 turn each off.
void nucleus(std::vector<TokenCandidate>& c, float top_p, float min_p, DescendingOrder& order);
void temperature(std::vector<TokenCandidate>& c, float t);
// Draws from the softmax of c's logits with r in [0, 1): the first candidate
// in order whose cumulative probability exceeds r. Never one of probability 0
// (a -inf logit), which rounding could otherwise reach when r is near 1.
int32_t draw(std::vector<TokenCandidate>& c, double r, DescendingOrder& order);
int32_t argmax(const float* logits, int32_t n);
}  // namespace sampling

class Sampler {
 public:
  Sampler(SamplingParams params, int32_t n_vocab);

  int32_t sample(const float* logits);
  void accept(int32_t token);  // records a token for the penalties
  void reset();                // clears history and reseeds
  const SamplingParams& params() const { return params_; }

 private:
  double uniform();  // [0, 1) from 53 random bits: the same on every platform

  SamplingParams params_;
  int32_t n_vocab_;
  std::mt19937_64 rng_;
  std::vector<int32_t> history_;
  std::vector<int32_t> recent_;  // the window the penalties see, reused every token
  std::vector<TokenCandidate> cand_;
  sampling::DescendingOrder order_;  // its buffers are reused every token
};

}  // namespace osprey
