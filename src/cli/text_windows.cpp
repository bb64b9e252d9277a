#include "cli/text_windows.h"

#include <algorithm>

#include "cli/commands.h"
#include "cli/load_model.h"
#include "cli/lora_flags.h"
#include "tokenizer/tokenizer.h"

namespace osprey::cli {

void add_text_window_options(CLI::App& cmd, TextWindowOptions& o, const std::string& text_help) {
  cmd.add_option("-m,--model", o.model, "GGUF model file, or a Hugging Face model folder")->required();
  cmd.add_option("-f,--file", o.text_file, text_help)->required();
  cmd.add_option("-c,--ctx-size", o.ctx, "Window length in tokens")->check(CLI::Range(int64_t{4}, int64_t{1} << 20));
  cmd.add_option("-b,--batch-size", o.batch, "Tokens per forward pass")->check(CLI::Range(int64_t{1}, int64_t{1} << 16));
  cmd.add_option("--chunks", o.chunks, "Use at most this many windows (0: all)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30));
  cmd.add_option("-t,--threads", o.threads, "Threads (default: one per core)")->check(CLI::Range(0, 1024));
  add_kv_cache_options(cmd, o.kv_cache);
  add_folder_options(cmd, o.folder);
  add_lora_options(cmd, o.lora);
}

TextWindows load_text_windows(const TextWindowOptions& o) {
  const std::string text = read_text(o.text_file);
  ModelOptions mo;
  mo.n_threads = o.threads;
  mo.n_ctx = o.ctx;
  mo.n_batch = std::min(o.batch, o.ctx);
  apply_kv_cache_flags(o.kv_cache, mo);
  mo.lora = parse_lora_flags(o.lora);
  auto model = load_model(o.model, mo, o.folder);
  auto tok = Tokenizer::from_gguf(model->file());
  if (!tok.ok()) throw Failure{tok.status().message()};
  const Vocab& vocab = (*tok)->vocab();
  TextWindows w;
  w.tokens = (*tok)->encode(text, /*add_special=*/true, /*parse_special=*/false);
  w.model = std::move(model);
  w.windows.n_ctx = o.ctx;
  w.windows.max_chunks = o.chunks;
  w.windows.bos = vocab.add_bos ? vocab.bos : -1;
  w.n_windows = static_cast<int64_t>(w.tokens.size()) / o.ctx;
  if (o.chunks > 0) w.n_windows = std::min(w.n_windows, o.chunks);
  return w;
}

}  // namespace osprey::cli
