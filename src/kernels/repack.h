// Weight layouts that kernels may ask for instead of the file's, made once at
// load. A repacked row has exactly the bytes of the file's row, so the packed
// copy replaces the original one for one and memory does not double.
#pragma once

#include <cstdint>

namespace osprey::kernels {

// "Scales first" for the 32-element block formats whose block is an fp16
// scale followed by a payload (Q4_0: 16 bytes of nibbles; Q8_0: 32 int8):
//   [d of block 0, d of block 1, ... d of block nb-1][payload 0][payload 1]...
// Eight scales then convert with one instruction, and the payloads of
// consecutive blocks sit back to back, so two Q4_0 blocks fill one 256-bit load.
void repack_scales_first(const uint8_t* src, uint8_t* dst, int64_t n_blocks, int64_t payload_bytes);

// The inverse of repack_scales_first.
void unpack_scales_first(const uint8_t* src, uint8_t* dst, int64_t n_blocks, int64_t payload_bytes);

// Q8_0's payloads in the same pair order as the paired activations
// (kernels/planar_act.h): within each pair of blocks [b0 0..15][b1 0..15]
// [b0 16..31][b1 16..31]; an odd last block stays in order. Q4_0 needs no
// such step: the nibbles of two consecutive blocks already line up. The
// swap is its own inverse.
void pair_halves_q8(uint8_t* payloads, int64_t n_blocks);

// Rows interleaved in groups, for the 32-element block formats whose block
// is an fp16 scale and a payload (Q4_0: 16 bytes, Q8_0: 32). A group of
// `rows` (8 or 16) rows of n_blocks blocks, that many consecutive file rows
// at src, becomes in the same bytes a run of chunks of 32 / rows blocks (the
// last chunk may hold fewer). A chunk of k blocks is
//   [k x rows scales: the rows' scales of its first block, of its second...]
//   [per block, payload_bytes / 4 vectors of 4 * rows bytes: vector v holds
//    bytes 4v..4v+3 of row r's payload at 4r..4r+3]
// so one 32-bit SIMD lane per row meets four activation bytes broadcast to
// all: rows = 8 fills a 256-bit register, 16 a 512-bit one. A full chunk's
// scales fill one 64-byte line and its payloads whole lines after it, so
// the group is one sequential stream with its 512-bit vectors on lines.
// Why: with all scales first, in a stream of their own, the 16-row Q4_0
// gemv read about a third slower (osprey_kernel_bench gemv_stream, one
// thread; README, "Measurements behind the kernels").
// Every payload byte is XORed with `flip` (0x80 turns int8 into the
// unsigned w + 128 that VNNI's unsigned operand wants; 0 keeps it).
void repack_rows(const uint8_t* src, uint8_t* dst, int64_t n_blocks, int64_t payload_bytes, int rows,
                 uint8_t flip = 0);

// Row `row` (< rows) of such a group back to the file's layout.
void unpack_rows(const uint8_t* group, int64_t row, uint8_t* dst, int64_t n_blocks, int64_t payload_bytes, int rows,
                 uint8_t flip = 0);

// Where things sit in that layout, in bytes from the group's start.
struct RowGroupLayout {
  int64_t n_blocks, payload_bytes;
  int rows;
  static constexpr int64_t chunk_blocks(int rows) { return 32 / rows; }
  int64_t block_bytes() const { return rows * (2 + payload_bytes); }
  int64_t scale_offset(int64_t b, int64_t r) const;              // row r's fp16 scale of block b
  int64_t payload_offset(int64_t b, int64_t r, int64_t v) const;  // row r's bytes 4v..4v+3 of block b
};

// The kernels' walk over such a group: block(b, scales, payload) for every
// block in order, with the group's `rows` fp16 scales and its payload
// vectors, after a prefetch of each line of the block's chunk `ahead` bytes
// further on (the group is one sequential stream, so one distance serves).
template <int Rows, int64_t PayloadBytes, class Block>
inline void for_each_group_block(const uint8_t* group, int64_t n_blocks, int64_t ahead, Block&& block) {
  constexpr int64_t kChunk = RowGroupLayout::chunk_blocks(Rows), kBlockBytes = Rows * (2 + PayloadBytes);
  for (int64_t b0 = 0; b0 < n_blocks; b0 += kChunk) {
    const int64_t k = n_blocks - b0 < kChunk ? n_blocks - b0 : kChunk;
    for (int64_t l = 0; l < k * kBlockBytes; l += 64) __builtin_prefetch(group + ahead + l, 0, 3);
    const auto* scales = reinterpret_cast<const uint16_t*>(group);
    const uint8_t* payload = group + 2 * Rows * k;
    for (int64_t j = 0; j < k; ++j) block(b0 + j, scales + Rows * j, payload + j * Rows * PayloadBytes);
    group += k * kBlockBytes;
  }
}

// Rows of a 16-bit float format (F16, BF16) interleaved element by element
// in groups of `rows`: element k of row r sits at halves[k * rows + r]. With
// 32 rows one 64-byte line holds one element of every row, so a kernel
// converts it into two 512-bit vectors (rows 0-15 and 16-31) that meet one
// activation broadcast to all lanes, and the group is one sequential stream.
void repack_rows16(const uint8_t* src, uint8_t* dst, int64_t n, int rows);
void unpack_rows16(const uint8_t* group, int64_t row, uint8_t* dst, int64_t n, int rows);

// Q4_K rows interleaved in groups of `rows` (repack_kquants.cpp). Super-block
// by super-block, a group holds in the same rows x 144 bytes:
//   [d: rows fp16][dmin: rows fp16]
//   [the rows' 12 packed scale bytes as three 32-bit words: word 0 of every
//    row, then word 1, then word 2]
//   [levels: for sub-block j (32 elements) four vectors of 4 * rows bytes;
//    vector k holds, for row r at bytes 4r..4r+3, elements 4k..4k+3 of the
//    sub-block in the low nibbles and elements 16+4k..16+4k+3 in the high]
void repack_q4_k_rows(const uint8_t* src, uint8_t* dst, int64_t n, int rows);
void unpack_q4_k_rows(const uint8_t* group, int64_t row, uint8_t* dst, int64_t n, int rows);

// Q5_K rows in the same layout, in rows x 176 bytes a super-block: each
// sub-block's four vectors of low 4 bits are followed by one vector of
// fifth bits, 4 * rows bytes (row r, byte i: bit k is the fifth bit of
// element 4k+i, bit 4+k that of element 16+4k+i, the two elements whose
// nibbles share byte i of vector k).
void repack_q5_k_rows(const uint8_t* src, uint8_t* dst, int64_t n, int rows);
void unpack_q5_k_rows(const uint8_t* group, int64_t row, uint8_t* dst, int64_t n, int rows);

// Q6_K rows interleaved in groups of `rows`. Super-block by super-block, in
// the same rows x 210 bytes:
//   [d: rows fp16]
//   [scales: four vectors of 4 * rows bytes; vector v holds, for row r at
//    bytes 4r..4r+3, the int8 scales of sub-blocks 4v..4v+3]
//   [levels, 12 * rows bytes per 16-element sub-block: two vectors of low 4
//    bits (vector k, row r, byte i: element 4k+i in the low nibble, 8+4k+i
//    in the high) and one of high 2 bits (row r, byte i: bits 2g..2g+1 are
//    those of element 4g+i)]
void repack_q6_k_rows(const uint8_t* src, uint8_t* dst, int64_t n, int rows);
void unpack_q6_k_rows(const uint8_t* group, int64_t row, uint8_t* dst, int64_t n, int rows);

}  // namespace osprey::kernels
