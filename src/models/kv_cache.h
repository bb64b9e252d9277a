// Keys and values of past positions, per layer, in one pool of fixed-size
// blocks that every sequence draws from. Rows are fp16 unless the caller
// chose another type for keys or values (kernels/kv_row.h): q8_0 halves
// the pool's bytes per position, q4_0 nearly quarters them.
//   storage row r of layer l: k(l, r), v(l, r), [n_head_kv * head_dim] values each
//   a block holds kBlockSize consecutive positions of one sequence
//
// Blocks are reference-counted. A full block can be published under the
// hash of every token up to its end, so a later sequence that starts with the
// same tokens (a shared system prompt) attaches it instead of recomputing it.
// Published blocks nobody uses stay cached until the pool needs the room,
// least recently used first.
#pragma once

#include <cstdint>
#include <memory>
#include <list>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/dtype.h"
#include "osprey/status.h"

namespace osprey {

// The cache type `name` names (kernels::kv_type_names()), or an error
// naming `option` and listing them.
Expected<DType> parse_kv_cache_type(const std::string& name, const std::string& option);

class KvCache {
 public:
  static constexpr int64_t kBlockSize = 16;

  KvCache() = default;
  // Rows of row_len values; the types must fit it (kernels::kv_type_fits).
  KvCache(int64_t n_layer, int64_t n_blocks, int64_t row_len, DType k_type = DType::kF16,
          DType v_type = DType::kF16);

  // Bytes one block of kBlockSize positions takes over n_layer layers.
  static int64_t block_bytes(int64_t n_layer, int64_t row_len, DType k_type, DType v_type);

  int64_t row_len() const { return row_len_; }
  int64_t n_layer() const { return static_cast<int64_t>(k_.size()); }
  int64_t n_blocks() const { return n_blocks_; }
  DType k_type() const { return k_type_; }
  DType v_type() const { return v_type_; }
  int64_t k_row_bytes() const { return k_row_bytes_; }
  int64_t v_row_bytes() const { return v_row_bytes_; }
  int64_t bytes() const { return n_layer() * n_blocks_ * kBlockSize * (k_row_bytes_ + v_row_bytes_); }
  uint8_t* k(int64_t layer, int64_t row) { return k_[layer].get() + row * k_row_bytes_; }
  uint8_t* v(int64_t layer, int64_t row) { return v_[layer].get() + row * v_row_bytes_; }

  // Blocks a new allocation can get: free ones plus unused cached ones.
  int64_t available_blocks() const { return static_cast<int64_t>(free_.size() + lru_.size()); }
  // Blocks referenced by at least one sequence.
  int64_t used_blocks() const { return n_blocks_ - available_blocks(); }
  int64_t cached_blocks() const { return static_cast<int64_t>(lru_.size()); }

  // A block with one reference, or -1 when the pool is exhausted.
  int32_t allocate();
  void retain(int32_t block);
  // Only one sequence reads it and the prefix cache doesn't: safe to rewrite.
  bool is_private(int32_t block) const { return refs_[block] == 1 && !is_published_[block]; }
  void release(int32_t block);

  // Prefix cache. `hash` covers every token from position 0 to the block's end.
  int32_t find_published(uint64_t hash);  // retains and returns the block, or -1
  void publish(int32_t block, uint64_t hash);

  // Chains a block's tokens onto the hash of everything before it.
  static uint64_t chain_hash(uint64_t previous, const int32_t* tokens, int64_t n);

 private:
  void unpublish(int32_t block);

  int64_t n_blocks_ = 0;
  int64_t row_len_ = 0;
  DType k_type_ = DType::kF16, v_type_ = DType::kF16;
  int64_t k_row_bytes_ = 0, v_row_bytes_ = 0;
  std::vector<std::unique_ptr<uint8_t[]>> k_, v_;  // [n_layer] of n_blocks * kBlockSize rows
  std::vector<int32_t> refs_;
  std::vector<int32_t> free_;
  // Published blocks with no references, least recently used at the front.
  std::list<int32_t> lru_;
  std::vector<std::list<int32_t>::iterator> lru_pos_;
  std::vector<uint8_t> in_lru_;
  std::unordered_map<uint64_t, int32_t> published_;
  std::vector<uint64_t> block_hash_;
  std::vector<uint8_t> is_published_;
};

}  // namespace osprey
