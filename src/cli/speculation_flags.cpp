#include "cli/speculation_flags.h"

namespace osprey::cli {

void add_speculation_options(CLI::App& cmd, SpeculationFlags& flags) {
  cmd.add_option("--spec", flags.mode,
                 "Speculative decoding: ngram drafts the continuation from earlier text of the prompt and reply "
                 "(prompt lookup) and verifies each draft in one pass; replies are the same as without it")
      ->capture_default_str()
      ->check(CLI::IsMember({"none", "ngram"}));
  cmd.add_option("--draft-max", flags.draft_max,
                 "The most tokens one speculative pass verifies (the draft length adapts below it)")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
}

}  // namespace osprey::cli
