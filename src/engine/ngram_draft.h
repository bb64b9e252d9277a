// Prompt-lookup drafting for speculative decoding, with no second model:
// when the last few tokens of the sequence occurred before (in the prompt
// or the reply so far), the tokens that followed them then are proposed as
// the continuation now. Text that restates or edits its input (code edits,
// summaries that quote, a document restated) repeats long runs, and each
// run accepted costs one forward pass instead of one per token.
#pragma once

#include <cstdint>
#include <vector>

namespace osprey {

struct SpeculationOptions {
  bool ngram = false;  // draft by prompt lookup
  int max_draft = 16;  // the most tokens one pass verifies beyond the sampled one
};

class NgramDrafter {
 public:
  explicit NgramDrafter(int max_draft) : max_draft_(max_draft < 1 ? 1 : max_draft) {}

  // Up to min(the current draft length, limit) tokens to follow `history`:
  // what followed the latest earlier occurrence of its last kMaxNgram tokens,
  // else of fewer (down to kMinNgram). Empty when nothing matches.
  std::vector<int32_t> propose(const std::vector<int32_t>& history, int64_t limit) const;

  // How many of `drafted` tokens were accepted: the draft length adapts,
  // doubling after a draft accepted whole and halving after one rejected at
  // its first token, so text that does not repeat costs little.
  void feedback(int drafted, int accepted);

  int draft_length() const { return length_; }

  static constexpr int kMaxNgram = 4, kMinNgram = 2;

 private:
  int max_draft_;
  int length_ = 4;
};

}  // namespace osprey
