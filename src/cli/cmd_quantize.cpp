// osprey quantize IN.gguf|DIR OUT.gguf TYPE: store a model's matrices in fewer bits.
#include <cstdio>
#include <filesystem>
#include <map>

#include "cli/commands.h"
#include "cli/progress.h"
#include "convert/hf_to_gguf.h"
#include "convert/quantize_gguf.h"
#include "core/thread_pool.h"
#include "formats/gguf.h"

namespace osprey::cli {

namespace {

struct QuantizeCliOptions {
  std::string input, output, type;
  std::string output_type, embedding_type, imatrix;
  int threads = 0;
  bool allow_requantize = false, pure = false, dry_run = false, quiet = false;
};

std::optional<DType> parse_type_option(const std::string& flag, const std::string& value) {
  if (value.empty()) return std::nullopt;
  const auto t = dtype_from_name(value);
  if (!t) throw Failure{flag + ": unknown type '" + value + "'"};
  return t;
}

bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  return std::filesystem::exists(b, ec) && std::filesystem::equivalent(a, b, ec);
}

void quantize(const QuantizeCliOptions& o) {
  auto recipe = parse_quant_recipe(o.type);
  if (!recipe) throw Failure{recipe.status().message()};
  QuantizeOptions options{*recipe, parse_type_option("--output-tensor-type", o.output_type),
                          parse_type_option("--token-embedding-type", o.embedding_type), o.allow_requantize,
                          o.threads > 0 ? o.threads : default_thread_count()};
  options.recipe.pure = o.pure;
  std::optional<ImportanceMatrix> imatrix;
  if (!o.imatrix.empty()) {
    auto m = ImportanceMatrix::load(o.imatrix);
    if (!m) throw Failure{"--imatrix: " + m.status().message()};
    imatrix = std::move(*m);
    options.imatrix = &*imatrix;
  }
  if (!o.dry_run && same_file(o.input, o.output))
    throw Failure{o.output + " is the input file; write the quantized model to a new file"};
  // A Hugging Face folder is converted first, keeping its stored types.
  ConvertOptions co;
  co.n_threads = options.n_threads;
  auto in = open_model_file(o.input, co, [](const ConvertProgress&) {});
  if (!in) throw Failure{in.status().message()};
  auto plan = plan_quantize(*in, options);
  if (!plan) throw Failure{plan.status().message()};

  // What goes where, by type: the first thing a user wants to check of a mix.
  std::map<std::string, std::pair<int, uint64_t>> by_type;
  for (const TensorPlan& t : plan->tensors) {
    auto& [count, bytes] = by_type[std::string(dtype_name(t.to)) + (t.copy() ? " (kept)" : "")];
    ++count;
    bytes += t.out_bytes;
  }
  if (o.dry_run) {
    for (const TensorPlan& t : plan->tensors)
      std::printf("%-40s %-6s -> %-6s %10s\n", t.source->name.c_str(), dtype_name(t.source->type), dtype_name(t.to),
                  human_bytes(static_cast<double>(t.out_bytes)).c_str());
  }
  double seconds = 0;
  if (!o.dry_run) {
    ProgressBar bar("quantize", !o.quiet);
    const Status s = write_quantized(*in, *plan, options, o.output, [&](const QuantizeProgress& p) {
      bar.update(static_cast<int64_t>(p.bytes_done), static_cast<int64_t>(p.bytes_total),
                 std::to_string(p.tensors_done) + "/" + std::to_string(p.tensors_total) + " tensors, " +
                     human_bytes(static_cast<double>(p.bytes_done)) + " of " +
                     human_bytes(static_cast<double>(p.bytes_total)));
      seconds = p.seconds;
    });
    bar.finish();
    if (!s.ok()) throw Failure{s.message()};
  }
  int64_t n_weights = 0;
  for (const TensorPlan& t : plan->tensors) n_weights += t.source->n_elements;
  std::printf("%s%s: %s -> %s (%.2f bits per weight), %s", o.dry_run ? "would write " : "", o.output.c_str(),
              human_bytes(static_cast<double>(plan->in_bytes)).c_str(),
              human_bytes(static_cast<double>(plan->out_bytes)).c_str(),
              8.0 * static_cast<double>(plan->out_bytes) / static_cast<double>(std::max<int64_t>(1, n_weights)),
              options.recipe.name.c_str());
  if (o.dry_run) std::printf("\n");
  else std::printf(" in %.1f s with %d threads\n", seconds, options.n_threads);
  for (const auto& [type, count_bytes] : by_type)
    std::printf("  %-12s %4d tensors  %10s\n", type.c_str(), count_bytes.first,
                human_bytes(static_cast<double>(count_bytes.second)).c_str());
  if (imatrix) {
    std::printf("  importance matrix %s (%zu matrices, %lld chunks): weights the error of %lld tensors",
                o.imatrix.c_str(), imatrix->entries.size(), static_cast<long long>(imatrix->chunk_count),
                static_cast<long long>(plan->weighted));
    if (plan->imatrix_unused > 0)
      std::printf("; %lld go to types whose encoder does not use it (only the k-quants do)",
                  static_cast<long long>(plan->imatrix_unused));
    std::printf("\n");
  }
}

}  // namespace

void register_quantize(CLI::App& app) {
  auto o = std::make_shared<QuantizeCliOptions>();
  CLI::App* cmd = app.add_subcommand(
      "quantize",
      "Write a copy of a GGUF model with its matrices quantized.\n"
      "A mix (Q4_K_M and the like) keeps the output head at Q6_K and gives attention V and the FFN down "
      "projection more bits in the layers that matter most; a single type (Q4_0, Q8_0, Q6_K) stores every matrix "
      "in it except the output head (Q6_K). Norms, biases and MoE routers are copied unchanged.");
  cmd->add_option("input", o->input, "GGUF file (F32, F16 or BF16 weights), or a Hugging Face model folder")->required();
  cmd->add_option("output", o->output, "GGUF file to write (written whole or not at all)")->required();
  cmd->add_option("type", o->type, "What to store: " + quant_recipe_names())->required();
  cmd->add_option("-t,--threads", o->threads, "Threads (default: one per core)")->check(CLI::Range(0, 1024));
  cmd->add_flag("--allow-requantize", o->allow_requantize,
                "Quantize tensors that are already quantized (their error adds to the new one)");
  cmd->add_flag("--pure", o->pure, "Every matrix in the named type, the output head included: no mix");
  cmd->add_option("--output-tensor-type", o->output_type, "Type for the output head (output.weight)");
  cmd->add_option("--token-embedding-type", o->embedding_type, "Type for the token embeddings (token_embd.weight)");
  cmd->add_option("--imatrix", o->imatrix,
                  "Importance matrix (from osprey imatrix or llama-imatrix, GGUF or .dat): the k-quants then weigh "
                  "each column's error by how large its inputs were on the sample text")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--dry-run", o->dry_run, "List each tensor's type and the output size, and write nothing");
  cmd->add_flag("-q,--quiet", o->quiet, "No progress bar");
  cmd->callback([o] { quantize(*o); });
}

}  // namespace osprey::cli
