#include "engine/generator.h"

#include <chrono>

namespace osprey {

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kContextFull: return "context";
    case FinishReason::kCancelled: return "cancelled";
  }
  return "unknown";
}

Expected<GenerateResult> generate(TokenModel& model, const Tokenizer& tokenizer, const std::vector<int32_t>& prompt,
                                  const GenerateOptions& options, const TokenCallback& on_token) {
  using Clock = std::chrono::steady_clock;
  auto seconds = [](Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); };
  if (prompt.empty()) return InvalidArgument("the prompt is empty: nothing to continue from");
  OSPREY_TRY(options.sampling.validate(model.n_vocab()));
  if (options.max_tokens < -1) return InvalidArgument("max_tokens must be >= -1");
  const int64_t room = model.n_ctx() - model.n_past();
  if (static_cast<int64_t>(prompt.size()) > room)
    return OutOfRange("the prompt has " + std::to_string(prompt.size()) + " tokens but the context has room for " +
                      std::to_string(room) + " (context size " + std::to_string(model.n_ctx()) + ")");

  GenerateResult result;
  result.n_prompt = static_cast<int64_t>(prompt.size());
  Sampler sampler(options.sampling, model.n_vocab());
  for (int32_t t : prompt) sampler.accept(t);
  // Generated text continues the prompt, so its first space is real.
  StreamDetokenizer detok(tokenizer, /*render_special=*/false);
  detok.push_context(prompt);

  const auto t0 = Clock::now();
  OSPREY_ASSIGN_OR_RETURN(const float* logits, model.eval(prompt.data(), static_cast<int64_t>(prompt.size())));
  const auto t1 = Clock::now();
  result.prompt_seconds = seconds(t0, t1);

  result.finish = FinishReason::kLength;
  // Each turn samples a token and, only if more are wanted, evaluates it.
  while (options.max_tokens != 0) {
    const int32_t id = sampler.sample(logits);
    sampler.accept(id);
    if (!options.ignore_eos && tokenizer.vocab().is_end_of_generation(id)) {
      result.finish = FinishReason::kStop;
      break;
    }
    result.tokens.push_back(id);
    if (on_token && !on_token(id, detok.push(id))) {
      result.finish = FinishReason::kCancelled;
      break;
    }
    if (options.max_tokens >= 0 && static_cast<int64_t>(result.tokens.size()) >= options.max_tokens) break;
    if (model.n_past() >= model.n_ctx()) {
      result.finish = FinishReason::kContextFull;
      break;
    }
    OSPREY_ASSIGN_OR_RETURN(logits, model.eval(&id, 1));
  }
  const std::string tail = detok.flush();
  if (on_token && !tail.empty()) on_token(-1, tail);
  result.gen_seconds = seconds(t1, Clock::now());
  return result;
}

}  // namespace osprey
