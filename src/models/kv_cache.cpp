#include "models/kv_cache.h"

namespace osprey {

KvCache::KvCache(int64_t n_layer, int64_t n_ctx, int64_t row_len) : n_ctx_(n_ctx), row_len_(row_len) {
  k_.assign(n_layer, std::vector<uint16_t>(n_ctx * row_len));
  v_.assign(n_layer, std::vector<uint16_t>(n_ctx * row_len));
}

}  // namespace osprey
