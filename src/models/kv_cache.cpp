#include "models/kv_cache.h"

#include "kernels/kv_row.h"

namespace osprey {

Expected<DType> parse_kv_cache_type(const std::string& name, const std::string& option) {
  const auto t = dtype_from_name(name);
  if (t && kernels::is_kv_type(*t)) return *t;
  return InvalidArgument(option + ": '" + name + "' is not a KV cache type (one of " + kernels::kv_type_names() + ")");
}

int64_t KvCache::block_bytes(int64_t n_layer, int64_t row_len, DType k_type, DType v_type) {
  return n_layer * kBlockSize * (kernels::kv_row_bytes(k_type, row_len) + kernels::kv_row_bytes(v_type, row_len));
}

KvCache::KvCache(int64_t n_layer, int64_t n_blocks, int64_t row_len, DType k_type, DType v_type)
    : n_blocks_(n_blocks),
      row_len_(row_len),
      k_type_(k_type),
      v_type_(v_type),
      k_row_bytes_(kernels::kv_row_bytes(k_type, row_len)),
      v_row_bytes_(kernels::kv_row_bytes(v_type, row_len)) {
  // Left uninitialised: a row is written before any query reads it, and a
  // large pool is then paged in only as far as it is used, rather than
  // zeroed whole at load (gigabytes for a server's --kv-size). A plain
  // new[] (make_unique_for_overwrite's effect; emscripten's libc++ lacks it).
  for (int64_t l = 0; l < n_layer; ++l) {
    k_.emplace_back(new uint8_t[static_cast<size_t>(n_blocks * kBlockSize * k_row_bytes_)]);
    v_.emplace_back(new uint8_t[static_cast<size_t>(n_blocks * kBlockSize * v_row_bytes_)]);
  }
  refs_.assign(n_blocks, 0);
  lru_pos_.resize(n_blocks);
  in_lru_.assign(n_blocks, 0);
  block_hash_.assign(n_blocks, 0);
  is_published_.assign(n_blocks, 0);
  free_.reserve(n_blocks);
  // Hand out low block numbers first (pop from the back).
  for (int64_t b = n_blocks - 1; b >= 0; --b) free_.push_back(static_cast<int32_t>(b));
}

int32_t KvCache::allocate() {
  int32_t b = -1;
  if (!free_.empty()) {
    b = free_.back();
    free_.pop_back();
  } else if (!lru_.empty()) {
    b = lru_.front();
    lru_.pop_front();
    in_lru_[b] = 0;
    unpublish(b);
  } else {
    return -1;
  }
  refs_[b] = 1;
  return b;
}

void KvCache::retain(int32_t block) {
  if (refs_[block]++ == 0 && in_lru_[block]) {
    lru_.erase(lru_pos_[block]);
    in_lru_[block] = 0;
  }
}

void KvCache::release(int32_t block) {
  OSPREY_CHECK(refs_[block] > 0);
  if (--refs_[block] > 0) return;
  if (is_published_[block]) {
    lru_pos_[block] = lru_.insert(lru_.end(), block);
    in_lru_[block] = 1;
  } else {
    free_.push_back(block);
  }
}

int32_t KvCache::find_published(uint64_t hash) {
  auto it = published_.find(hash);
  if (it == published_.end()) return -1;
  retain(it->second);
  return it->second;
}

void KvCache::publish(int32_t block, uint64_t hash) {
  if (is_published_[block] || published_.count(hash) != 0) return;  // an equal block is already published
  published_.emplace(hash, block);
  block_hash_[block] = hash;
  is_published_[block] = 1;
}

void KvCache::unpublish(int32_t block) {
  if (!is_published_[block]) return;
  published_.erase(block_hash_[block]);
  is_published_[block] = 0;
}

uint64_t KvCache::chain_hash(uint64_t previous, const int32_t* tokens, int64_t n) {
  // FNV-1a over the previous hash and the token ids, then a final mix; a
  // 64-bit collision between two prompts is not a practical concern.
  uint64_t h = 1469598103934665603ull ^ previous;
  for (int64_t i = 0; i < n; ++i) {
    uint32_t t = static_cast<uint32_t>(tokens[i]);
    for (int byte = 0; byte < 4; ++byte) {
      h ^= (t >> (8 * byte)) & 0xff;
      h *= 1099511628211ull;
    }
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

}  // namespace osprey
