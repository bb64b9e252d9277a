// The interleaved k-quant layouts of kernels/repack.h: Q4_K, Q5_K and Q6_K rows in
// groups, for kernels that keep one row per 32-bit SIMD lane.
#include <cstring>
#include <initializer_list>
#include <type_traits>

#include "kernels/repack.h"
#include "quant/blocks.h"

namespace osprey::kernels {

using namespace osprey::quant;

namespace {

// Q4_K and Q5_K: where element e (0..31) of sub-block j sits in a file
// block's qs: byte 32 * (j / 2) + e, low nibble for even j, high for odd;
// Q5_K's fifth bit is bit j of qh[e].
template <class Block>
uint8_t scale_min_nibble(const Block& blk, int j, int e) {
  const uint8_t byte = blk.qs[32 * (j / 2) + e];
  return (j & 1) ? byte >> 4 : byte & 0x0F;
}

// The group layout of both: Q5_K adds a vector of fifth bits after each
// sub-block's four nibble vectors.
struct ScaleMinGroup {
  int64_t rows;
  bool five;  // Q5_K
  int64_t d() const { return 0; }
  int64_t dmin() const { return 2 * rows; }
  int64_t scale_word(int wd) const { return 4 * rows + 4 * rows * wd; }
  int64_t levels() const { return 16 * rows; }
  int64_t sub_block_bytes() const { return (five ? 20 : 16) * rows; }
  // Byte i of row r in vector k of sub-block j: elements 4k+i (low) and 16+4k+i (high).
  int64_t level_byte(int j, int k, int64_t r, int i) const {
    return levels() + j * sub_block_bytes() + 4 * rows * k + 4 * r + i;
  }
  // Q5_K's fifth bits of row r, byte i in sub-block j: bit k is element 4k+i's, bit 4+k element 16+4k+i's.
  int64_t high_byte(int j, int64_t r, int i) const { return levels() + j * sub_block_bytes() + 16 * rows + 4 * r + i; }
};

template <class Block>
void repack_scale_min_rows(const uint8_t* src, uint8_t* dst, int64_t n, int rows) {
  constexpr bool kFive = std::is_same_v<Block, BlockQ5_K>;
  const ScaleMinGroup lay{rows, kFive};
  const int64_t nsb = n / kQK_K, row_bytes = nsb * static_cast<int64_t>(sizeof(Block));
  for (int64_t r = 0; r < rows; ++r) {
    const auto* blocks = reinterpret_cast<const Block*>(src + r * row_bytes);
    for (int64_t b = 0; b < nsb; ++b) {
      const Block& blk = blocks[b];
      uint8_t* sb = dst + b * rows * static_cast<int64_t>(sizeof(Block));
      std::memcpy(sb + lay.d() + 2 * r, &blk.d, 2);
      std::memcpy(sb + lay.dmin() + 2 * r, &blk.dmin, 2);
      for (int wd = 0; wd < 3; ++wd) std::memcpy(sb + lay.scale_word(wd) + 4 * r, blk.scales + 4 * wd, 4);
      for (int j = 0; j < 8; ++j)
        for (int i = 0; i < 4; ++i) {
          uint8_t high = 0;
          for (int k = 0; k < 4; ++k) {
            const int lo = 4 * k + i, hi = 16 + 4 * k + i;
            sb[lay.level_byte(j, k, r, i)] =
                static_cast<uint8_t>(scale_min_nibble(blk, j, lo) | (scale_min_nibble(blk, j, hi) << 4));
            if constexpr (kFive)
              high |= static_cast<uint8_t>((((blk.qh[lo] >> j) & 1) << k) | (((blk.qh[hi] >> j) & 1) << (4 + k)));
          }
          if constexpr (kFive) sb[lay.high_byte(j, r, i)] = high;
        }
    }
  }
}

template <class Block>
void unpack_scale_min_rows(const uint8_t* group, int64_t row, uint8_t* dst, int64_t n, int rows) {
  constexpr bool kFive = std::is_same_v<Block, BlockQ5_K>;
  const ScaleMinGroup lay{rows, kFive};
  const int64_t nsb = n / kQK_K;
  auto* blocks = reinterpret_cast<Block*>(dst);
  for (int64_t b = 0; b < nsb; ++b) {
    Block& blk = blocks[b];
    const uint8_t* sb = group + b * rows * static_cast<int64_t>(sizeof(Block));
    std::memcpy(&blk.d, sb + lay.d() + 2 * row, 2);
    std::memcpy(&blk.dmin, sb + lay.dmin() + 2 * row, 2);
    for (int wd = 0; wd < 3; ++wd) std::memcpy(blk.scales + 4 * wd, sb + lay.scale_word(wd) + 4 * row, 4);
    std::memset(blk.qs, 0, sizeof(blk.qs));
    if constexpr (kFive) std::memset(blk.qh, 0, sizeof(blk.qh));
    for (int j = 0; j < 8; ++j)
      for (int k = 0; k < 4; ++k)
        for (int i = 0; i < 4; ++i) {
          const uint8_t v = sb[lay.level_byte(j, k, row, i)];
          for (int e : {4 * k + i, 16 + 4 * k + i}) {
            const uint8_t level = e < 16 ? v & 0x0F : v >> 4;
            blk.qs[32 * (j / 2) + e] |= static_cast<uint8_t>((j & 1) ? level << 4 : level);
            if constexpr (kFive) {
              const int bit = e < 16 ? k : 4 + k;
              blk.qh[e] |= static_cast<uint8_t>(((sb[lay.high_byte(j, row, i)] >> bit) & 1) << j);
            }
          }
        }
  }
}

// Q6_K: the 6-bit level of element e (0..255) of a file block.
int q6_k_file_level(const BlockQ6_K& blk, int e) {
  const int h = e / 128, l = e % 32, quarter = (e % 128) / 32;
  const uint8_t lo = blk.ql[64 * h + l + 32 * (quarter & 1)];
  const int low = quarter < 2 ? lo & 0x0F : lo >> 4;
  return low | (((blk.qh[32 * h + l] >> (2 * quarter)) & 3) << 4);
}

struct Q6_KGroup {
  int64_t rows;
  int64_t scale(int s, int64_t r) const { return 2 * rows + 4 * rows * (s / 4) + 4 * r + s % 4; }
  int64_t sub_block(int s) const { return 2 * rows + 16 * rows + s * 12 * rows; }
};

}  // namespace

void repack_q4_k_rows(const uint8_t* src, uint8_t* dst, int64_t n, int rows) {
  repack_scale_min_rows<BlockQ4_K>(src, dst, n, rows);
}
void unpack_q4_k_rows(const uint8_t* group, int64_t row, uint8_t* dst, int64_t n, int rows) {
  unpack_scale_min_rows<BlockQ4_K>(group, row, dst, n, rows);
}
void repack_q5_k_rows(const uint8_t* src, uint8_t* dst, int64_t n, int rows) {
  repack_scale_min_rows<BlockQ5_K>(src, dst, n, rows);
}
void unpack_q5_k_rows(const uint8_t* group, int64_t row, uint8_t* dst, int64_t n, int rows) {
  unpack_scale_min_rows<BlockQ5_K>(group, row, dst, n, rows);
}

void repack_q6_k_rows(const uint8_t* src, uint8_t* dst, int64_t n, int rows) {
  const Q6_KGroup lay{rows};
  const int64_t nsb = n / kQK_K, block = rows * static_cast<int64_t>(sizeof(BlockQ6_K));
  const int64_t row_bytes = nsb * static_cast<int64_t>(sizeof(BlockQ6_K));
  std::memset(dst, 0, nsb * block);
  for (int64_t r = 0; r < rows; ++r) {
    const auto* blocks = reinterpret_cast<const BlockQ6_K*>(src + r * row_bytes);
    for (int64_t b = 0; b < nsb; ++b) {
      const BlockQ6_K& blk = blocks[b];
      uint8_t* sb = dst + b * block;
      std::memcpy(sb + 2 * r, &blk.d, 2);
      for (int s = 0; s < 16; ++s) {
        sb[lay.scale(s, r)] = static_cast<uint8_t>(blk.scales[s]);
        uint8_t* lv = sb + lay.sub_block(s);
        for (int e = 0; e < 16; ++e) {
          const int q = q6_k_file_level(blk, 16 * s + e), grp = e / 4, i = e % 4;
          // Groups 0, 1 in the low nibbles of vectors 0, 1; groups 2, 3 in their high nibbles.
          lv[4 * rows * (grp % 2) + 4 * r + i] |= static_cast<uint8_t>((q & 0x0F) << (grp < 2 ? 0 : 4));
          lv[8 * rows + 4 * r + i] |= static_cast<uint8_t>((q >> 4) << (2 * grp));
        }
      }
    }
  }
}

void unpack_q6_k_rows(const uint8_t* group, int64_t row, uint8_t* dst, int64_t n, int rows) {
  const Q6_KGroup lay{rows};
  const int64_t nsb = n / kQK_K, block = rows * static_cast<int64_t>(sizeof(BlockQ6_K));
  auto* blocks = reinterpret_cast<BlockQ6_K*>(dst);
  for (int64_t b = 0; b < nsb; ++b) {
    BlockQ6_K& blk = blocks[b];
    const uint8_t* sb = group + b * block;
    std::memcpy(&blk.d, sb + 2 * row, 2);
    uint8_t level[kQK_K];
    for (int s = 0; s < 16; ++s) {
      blk.scales[s] = static_cast<int8_t>(sb[lay.scale(s, row)]);
      const uint8_t* lv = sb + lay.sub_block(s);
      for (int e = 0; e < 16; ++e) {
        const int grp = e / 4, i = e % 4;
        const uint8_t lo = lv[4 * rows * (grp % 2) + 4 * row + i];
        level[16 * s + e] = static_cast<uint8_t>((grp < 2 ? lo & 0x0F : lo >> 4) |
                                                 (((lv[8 * rows + 4 * row + i] >> (2 * grp)) & 3) << 4));
      }
    }
    // The file's packing (quant/q6_k.cpp).
    for (int h = 0; h < 2; ++h)
      for (int l = 0; l < 32; ++l) {
        const uint8_t* y = level + 128 * h + l;
        blk.ql[64 * h + l] = static_cast<uint8_t>((y[0] & 0x0F) | ((y[64] & 0x0F) << 4));
        blk.ql[64 * h + l + 32] = static_cast<uint8_t>((y[32] & 0x0F) | ((y[96] & 0x0F) << 4));
        blk.qh[32 * h + l] =
            static_cast<uint8_t>((y[0] >> 4) | ((y[32] >> 4) << 2) | ((y[64] >> 4) << 4) | ((y[96] >> 4) << 6));
      }
  }
}

}  // namespace osprey::kernels
