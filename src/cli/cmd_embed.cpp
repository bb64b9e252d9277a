// osprey embed -m FILE "text" ...: sentence embeddings from the command line,
// pooled as the model says and normalised, the same vectors the server's
// /v1/embeddings gives.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <optional>

#include "cli/commands.h"
#include "cli/load_model.h"
#include "cli/lora_flags.h"
#include "core/log.h"
#include "engine/embedder.h"

namespace osprey::cli {

namespace {

struct EmbedOptions {
  std::string model, file, format = "json";
  std::optional<std::string> query;  // --rerank: score each text against it
  std::vector<std::string> texts;
  int64_t ctx = 0;
  int parallel = 8;
  int threads = 0;
  bool raw = false;
  FolderFlags folder;
  std::vector<std::string> lora;
};

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Failure{path + ": cannot open"};
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

void run_embed(const EmbedOptions& o) {
  std::vector<std::string> texts = o.texts;
  if (!o.file.empty())
    for (std::string& line : read_lines(o.file)) texts.push_back(std::move(line));
  if (texts.empty()) throw Failure{"nothing to embed: give texts, or -f FILE with one per line"};
  ModelOptions mo;
  mo.n_threads = o.threads;
  mo.n_ctx = o.ctx;
  mo.n_seq_max = std::min<int>(o.parallel, static_cast<int>(texts.size()));
  mo.n_batch = 512;
  mo.lora = parse_lora_flags(o.lora);
  // A pool of at most 1 GiB: inputs are embedded fewer at a time when theirs do not fit.
  mo.kv_bytes_budget = int64_t{1} << 30;
  auto model = load_model(o.model, mo, o.folder);
  auto tok = Tokenizer::from_gguf(model->file());
  if (!tok.ok()) throw Failure{tok.status().message()};
  std::vector<std::vector<int32_t>> inputs;
  int64_t n_tokens = 0;
  const bool ranking = model->config().pooling == Pooling::kRank;
  if (ranking && !o.query) throw Failure{o.model + " is a reranker: give the query with --rerank QUERY"};
  if (!ranking && o.query)
    throw Failure{o.model + " is not a reranker (its pooling is " + pooling_name(model->config().pooling) +
                  "); --rerank needs a cross-encoder whose file says pooling_type rank"};
  for (const std::string& t : texts) {
    inputs.push_back(ranking ? rerank_tokens(**tok, *o.query, t) : embedding_tokens(**tok, t));
    n_tokens += static_cast<int64_t>(inputs.back().size());
  }
  const auto start = std::chrono::steady_clock::now();
  auto vectors = embed_inputs(*model, inputs, !o.raw && !ranking);
  if (!vectors.ok()) throw Failure{vectors.status().message()};
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (ranking) {
    // One relevance score per text, in the order given (the head's raw logit).
    for (size_t k = 0; k < vectors->size(); ++k)
      std::printf(o.format == "text" ? "%.7g\n" : k == 0 ? "[%.7g" : ", %.7g", (*vectors)[k][0]);
    if (o.format != "text") std::printf("]\n");
  } else if (o.format == "text") {
    for (const auto& v : *vectors) {
      for (size_t i = 0; i < v.size(); ++i) std::printf(i == 0 ? "%.7g" : " %.7g", v[i]);
      std::printf("\n");
    }
  } else {
    std::printf("[");
    for (size_t k = 0; k < vectors->size(); ++k) {
      std::printf(k == 0 ? "[" : ",\n [");
      const auto& v = (*vectors)[k];
      for (size_t i = 0; i < v.size(); ++i) std::printf(i == 0 ? "%.7g" : ",%.7g", v[i]);
      std::printf("]");
    }
    std::printf("]\n");
  }
  std::fprintf(stderr, "embed: %zu inputs, %lld tokens, %lld dimensions (%s pooling%s) in %.3f s, %.1f tokens/s\n",
               inputs.size(), static_cast<long long>(n_tokens), static_cast<long long>(model->config().n_embd),
               pooling_name(model->config().pooling), o.raw || ranking ? "" : ", normalised", seconds,
               static_cast<double>(n_tokens) / seconds);
}

}  // namespace

void register_embed(CLI::App& app) {
  auto o = std::make_shared<EmbedOptions>();
  CLI::App* cmd = app.add_subcommand(
      "embed",
      "Embed texts: one vector per text, pooled as the model says (an encoder's mean or first token, a decoder's "
      "last token) and normalised to unit length. Prints a JSON array of vectors (or one line of numbers each with "
      "--format text); timing goes to stderr.");
  cmd->add_option("-m,--model", o->model, "GGUF file or Hugging Face folder (bert, or any decoder osprey runs)")->required();
  cmd->add_option("texts", o->texts, "Texts to embed, each its own input");
  cmd->add_option("--rerank", o->query,
                  "With a reranker (pooling rank): score each text as a document for this query, one relevance "
                  "score each instead of a vector");
  cmd->add_option("-f,--file", o->file, "Also embed each non-empty line of this file")->check(CLI::ExistingFile);
  cmd->add_option("--format", o->format, "json (default) or text")->check(CLI::IsMember({"json", "text"}));
  cmd->add_flag("--no-normalize", o->raw, "Print the pooled vectors as they are, not scaled to unit length");
  cmd->add_option("-c,--ctx-size", o->ctx, "Longest input in tokens (default: the model's context, at most 4096)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
  cmd->add_option("-n,--parallel", o->parallel, "Inputs embedded together in one batch (default 8)")
      ->check(CLI::Range(1, 256));
  cmd->add_option("-t,--threads", o->threads, "Threads (default: one per core)")->check(CLI::Range(0, 1024));
  add_folder_options(*cmd, o->folder);
  add_lora_options(*cmd, o->lora);
  cmd->callback([o] { run_embed(*o); });
}

}  // namespace osprey::cli
