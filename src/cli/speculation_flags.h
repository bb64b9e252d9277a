// --spec / --draft-model / --draft-max, shared by the commands that generate
// (run, chat, serve): speculative decoding by prompt lookup or with a smaller
// draft model, which changes no reply (engine/drafter.h).
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "engine/drafter.h"
#include "models/model.h"

namespace osprey {
class Tokenizer;
}

namespace osprey::cli {

struct SpeculationFlags {
  std::string mode = "none";
  std::string draft_model;  // a GGUF file; empty: none
  int draft_max = 16;
  // The options, drafting with `draft` when --draft-model gave one.
  SpeculationOptions options(Model* draft = nullptr) const {
    SpeculationOptions o;
    o.ngram = mode == "ngram";
    o.draft_model = draft;
    o.max_draft = draft_max;
    return o;
  }
  const char* name() const { return !draft_model.empty() ? "draft model" : mode.c_str(); }
};

void add_speculation_options(CLI::App& cmd, SpeculationFlags& flags);

// The --draft-model file, loaded like the model (`options`: its context and
// threads) and checked against it; null without --draft-model. Throws
// Failure naming the file and what differs.
std::unique_ptr<Model> load_draft_model(const SpeculationFlags& flags, const Model& target, const Tokenizer& target_tokens,
                                        const ModelOptions& options);

}  // namespace osprey::cli
