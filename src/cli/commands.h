// Each subcommand registers its options and its action on the CLI11 app.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>

namespace osprey::cli {

void register_run(CLI::App& app);
void register_inspect(CLI::App& app);
void register_tokenize(CLI::App& app);
void register_synth(CLI::App& app);
void register_bench(CLI::App& app);
void register_template(CLI::App& app);
void register_serve(CLI::App& app);
void register_chat(CLI::App& app);
void register_grammar(CLI::App& app);
void register_quantize(CLI::App& app);
void register_perplexity(CLI::App& app);
void register_imatrix(CLI::App& app);
void register_convert(CLI::App& app);
void register_probe(CLI::App& app);
void register_embed(CLI::App& app);

// Thrown by actions to end with a message and exit code 1.
struct Failure {
  std::string message;
};

// A whole file, or Failure naming it.
std::string read_text(const std::string& path);
nlohmann::ordered_json read_json(const std::string& path);

}  // namespace osprey::cli
