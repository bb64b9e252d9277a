#include "engine/model_draft.h"

#include <algorithm>

#include "engine/generator.h"
#include "engine/ngram_draft.h"
#include "tokenizer/tokenizer.h"

namespace osprey {

ModelDrafter::ModelDrafter(std::unique_ptr<TokenModel> model, int max_draft)
    : model_(std::move(model)), length_(max_draft) {
  model_->truncate(0);
}

ModelDrafter::~ModelDrafter() { model_->truncate(0); }

std::vector<int32_t> ModelDrafter::propose(const std::vector<int32_t>& history, int64_t limit) {
  int64_t want = std::min<int64_t>(length_.next(), limit);
  if (want <= 0 || history.empty()) return {};
  // Keep what the draft model read that is still the sequence (rejected
  // drafts and anything after a divergence are forgotten), and read the rest.
  size_t keep = 0;
  while (keep < read_.size() && keep < history.size() && read_[keep] == history[keep]) ++keep;
  // The last token is read again whenever nothing new follows it, so that
  // its logits are at hand.
  if (keep == history.size()) --keep;
  model_->truncate(static_cast<int64_t>(keep));
  read_.resize(keep);
  const int64_t V = model_->n_vocab();
  const int64_t room = model_->n_ctx() - static_cast<int64_t>(keep);
  const int64_t fresh = static_cast<int64_t>(history.size() - keep);
  // It reads the new tokens and all drafts but the last: shorter drafts where the context ends.
  want = std::min(want, room - fresh + 1);
  if (want <= 0) return {};
  auto logits = model_->eval(history.data() + keep, fresh);
  if (!logits.ok()) return {};
  read_.insert(read_.end(), history.begin() + static_cast<int64_t>(keep), history.end());
  std::vector<int32_t> draft;
  for (;;) {
    const float* row = *logits;
    const int32_t best = static_cast<int32_t>(std::max_element(row, row + V) - row);
    draft.push_back(best);
    if (static_cast<int64_t>(draft.size()) == want) break;
    logits = model_->eval(&best, 1);
    if (!logits.ok()) break;
    read_.push_back(best);
  }
  return draft;
}

Status check_draft_model(const Model& target, const Tokenizer& target_tokens, const Model& draft,
                         const Tokenizer& draft_tokens) {
  const Vocab& t = target_tokens.vocab();
  const Vocab& d = draft_tokens.vocab();
  if (t.size() != d.size())
    return InvalidArgument("the draft model's vocabulary has " + std::to_string(d.size()) + " tokens and the model's " +
                           std::to_string(t.size()) + "; a draft model must share the model's vocabulary");
  for (int32_t id = 0; id < static_cast<int32_t>(t.size()); ++id)
    if (t.text_of(id) != d.text_of(id))
      return InvalidArgument("token " + std::to_string(id) + " is '" + t.text_of(id) + "' in the model but '" +
                             d.text_of(id) + "' in the draft model; a draft model must share the model's vocabulary");
  if (t.bos != d.bos || t.eos != d.eos)
    return InvalidArgument("the draft model's BOS/EOS tokens (" + std::to_string(d.bos) + "/" + std::to_string(d.eos) +
                           ") differ from the model's (" + std::to_string(t.bos) + "/" + std::to_string(t.eos) + ")");
  if (target.config().n_vocab != draft.config().n_vocab)
    return InvalidArgument("the draft model has " + std::to_string(draft.config().n_vocab) + " output logits and the model " +
                           std::to_string(target.config().n_vocab) + "; a draft model must share the model's vocabulary");
  return Status::Ok();
}

std::unique_ptr<Drafter> make_drafter(const SpeculationOptions& options, int seq) {
  if (options.draft_model != nullptr)
    return std::make_unique<ModelDrafter>(std::make_unique<ModelRunner>(*options.draft_model, seq), options.max_draft);
  if (options.ngram) return std::make_unique<NgramDrafter>(options.max_draft);
  return nullptr;
}

}  // namespace osprey
