#include "engine/sequence_step.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace osprey {

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kContextFull: return "context";
    case FinishReason::kCancelled: return "cancelled";
    case FinishReason::kError: return "error";
  }
  return "unknown";
}

namespace {

// Length of the longest suffix of `text` that begins some stop string: that
// much must be held back until the next token decides.
size_t partial_stop_suffix(const std::string& text, const std::vector<std::string>& stops) {
  size_t best = 0;
  for (const std::string& s : stops) {
    for (size_t len = std::min(s.size() - 1, text.size()); len > best; --len) {
      if (text.compare(text.size() - len, len, s, 0, len) == 0) {
        best = len;
        break;
      }
    }
  }
  return best;
}

// ignore_eos: end-of-generation tokens get no probability at all, so the
// sampler (greedy or not) picks among the rest.
SamplingParams with_eos_banned(SamplingParams p, const Tokenizer& tokenizer, bool ignore_eos) {
  if (ignore_eos)
    for (int32_t id : tokenizer.vocab().end_of_generation)
      p.logit_bias.emplace_back(id, -std::numeric_limits<float>::infinity());
  return p;
}

}  // namespace

SequenceStep::SequenceStep(const Tokenizer& tokenizer, ReplyOptions options, int32_t n_vocab,
                           const std::vector<int32_t>& prompt)
    : tokenizer_(tokenizer),
      options_(std::move(options)),
      n_vocab_(n_vocab),
      sampler_(with_eos_banned(options_.sampling, tokenizer, options_.ignore_eos), n_vocab),
      detok_(tokenizer, /*render_special=*/false) {
  for (int32_t t : prompt) sampler_.accept(t);
  detok_.push_context(prompt);
}

Status SequenceStep::validate(const ReplyOptions& options, int32_t n_vocab) {
  OSPREY_TRY(options.sampling.validate(n_vocab));
  if (options.max_tokens < -1) return InvalidArgument("max_tokens must be >= -1");
  if (options.top_logprobs < -1) return InvalidArgument("top_logprobs must be >= -1");
  for (const std::string& s : options.stop)
    if (s.empty()) return InvalidArgument("a stop string is empty");
  if (options.ignore_eos && options.constraint)
    return InvalidArgument("ignore_eos cannot be combined with a grammar, which ends the reply itself");
  return Status::Ok();
}

StepOutput SequenceStep::next(const float* logits, int64_t context_left) {
  StepOutput out;
  const int64_t budget =
      options_.max_tokens < 0 ? context_left : std::min(options_.max_tokens - n_generated(), context_left);
  const int32_t token = choose(logits, budget, out.error);
  if (token < 0) return end(std::move(out), FinishReason::kError);
  sampler_.accept(token);
  if (tokenizer_.vocab().is_end_of_generation(token) && !options_.ignore_eos) return end(std::move(out), FinishReason::kStop);

  out.token = token;
  generated_.push_back(token);
  if (options_.top_logprobs >= 0) fill_logprobs(logits, token, out);

  std::string piece = detok_.push(token);
  if (std::find(options_.render_tokens.begin(), options_.render_tokens.end(), token) != options_.render_tokens.end())
    piece += tokenizer_.vocab().text_of(token);
  track_constraint_trigger(piece);
  held_ += piece;
  for (const std::string& s : options_.stop) {
    const size_t at = held_.find(s);
    if (at != std::string::npos) {
      // A stop string ends the text where it starts; what follows is dropped.
      out.text = held_.substr(0, at);
      held_.clear();
      out.done = true;
      out.finish = FinishReason::kStop;
      return out;
    }
  }
  const size_t keep = partial_stop_suffix(held_, options_.stop);
  out.text = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);

  if (options_.max_tokens >= 0 && n_generated() >= options_.max_tokens) return end(std::move(out), FinishReason::kLength);
  // The token just chosen needs a position of its own to be fed back.
  if (context_left < 1) return end(std::move(out), FinishReason::kContextFull);
  return out;
}

StepOutput SequenceStep::end(StepOutput out, FinishReason reason) {
  out.done = true;
  out.finish = reason;
  if (reason != FinishReason::kError) out.tail = held_ + detok_.flush();
  held_.clear();
  return out;
}

int32_t SequenceStep::choose(const float* logits, int64_t budget, std::string& error) {
  const auto& constraint = options_.constraint;
  if (constraint && !options_.constraint_after.empty() && forced_.empty()) {
    // Still in the reasoning: when only the answer's shortest completion
    // (and the trigger) still fit, the trigger is written for the model.
    if (trigger_.empty()) trigger_ = tokenizer_.encode(options_.constraint_after + "\n\n", false, true);
    if (budget <= static_cast<int64_t>(constraint->min_remaining() + trigger_.size()) + 2)
      forced_.assign(trigger_.begin(), trigger_.end());
  }
  if (!forced_.empty()) {
    const int32_t token = forced_.front();
    forced_.pop_front();
    return token;
  }
  if (constraint && options_.constraint_after.empty()) {
    // Drawn from the grammar's allowed tokens; logprobs still report the
    // model's own distribution.
    const int32_t token = constraint->next(logits, budget, [&](const float* masked) { return sampler_.sample(masked); });
    if (token < 0) error = "no token of the vocabulary can continue the requested grammar here";
    return token;
  }
  return sampler_.sample(logits);
}

void SequenceStep::fill_logprobs(const float* logits, int32_t token, StepOutput& out) const {
  // Log-probabilities of the model's own distribution (before sampling settings).
  const int64_t V = n_vocab_;
  float max = logits[0];
  for (int64_t i = 1; i < V; ++i) max = std::max(max, logits[i]);
  double sum = 0;
  for (int64_t i = 0; i < V; ++i) sum += std::exp(static_cast<double>(logits[i] - max));
  const float log_z = max + static_cast<float>(std::log(sum));
  out.logprob = logits[token] - log_z;
  if (options_.top_logprobs <= 0) return;
  std::vector<int32_t> ids(static_cast<size_t>(V));
  for (int64_t i = 0; i < V; ++i) ids[static_cast<size_t>(i)] = static_cast<int32_t>(i);
  const size_t k = std::min<size_t>(static_cast<size_t>(options_.top_logprobs), ids.size());
  std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(k), ids.end(),
                    [&](int32_t x, int32_t y) { return logits[x] > logits[y] || (logits[x] == logits[y] && x < y); });
  for (size_t i = 0; i < k; ++i) out.top.push_back({tokenizer_.token_bytes(ids[i]), logits[ids[i]] - log_z});
}

// Once the trigger has been written, the constraint applies from the next token.
void SequenceStep::track_constraint_trigger(const std::string& piece) {
  if (options_.constraint_after.empty()) return;
  before_constraint_ += piece;
  if (before_constraint_.find(options_.constraint_after) != std::string::npos) {
    options_.constraint_after.clear();
    before_constraint_.clear();
  } else if (before_constraint_.size() > 4 * options_.constraint_after.size() + 64) {
    before_constraint_.erase(0, before_constraint_.size() - options_.constraint_after.size());
  }
}

}  // namespace osprey
