#include "engine/generator.h"

#include <algorithm>
#include <chrono>

#include "engine/drafter.h"

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
  const SpeculationOptions spec = reply.speculation;
  GenerateResult result;
  result.n_prompt = static_cast<int64_t>(prompt.size());
  SequenceStep step(tokenizer, std::move(reply), model.n_vocab(), prompt);

  const auto t0 = Clock::now();
  OSPREY_ASSIGN_OR_RETURN(const float* logits, model.eval(prompt.data(), static_cast<int64_t>(prompt.size())));
  const auto t1 = Clock::now();
  result.prompt_seconds = seconds(t0, t1);

  result.finish = FinishReason::kLength;
  std::string tail;
  const int64_t V = model.n_vocab();
  int64_t valid_past = model.n_past();  // positions of the cache that hold the reply's context
  // Speculation: the drafts a pass is verifying, the logits after each token
  // of that pass, and how many drafts the chosen tokens have matched so far.
  const std::unique_ptr<Drafter> drafter = make_drafter(spec, 0);
  const bool speculate = drafter != nullptr;
  std::vector<int32_t> history = speculate ? prompt : std::vector<int32_t>{};
  std::vector<int32_t> draft, pass;
  const float* rows = nullptr;
  size_t verified = 0;
  // Each turn takes a token and, only if more are wanted, evaluates it.
  while (max_tokens != 0) {
    StepOutput out = step.next(logits, model.n_ctx() - valid_past);
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
    if (speculate) history.push_back(out.token);
    // The token the step chose is the next draft: the pass already computed
    // the logits that follow it.
    if (verified < draft.size() && out.token == draft[verified]) {
      ++verified;
      ++result.n_accepted;
      ++valid_past;
      logits = rows + static_cast<int64_t>(verified) * V;
      continue;
    }
    if (!draft.empty()) {  // the pass ends here; the cache forgets the drafts that were not taken
      drafter->feedback(static_cast<int>(draft.size()), static_cast<int>(verified));
      if (verified < draft.size()) model.truncate(valid_past);
      draft.clear();
      verified = 0;
    }
    if (speculate) {
      int64_t limit = model.n_ctx() - valid_past - 1;
      if (max_tokens >= 0) limit = std::min(limit, max_tokens - static_cast<int64_t>(result.tokens.size()) - 1);
      draft = drafter->propose(history, limit);
    }
    if (draft.empty()) {
      OSPREY_ASSIGN_OR_RETURN(logits, model.eval(&out.token, 1));
    } else {
      pass.assign(1, out.token);
      pass.insert(pass.end(), draft.begin(), draft.end());
      OSPREY_ASSIGN_OR_RETURN(rows, model.eval_all(pass.data(), static_cast<int64_t>(pass.size())));
      result.n_drafted += static_cast<int64_t>(draft.size());
      logits = rows;
    }
    ++valid_past;
  }
  // A reply that ended inside a pass leaves the cache as it would be without
  // speculation (the chat command continues from it).
  if (model.n_past() > valid_past) model.truncate(valid_past);
  if (on_token && !tail.empty()) on_token(-1, tail);
  result.gen_seconds = seconds(t1, Clock::now());
  return result;
}

}  // namespace osprey
