// --lora FILE[:SCALE], repeatable, shared by every command that loads a model
// (run, chat, bench, perplexity, embed, serve).
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "models/lora.h"

namespace osprey::cli {

void add_lora_options(CLI::App& cmd, std::vector<std::string>& specs);
// Throws Failure naming a malformed argument.
std::vector<LoraSpec> parse_lora_flags(const std::vector<std::string>& specs);

}  // namespace osprey::cli
