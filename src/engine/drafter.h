// Speculative decoding: a drafter proposes the tokens it expects to follow
// a sequence, and one forward pass of the model verifies them all. Each
// token is still chosen by the sequence's own step from the model's logits
// at its position (greedy or sampled, with its seed); a draft token is kept
// only when it equals the token chosen there. For a draft that proposes one
// token per position (prompt lookup, or a draft model's most likely token),
// that is standard rejection sampling: a draft token d is kept with
// probability p(d), and otherwise the token comes from p with d excluded.
// So the reply is the one generated without speculation, token for token.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

namespace osprey {

class Model;

struct SpeculationOptions {
  bool ngram = false;            // draft by prompt lookup
  Model* draft_model = nullptr;  // draft with this smaller model (same vocabulary); not owned
  int max_draft = 16;            // the most tokens one pass verifies beyond the sampled one

  bool enabled() const { return ngram || draft_model != nullptr; }
};

class Drafter {
 public:
  virtual ~Drafter() = default;
  // Up to `limit` tokens expected to follow `history` (the prompt and reply so
  // far). Empty when there is no guess.
  virtual std::vector<int32_t> propose(const std::vector<int32_t>& history, int64_t limit) = 0;
  // How many of `drafted` tokens were accepted.
  virtual void feedback(int drafted, int accepted) = 0;
};

// How long drafts are: doubling after a draft accepted whole and halving
// after one rejected at its first token, between 1 and the maximum, so text
// that the drafter cannot guess costs little. Even a draft of one token
// costs a position in the pass and, from a draft model, a step of its own;
// so while single-token drafts keep failing, drafting pauses for 1, 2, 4 ...
// up to kMaxPause steps, until a draft is taken again.
class DraftLength {
 public:
  static constexpr int kMaxPause = 16;
  explicit DraftLength(int max_draft) : max_(std::max(1, max_draft)), length_(std::min(4, max_)) {}
  int get() const { return length_; }
  // The length of the draft to make now: 0 during a pause.
  int next() {
    if (skip_ > 0) {
      --skip_;
      return 0;
    }
    return length_;
  }
  void feedback(int drafted, int accepted) {
    if (drafted <= 0) return;
    if (accepted > 0) pause_ = 0;
    if (accepted == drafted) length_ = std::min(max_, length_ * 2);
    else if (accepted == 0 && length_ == 1) skip_ = pause_ = std::min(kMaxPause, std::max(1, pause_ * 2));
    else if (accepted == 0) length_ = std::max(1, length_ / 2);
  }

 private:
  int max_;
  int length_;
  int pause_ = 0;  // the last pause, doubled at each failure
  int skip_ = 0;   // drafts still to skip
};

// The drafter the options ask for, drafting for sequence slot `seq` (a draft
// model keeps a KV sequence of its own there); null when speculation is off.
std::unique_ptr<Drafter> make_drafter(const SpeculationOptions& options, int seq);

}  // namespace osprey
