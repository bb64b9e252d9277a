// The generation loop: evaluate the prompt, then sample, detokenize and
// evaluate one token at a time until a stop condition. It talks to the model
// through the narrow TokenModel interface, so tests can drive it with a fake.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/sequence_step.h"
#include "models/model.h"
#include "sampling/sampler.h"
#include "tokenizer/detokenizer.h"
#include "tokenizer/tokenizer.h"

namespace osprey {

class TokenModel {
 public:
  virtual ~TokenModel() = default;
  virtual Expected<const float*> eval(const int32_t* tokens, int64_t n) = 0;  // logits after the last token
  // Logits after each of the n tokens, n_vocab apart (speculative decoding verifies drafts with them).
  virtual Expected<const float*> eval_all(const int32_t* tokens, int64_t n) = 0;
  virtual void truncate(int64_t n_past) = 0;  // forgets positions >= n_past (rejected drafts)
  virtual int64_t n_ctx() const = 0;
  virtual int64_t n_past() const = 0;
  virtual int32_t n_vocab() const = 0;
};

// Adapts one sequence of a loaded Model to TokenModel (sequence 0 by default:
// run, bench and chat; the public API's sessions use their own).
class ModelRunner final : public TokenModel {
 public:
  explicit ModelRunner(Model& m, int seq = 0) : m_(m), seq_(seq) {}
  Expected<const float*> eval(const int32_t* tokens, int64_t n) override {
    BatchItem item{seq_, tokens, n, true};
    return m_.eval_batch(&item, 1);
  }
  Expected<const float*> eval_all(const int32_t* tokens, int64_t n) override {
    BatchItem item{seq_, tokens, n, true, true};
    return m_.eval_batch(&item, 1);
  }
  void truncate(int64_t n_past) override { m_.seq_truncate(seq_, n_past); }
  int64_t n_ctx() const override { return m_.n_ctx(); }
  int64_t n_past() const override { return m_.seq_n_past(seq_); }
  int32_t n_vocab() const override { return static_cast<int32_t>(m_.config().n_vocab); }

 private:
  Model& m_;
  int seq_;
};

struct GenerateResult {
  std::vector<int32_t> tokens;  // generated ids, excluding the prompt
  FinishReason finish = FinishReason::kLength;
  int64_t n_prompt = 0;
  double prompt_seconds = 0;
  double gen_seconds = 0;  // from the first sampled token to the last
  // Speculative decoding: tokens proposed, and those the model agreed with.
  int64_t n_drafted = 0, n_accepted = 0;
};

// Called with each token and the text it completes (may be empty while a
// UTF-8 character is pending). Returning false cancels the generation.
using TokenCallback = std::function<bool(int32_t id, const std::string& text)>;

// The reply's options are the server's (engine/sequence_step.h): sampling,
// max_tokens, stop strings, ignore_eos, constraints; the same step produces
// every token either way. With reply.speculation.ngram, drafts found by
// prompt lookup are verified in one pass each; every token is still chosen
// by the step from the model's logits at its position, so the reply is the
// one generated without speculation (same seed, same tokens).
Expected<GenerateResult> generate(TokenModel& model, const Tokenizer& tokenizer, const std::vector<int32_t>& prompt,
                                  ReplyOptions reply, const TokenCallback& on_token);

}  // namespace osprey
