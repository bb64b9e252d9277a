#include "kernels/repack.h"

#include <algorithm>
#include <cstring>

namespace osprey::kernels {

void repack_scales_first(const uint8_t* src, uint8_t* dst, int64_t n_blocks, int64_t payload_bytes) {
  const int64_t block = 2 + payload_bytes;
  uint8_t* payload = dst + 2 * n_blocks;
  for (int64_t i = 0; i < n_blocks; ++i) {
    std::memcpy(dst + 2 * i, src + i * block, 2);
    std::memcpy(payload + i * payload_bytes, src + i * block + 2, payload_bytes);
  }
}

void unpack_scales_first(const uint8_t* src, uint8_t* dst, int64_t n_blocks, int64_t payload_bytes) {
  const int64_t block = 2 + payload_bytes;
  const uint8_t* payload = src + 2 * n_blocks;
  for (int64_t i = 0; i < n_blocks; ++i) {
    std::memcpy(dst + i * block, src + 2 * i, 2);
    std::memcpy(dst + i * block + 2, payload + i * payload_bytes, payload_bytes);
  }
}

void pair_halves_q8(uint8_t* payloads, int64_t n_blocks) {
  uint8_t pair[64];
  for (int64_t b = 0; b + 2 <= n_blocks; b += 2) {
    uint8_t* p = payloads + b * 32;
    std::memcpy(pair, p, 16);
    std::memcpy(pair + 16, p + 32, 16);
    std::memcpy(pair + 32, p + 16, 16);
    std::memcpy(pair + 48, p + 48, 16);
    std::memcpy(p, pair, 64);
  }
}

namespace {
void copy_flipped(uint8_t* dst, const uint8_t* src, uint8_t flip) {
  for (int i = 0; i < 4; ++i) dst[i] = src[i] ^ flip;
}
}  // namespace

int64_t RowGroupLayout::scale_offset(int64_t b, int64_t r) const {
  const int64_t k = chunk_blocks(rows), first = b - b % k;
  return first * block_bytes() + 2 * (rows * (b % k) + r);
}

int64_t RowGroupLayout::payload_offset(int64_t b, int64_t r, int64_t v) const {
  const int64_t k = chunk_blocks(rows), first = b - b % k, in_chunk = std::min(k, n_blocks - first);
  return first * block_bytes() + 2 * rows * in_chunk + (b % k) * rows * payload_bytes + 4 * rows * v + 4 * r;
}

void repack_rows(const uint8_t* src, uint8_t* dst, int64_t n_blocks, int64_t payload_bytes, int rows, uint8_t flip) {
  const RowGroupLayout g{n_blocks, payload_bytes, rows};
  const int64_t block = 2 + payload_bytes, row_bytes = n_blocks * block;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t b = 0; b < n_blocks; ++b) {
      const uint8_t* blk = src + r * row_bytes + b * block;
      std::memcpy(dst + g.scale_offset(b, r), blk, 2);
      for (int64_t v = 0; v < payload_bytes / 4; ++v) copy_flipped(dst + g.payload_offset(b, r, v), blk + 2 + 4 * v, flip);
    }
}

void unpack_rows(const uint8_t* group, int64_t row, uint8_t* dst, int64_t n_blocks, int64_t payload_bytes, int rows,
                 uint8_t flip) {
  const RowGroupLayout g{n_blocks, payload_bytes, rows};
  const int64_t block = 2 + payload_bytes;
  for (int64_t b = 0; b < n_blocks; ++b) {
    uint8_t* blk = dst + b * block;
    std::memcpy(blk, group + g.scale_offset(b, row), 2);
    for (int64_t v = 0; v < payload_bytes / 4; ++v) copy_flipped(blk + 2 + 4 * v, group + g.payload_offset(b, row, v), flip);
  }
}

void repack_rows16(const uint8_t* src, uint8_t* dst, int64_t n, int rows) {
  const auto* in = reinterpret_cast<const uint16_t*>(src);
  auto* out = reinterpret_cast<uint16_t*>(dst);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < n; ++k) out[k * rows + r] = in[r * n + k];
}

void unpack_rows16(const uint8_t* group, int64_t row, uint8_t* dst, int64_t n, int rows) {
  const auto* in = reinterpret_cast<const uint16_t*>(group);
  auto* out = reinterpret_cast<uint16_t*>(dst);
  for (int64_t k = 0; k < n; ++k) out[k] = in[k * rows + row];
}

}  // namespace osprey::kernels
