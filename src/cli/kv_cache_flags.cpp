#include "cli/kv_cache_flags.h"

#include "cli/commands.h"
#include "kernels/kv_row.h"

namespace osprey::cli {

void add_kv_cache_options(CLI::App& cmd, KvCacheFlags& flags) {
  const std::string types = kernels::kv_type_names() + " (f16 by default)";
  cmd.add_option("--cache-type-k", flags.k,
                 "How the KV cache stores keys: " + types + ". q8_0 halves the cache for a small error");
  cmd.add_option("--cache-type-v", flags.v, "How the KV cache stores values: " + types);
}

void apply_kv_cache_flags(const KvCacheFlags& flags, ModelOptions& mo) {
  auto k = parse_kv_cache_type(flags.k, "--cache-type-k");
  if (!k.ok()) throw Failure{k.status().message()};
  auto v = parse_kv_cache_type(flags.v, "--cache-type-v");
  if (!v.ok()) throw Failure{v.status().message()};
  mo.cache_type_k = *k;
  mo.cache_type_v = *v;
}

std::string describe_kv_cache(const ModelOptions& mo) {
  return std::string(dtype_name(mo.cache_type_k)) + " keys, " + dtype_name(mo.cache_type_v) + " values";
}

}  // namespace osprey::cli
