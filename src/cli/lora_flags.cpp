#include "cli/lora_flags.h"

#include "cli/commands.h"

namespace osprey::cli {

void add_lora_options(CLI::App& cmd, std::vector<std::string>& specs) {
  cmd.add_option("--lora", specs,
                 "A LoRA adapter GGUF to apply, with an optional scale (FILE or FILE:SCALE, default 1); repeatable. "
                 "Applied beside the base weights, not merged; on serve, requests choose adapters by index with "
                 "\"lora\": [{\"id\": 0, \"scale\": 0.5}]")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
}

std::vector<LoraSpec> parse_lora_flags(const std::vector<std::string>& specs) {
  std::vector<LoraSpec> out;
  for (const std::string& s : specs) {
    auto spec = parse_lora_spec(s);
    if (!spec.ok()) throw Failure{spec.status().message()};
    out.push_back(*spec);
  }
  return out;
}

}  // namespace osprey::cli
