// --cache-type-k / --cache-type-v, shared by every command that loads a
// model to generate or score text (run, chat, bench, serve, perplexity).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "models/model.h"

namespace osprey::cli {

struct KvCacheFlags {
  std::string k = "f16", v = "f16";
};

void add_kv_cache_options(CLI::App& cmd, KvCacheFlags& flags);
// Sets the cache types of `mo`; throws Failure naming a bad value.
void apply_kv_cache_flags(const KvCacheFlags& flags, ModelOptions& mo);
// "q8_0 keys, q8_0 values", for banners and summaries.
std::string describe_kv_cache(const ModelOptions& mo);

}  // namespace osprey::cli
