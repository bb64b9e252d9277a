// Drafting with a second, smaller model that shares the target's vocabulary
// (engine/drafter.h): the draft model reads the same sequence in a KV
// sequence of its own and proposes its most likely next tokens, one cheap
// decode step each. Verification keeps exactly the tokens the target model
// would have chosen, so a draft model changes speed, never the reply.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "engine/drafter.h"
#include "osprey/status.h"

namespace osprey {

class Model;
class TokenModel;
class Tokenizer;

class ModelDrafter final : public Drafter {
 public:
  // Drafts through `model` (one sequence of the draft model; cleared here).
  ModelDrafter(std::unique_ptr<TokenModel> model, int max_draft);
  ~ModelDrafter() override;

  // Brings the draft model's sequence up to `history` (it keeps the longest
  // common prefix of what it read before), then takes its most likely token
  // up to min(draft length, limit) times. Near the end of the draft model's
  // context the draft is shorter, and past it empty: a draft model never
  // fails the reply.
  std::vector<int32_t> propose(const std::vector<int32_t>& history, int64_t limit) override;
  void feedback(int drafted, int accepted) override { length_.feedback(drafted, accepted); }

 private:
  std::unique_ptr<TokenModel> model_;
  DraftLength length_;
  std::vector<int32_t> read_;  // the tokens in the draft model's cache, in order
};

// A draft model can only stand in for the target when both read and write
// the same tokens: the same vocabulary (size, the text of every token, BOS
// and EOS) and the same number of output logits. The error names the first
// difference.
Status check_draft_model(const Model& target, const Tokenizer& target_tokens, const Model& draft,
                         const Tokenizer& draft_tokens);

}  // namespace osprey
