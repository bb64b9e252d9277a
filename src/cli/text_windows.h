// What `osprey perplexity` and `osprey imatrix` share: a model loaded for
// windows of -c tokens over a text file, the text tokenized as the model's
// vocabulary says, and the figures of the windows that text holds.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include "cli/kv_cache_flags.h"
#include "cli/load_model.h"
#include "engine/perplexity.h"
#include "models/model.h"

namespace osprey::cli {

struct TextWindowOptions {
  std::string model, text_file;
  int64_t ctx = 512, batch = 512, chunks = 0;
  int threads = 0;
  KvCacheFlags kv_cache;
  FolderFlags folder;
  std::vector<std::string> lora;  // --lora
};

struct TextWindows {
  std::unique_ptr<Model> model;
  std::vector<int32_t> tokens;
  PerplexityOptions windows;  // n_ctx, max_chunks and the BOS to start each with
  int64_t n_windows = 0;      // whole windows the text holds (at most --chunks)
};

// -m, -f (described by `text_help`), -c, -b, --chunks, -t and the cache types.
void add_text_window_options(CLI::App& cmd, TextWindowOptions& o, const std::string& text_help);

// Throws Failure naming the file on an unreadable model or text.
TextWindows load_text_windows(const TextWindowOptions& o);

}  // namespace osprey::cli
