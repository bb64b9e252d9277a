// One sequence's turn after a forward pass: the only place a token is
// produced. It chooses the next token (sampled, drawn from a grammar's
// allowed tokens, or forced), turns it into text, holds back text that may
// begin a stop string, reports log-probabilities, and decides whether the
// reply is over. The single-stream loop (generate) and the batching
// scheduler both drive it, so neither samples, detokenizes or stops on its own.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "engine/drafter.h"
#include "grammar/token_constraint.h"
#include "sampling/sampler.h"
#include "tokenizer/detokenizer.h"
#include "tokenizer/tokenizer.h"

namespace osprey {

enum class FinishReason {
  kStop,         // end of generation, or a stop string
  kLength,       // max_tokens reached
  kContextFull,  // no position left in the sequence's context
  kCancelled,    // the caller stopped it
  kError,        // the reply cannot go on (StepOutput::error says why)
};
const char* finish_reason_name(FinishReason r);

struct TopLogprob {
  std::string token;
  float logprob;
};

// What one reply asks of its tokens.
struct ReplyOptions {
  SamplingParams sampling;
  int64_t max_tokens = 256;        // -1: until end of generation or the context is full
  std::vector<std::string> stop;   // the reply ends where one of these begins (not included)
  int top_logprobs = -1;           // -1: none; 0: the chosen token's; k > 0: and the k likeliest
  bool ignore_eos = false;         // end-of-generation tokens are never chosen
  // Structured output: the tokens the reply may take next (null: any).
  std::shared_ptr<grammar::TokenConstraint> constraint;
  std::string constraint_after;        // non-empty: the constraint applies once the reply holds this text
  std::vector<int32_t> render_tokens;  // control tokens whose text the reply shows
  SpeculationOptions speculation;      // how the generation loop drafts (the step itself ignores it)
};

// The result of one step.
struct StepOutput {
  int32_t token = -1;       // the token this step added to the reply; -1: none (end of generation, or an error)
  std::string text;         // text final now; a possible stop-string start waits for the next step
  float logprob = 0;        // with top_logprobs >= 0: of `token` under the model's own distribution
  std::vector<TopLogprob> top;
  bool done = false;
  FinishReason finish = FinishReason::kLength;  // when done
  std::string tail;         // when done: the text still held, which ends the reply
  std::string error;        // when finish is kError
};

class SequenceStep {
 public:
  // `prompt` is what the reply continues: it seeds the sampler's penalties
  // and the detokenizer's context (a reply's first space is real).
  SequenceStep(const Tokenizer& tokenizer, ReplyOptions options, int32_t n_vocab, const std::vector<int32_t>& prompt);

  // The checks to run before the first step; names the bad field.
  static Status validate(const ReplyOptions& options, int32_t n_vocab);

  // Chooses the token that follows `logits` ([n_vocab], the model's own).
  // `context_left`: positions still free in the sequence's context before
  // this token is fed back.
  StepOutput next(const float* logits, int64_t context_left);

  // Every token the reply holds so far (what a preempted sequence recomputes).
  const std::vector<int32_t>& generated() const { return generated_; }
  int64_t n_generated() const { return static_cast<int64_t>(generated_.size()); }

 private:
  int32_t choose(const float* logits, int64_t budget, std::string& error);
  void fill_logprobs(const float* logits, int32_t token, StepOutput& out) const;
  void track_constraint_trigger(const std::string& piece);
  StepOutput end(StepOutput out, FinishReason reason);

  const Tokenizer& tokenizer_;
  ReplyOptions options_;
  int32_t n_vocab_;
  Sampler sampler_;
  StreamDetokenizer detok_;
  std::vector<int32_t> generated_;
  std::string held_;                // text held back while it may begin a stop string
  std::string before_constraint_;  // the reply so far, while the constraint waits for its trigger
  std::deque<int32_t> forced_;      // tokens to emit next without sampling (the trigger, when room runs out)
  std::vector<int32_t> trigger_;    // the trigger and a paragraph break, as tokens (made once, when first needed)
};

}  // namespace osprey
