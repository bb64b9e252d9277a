#include <cstdio>

#include "cli/commands.h"
#include "core/log.h"

int main(int argc, char** argv) {
  CLI::App app{"osprey: run open-weight language models fast on the CPU you have"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "osprey 0.1.0");
  osprey::cli::register_run(app);
  osprey::cli::register_inspect(app);
  osprey::cli::register_tokenize(app);
  osprey::cli::register_synth(app);
  osprey::cli::register_bench(app);
  osprey::cli::register_template(app);
  osprey::cli::register_serve(app);
  osprey::cli::register_chat(app);
  osprey::cli::register_grammar(app);
  osprey::cli::register_quantize(app);
  osprey::cli::register_perplexity(app);
  osprey::cli::register_imatrix(app);
  osprey::cli::register_convert(app);
  osprey::cli::register_probe(app);
  osprey::cli::register_embed(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const osprey::cli::Failure& f) {
    std::fprintf(stderr, "osprey: error: %s\n", f.message.c_str());
    return 1;
  }
  return 0;
}
