// Keys and values of every past position, per layer, stored as fp16.
//   k[layer]: [n_ctx, n_head_kv * head_dim], row p holds position p
//   v[layer]: same
// One contiguous cache per sequence; the paged, shared cache for serving
// builds on the same row layout.
#pragma once

#include <cstdint>
#include <vector>

namespace osprey {

class KvCache {
 public:
  KvCache() = default;
  KvCache(int64_t n_layer, int64_t n_ctx, int64_t row_len);

  int64_t n_ctx() const { return n_ctx_; }
  int64_t row_len() const { return row_len_; }
  uint16_t* k(int64_t layer, int64_t pos) { return k_[layer].data() + pos * row_len_; }
  uint16_t* v(int64_t layer, int64_t pos) { return v_[layer].data() + pos * row_len_; }

 private:
  int64_t n_ctx_ = 0;
  int64_t row_len_ = 0;
  std::vector<std::vector<uint16_t>> k_, v_;
};

}  // namespace osprey
