#include "cli/speculation_flags.h"

#include "cli/commands.h"
#include "cli/load_model.h"
#include "engine/model_draft.h"
#include "tokenizer/tokenizer.h"

namespace osprey::cli {

void add_speculation_options(CLI::App& cmd, SpeculationFlags& flags) {
  auto* spec = cmd.add_option("--spec", flags.mode,
                              "Speculative decoding: ngram drafts the continuation from earlier text of the prompt and reply "
                              "(prompt lookup) and verifies each draft in one pass; replies are the same as without it")
                   ->capture_default_str()
                   ->check(CLI::IsMember({"none", "ngram"}));
  cmd.add_option("--draft-model", flags.draft_model,
                 "Speculative decoding with a smaller GGUF model of the same vocabulary: it drafts, the model verifies "
                 "each draft in one pass; replies are the same as without it")
      ->check(CLI::ExistingFile)
      ->excludes(spec);
  cmd.add_option("--draft-max", flags.draft_max,
                 "The most tokens one speculative pass verifies (the draft length adapts below it)")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
}

std::unique_ptr<Model> load_draft_model(const SpeculationFlags& flags, const Model& target, const Tokenizer& target_tokens,
                                        const ModelOptions& options) {
  if (flags.draft_model.empty()) return nullptr;
  ModelOptions mo = options;
  mo.n_ctx = target.n_ctx();
  mo.lora.clear();  // the target's adapters are for the target
  auto draft = load_model(flags.draft_model, mo);
  auto tokens = Tokenizer::from_gguf(draft->file());
  if (!tokens.ok()) throw Failure{"--draft-model " + flags.draft_model + ": " + tokens.status().message()};
  if (Status st = check_draft_model(target, target_tokens, *draft, **tokens); !st.ok())
    throw Failure{"--draft-model " + flags.draft_model + ": " + st.message()};
  return draft;
}

}  // namespace osprey::cli
