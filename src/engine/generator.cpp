#include "engine/generator.h"

#include <chrono>

namespace osprey {

Expected<GenerateResult> generate(TokenModel& model, const Tokenizer& tokenizer, const std::vector<int32_t>& prompt,
                                  ReplyOptions reply, const TokenCallback& on_token) {
  using Clock = std::chrono::steady_clock;
  auto seconds = [](Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); };
  if (prompt.empty()) return InvalidArgument("the prompt is empty: nothing to continue from");
  OSPREY_TRY(SequenceStep::validate(reply, model.n_vocab()));
  const int64_t room = model.n_ctx() - model.n_past();
  if (static_cast<int64_t>(prompt.size()) > room)
    return OutOfRange("the prompt has " + std::to_string(prompt.size()) + " tokens but the context has room for " +
                      std::to_string(room) + " (context size " + std::to_string(model.n_ctx()) + ")");

  const int64_t max_tokens = reply.max_tokens;
  GenerateResult result;
  result.n_prompt = static_cast<int64_t>(prompt.size());
  SequenceStep step(tokenizer, std::move(reply), model.n_vocab(), prompt);

  const auto t0 = Clock::now();
  OSPREY_ASSIGN_OR_RETURN(const float* logits, model.eval(prompt.data(), static_cast<int64_t>(prompt.size())));
  const auto t1 = Clock::now();
  result.prompt_seconds = seconds(t0, t1);

  result.finish = FinishReason::kLength;
  std::string tail;
  // Each turn takes a token and, only if more are wanted, evaluates it.
  while (max_tokens != 0) {
    StepOutput out = step.next(logits, model.n_ctx() - model.n_past());
    if (out.finish == FinishReason::kError) return InvalidArgument(out.error);
    if (out.token >= 0) {
      result.tokens.push_back(out.token);
      if (on_token && !on_token(out.token, out.text)) {
        result.finish = FinishReason::kCancelled;
        break;
      }
    }
    if (out.done) {
      result.finish = out.finish;
      tail = std::move(out.tail);
      break;
    }
    OSPREY_ASSIGN_OR_RETURN(logits, model.eval(&out.token, 1));
  }
  if (on_token && !tail.empty()) on_token(-1, tail);
  result.gen_seconds = seconds(t1, Clock::now());
  return result;
}

}  // namespace osprey
