// Prompt-lookup drafting for speculative decoding (engine/drafter.h), with no
// second model: when the last few tokens of the sequence occurred before (in
// the prompt or the reply so far), the tokens that followed them then are
// proposed as the continuation now. Text that restates or edits its input
// (code edits, summaries that quote, a document restated) repeats long runs,
// and each run accepted costs one forward pass instead of one per token.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/drafter.h"

namespace osprey {

class NgramDrafter final : public Drafter {
 public:
  explicit NgramDrafter(int max_draft) : length_(max_draft) {}

  // Up to min(the current draft length, limit) tokens to follow `history`:
  // what followed the latest earlier occurrence of its last kMaxNgram tokens,
  // else of fewer (down to kMinNgram). Empty when nothing matches.
  std::vector<int32_t> propose(const std::vector<int32_t>& history, int64_t limit) override;
  void feedback(int drafted, int accepted) override { length_.feedback(drafted, accepted); }
  int draft_length() const { return length_.get(); }

  static constexpr int kMaxNgram = 4, kMinNgram = 2;

 private:
  DraftLength length_;
};

}  // namespace osprey
