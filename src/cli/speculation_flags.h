// --spec / --draft-max, shared by the commands that generate (run, chat,
// serve): speculative decoding by prompt lookup, which changes no reply.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "engine/ngram_draft.h"

namespace osprey::cli {

struct SpeculationFlags {
  std::string mode = "none";
  int draft_max = 16;
  SpeculationOptions options() const {
    SpeculationOptions o;
    o.ngram = mode == "ngram";
    o.max_draft = draft_max;
    return o;
  }
};

void add_speculation_options(CLI::App& cmd, SpeculationFlags& flags);

}  // namespace osprey::cli
