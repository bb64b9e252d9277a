// `osprey grammar`: what a JSON Schema (or a GBNF file) becomes, how long it
// takes to compile, and whether a text matches it. With -m, also the time of
// the first token mask over that model's vocabulary, which is the cost a
// request pays for a schema the server has not seen.
#include <chrono>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "formats/gguf.h"
#include "grammar/json_schema.h"
#include "grammar/matcher.h"
#include "grammar/token_constraint.h"
#include "server/constraint_vocabulary.h"
#include "tokenizer/tokenizer.h"

namespace osprey::cli {
namespace {

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

void register_grammar(CLI::App& app) {
  struct Opts {
    std::string schema, gbnf, model, check;
    bool quiet = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("grammar", "Compile a JSON Schema or GBNF grammar for structured output: print it, time it, test a text");
  auto* s = cmd->add_option("--json-schema", o->schema, "A JSON Schema file (as in response_format.json_schema.schema)");
  auto* g = cmd->add_option("--gbnf", o->gbnf, "A GBNF grammar file (as in the request's 'grammar' field)");
  s->excludes(g);
  cmd->add_option("-m,--model", o->model, "Also time the first token mask over this GGUF file's vocabulary");
  cmd->add_option("--check", o->check, "Report whether this text is a whole sentence of the grammar");
  cmd->add_flag("-q,--quiet", o->quiet, "Do not print the grammar");
  cmd->callback([o] {
    if (o->schema.empty() && o->gbnf.empty()) throw Failure{"give --json-schema FILE or --gbnf FILE"};
    const auto t0 = std::chrono::steady_clock::now();
    std::string text;
    if (!o->schema.empty()) {
      const nlohmann::ordered_json schema = read_json(o->schema);
      auto gbnf = grammar::json_schema_to_gbnf(schema);
      if (!gbnf.ok()) throw Failure{o->schema + ": " + gbnf.status().message()};
      text = std::move(gbnf).value();
    } else {
      text = read_text(o->gbnf);
    }
    auto compiled = grammar::Grammar::parse(text);
    if (!compiled.ok()) throw Failure{compiled.status().message()};
    const double compile_ms = ms_since(t0);
    auto g = std::make_shared<const grammar::Grammar>(std::move(compiled).value());
    if (!o->quiet) std::fwrite(text.data(), 1, text.size(), stdout);
    std::fprintf(stderr, "compiled in %.2f ms: %zu rules, %zu elements, %zu byte sets\n", compile_ms, g->alternatives.size(),
                 g->elements.size(), g->sets.size());
    if (!o->model.empty()) {
      auto file = GgufFile::open(o->model);
      if (!file.ok()) throw Failure{file.status().message()};
      auto tok = Tokenizer::from_gguf(*file);
      if (!tok.ok()) throw Failure{tok.status().message()};
      const auto t1 = std::chrono::steady_clock::now();
      const server::ConstraintVocabulary vocabulary = server::constraint_vocabulary(**tok);
      const grammar::TokenTrie& trie = *vocabulary.trie;
      const double trie_ms = ms_since(t1);
      grammar::GrammarMasks masks(g);
      grammar::Matcher start(g);
      const auto t2 = std::chrono::steady_clock::now();
      auto mask = masks.mask(trie, start.state(), UINT32_MAX);
      size_t allowed = 0;
      for (uint64_t w : *mask) allowed += static_cast<size_t>(__builtin_popcountll(w));
      std::fprintf(stderr, "vocabulary of %d tokens as a trie: %.2f ms (once per server); first mask: %.2f ms, %zu tokens allowed\n",
                   trie.n_vocab(), trie_ms, ms_since(t2), allowed);
    }
    if (!o->check.empty()) {
      grammar::Matcher m(g);
      const bool ok = m.accept(o->check) && m.complete();
      std::fprintf(stderr, "--check: %s\n", ok ? "matches" : "does not match");
      if (!ok) throw Failure{"the text does not match the grammar"};
    }
  });
}

}  // namespace osprey::cli
