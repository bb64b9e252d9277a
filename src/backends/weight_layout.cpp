#include "backends/weight_layout.h"

#include <cmath>
#include <cstring>
#include <string>
#include <type_traits>

#include "core/fp16.h"
#include "quant/k_quant_common.h"
#include "quant/k_unpack.h"
#include "quant/quant_util.h"

namespace osprey::backends {

namespace {

// Block formats with an fp16 scale ahead of `quant_bytes` of quants: the
// scales move to the front as f32, so the quants start on word boundaries.
std::vector<uint32_t> split_scales(const uint8_t* data, int64_t n_blocks, int quant_bytes) {
  const int block_bytes = 2 + quant_bytes;
  std::vector<uint32_t> out(n_blocks + n_blocks * quant_bytes / 4);
  uint8_t* quants = reinterpret_cast<uint8_t*>(out.data() + n_blocks);
  for (int64_t b = 0; b < n_blocks; ++b) {
    const uint8_t* blk = data + b * block_bytes;
    uint16_t d;
    std::memcpy(&d, blk, 2);
    const float scale = fp16_to_fp32(d);
    std::memcpy(&out[b], &scale, 4);
    std::memcpy(quants + b * quant_bytes, blk + 2, quant_bytes);
  }
  return out;
}

// MXFP4: every block's scale 2^(e - 128) as f32, then its 16 bytes of codes
// as they are (the nibble order is Q4_0's).
std::vector<uint32_t> split_mxfp4(const uint8_t* data, int64_t n_blocks) {
  std::vector<uint32_t> out(n_blocks * 5);
  uint8_t* quants = reinterpret_cast<uint8_t*>(out.data() + n_blocks);
  for (int64_t b = 0; b < n_blocks; ++b) {
    const auto& blk = reinterpret_cast<const quant::BlockMXFP4*>(data)[b];
    const float scale = std::ldexp(1.0f, int{blk.e} - 128);
    std::memcpy(&out[b], &scale, 4);
    std::memcpy(quants + b * 16, blk.qs, 16);
  }
  return out;
}

// 4 words of nibbles (byte k: value k low, value k + 16 high) and, when any
// value has a fifth bit, one word of them (bit k: value k's), for 32
// unsigned values.
void put_nibbles(const uint8_t* v, bool fifth_bit, uint32_t* out) {
  uint8_t nibbles[16];
  for (int k = 0; k < 16; ++k) nibbles[k] = static_cast<uint8_t>((v[k] & 15) | ((v[k + 16] & 15) << 4));
  std::memcpy(out, nibbles, 16);
  if (!fifth_bit) return;
  uint32_t high = 0;
  for (int k = 0; k < 32; ++k) high |= static_cast<uint32_t>((v[k] >> 4) & 1) << k;
  out[4] = high;
}

// Q5_0: every block's scale as f32, then 5 words of quants per block.
std::vector<uint32_t> split_q5_0(const uint8_t* data, int64_t n_blocks) {
  std::vector<uint32_t> out(n_blocks * 6);
  for (int64_t b = 0; b < n_blocks; ++b) {
    const auto& blk = reinterpret_cast<const quant::BlockQ5_0*>(data)[b];
    const float scale = fp16_to_fp32(blk.d);
    std::memcpy(&out[b], &scale, 4);
    int q[32];
    quant::unpack_q5(blk.qs, blk.qh, q);
    uint8_t v[32];
    for (int k = 0; k < 32; ++k) v[k] = static_cast<uint8_t>(q[k]);
    put_nibbles(v, true, out.data() + n_blocks + b * 5);
  }
  return out;
}

// Q4_1 and Q5_1: every block's scale d as f32, then every block's offset m,
// then 4 (Q4_1) or 5 (Q5_1) words of quants per block.
template <class Block>
std::vector<uint32_t> split_scale_offset(const uint8_t* data, int64_t n_blocks) {
  constexpr bool kFifth = std::is_same_v<Block, quant::BlockQ5_1>;
  const int quant_words = kFifth ? 5 : 4;
  std::vector<uint32_t> out(n_blocks * (2 + quant_words));
  for (int64_t b = 0; b < n_blocks; ++b) {
    const Block& blk = reinterpret_cast<const Block*>(data)[b];
    const float d = fp16_to_fp32(blk.d), m = fp16_to_fp32(blk.m);
    std::memcpy(&out[b], &d, 4);
    std::memcpy(&out[n_blocks + b], &m, 4);
    uint8_t v[32];
    if constexpr (kFifth) {
      int q[32];
      quant::unpack_q5(blk.qs, blk.qh, q);
      for (int k = 0; k < 32; ++k) v[k] = static_cast<uint8_t>(q[k]);
    } else {
      for (int k = 0; k < 16; ++k) v[k] = blk.qs[k] & 15, v[k + 16] = blk.qs[k] >> 4;
    }
    put_nibbles(v, kFifth, out.data() + 2 * n_blocks + b * quant_words);
  }
  return out;
}

// K-quant super-blocks as 32-value blocks: every block's two scale words
// (Q4_K/Q5_K: scale and negated min, Q4_1/Q5_1's scale and offset; Q6_K: the
// scales of its two 16-value halves),
// then each block's quants: 4 words of nibbles (byte k: value k low, value
// k + 16 high), and for Q5_K one word of fifth bits, for Q6_K two words of
// top bit pairs.
std::vector<uint32_t> split_k_quant(DType type, const uint8_t* data, int64_t n_values) {
  using namespace quant;
  const int64_t n_blocks = n_values / 32;
  const int quant_words = type == DType::kQ4_K ? 4 : type == DType::kQ5_K ? 5 : 6;
  std::vector<uint32_t> out(n_blocks * (2 + quant_words));
  auto put = [&](int64_t word, float v) { std::memcpy(&out[word], &v, 4); };
  uint8_t u[kQK_K];  // every value as an unsigned integer (Q6_K's offset by 32)
  for (int64_t sb = 0; sb < n_values / kQK_K; ++sb) {
    for (int j = 0; j < 8; ++j) {
      const int64_t blk = sb * 8 + j;
      if (type == DType::kQ6_K) {
        const auto& b = reinterpret_cast<const BlockQ6_K*>(data)[sb];
        const float d = fp16_to_fp32(b.d);
        put(blk, d * b.scales[2 * j]);
        put(n_blocks + blk, d * b.scales[2 * j + 1]);
      } else {
        uint16_t d, dmin;
        const uint8_t* scales;
        if (type == DType::kQ4_K) {
          const auto& b = reinterpret_cast<const BlockQ4_K*>(data)[sb];
          d = b.d, dmin = b.dmin, scales = b.scales;
        } else {
          const auto& b = reinterpret_cast<const BlockQ5_K*>(data)[sb];
          d = b.d, dmin = b.dmin, scales = b.scales;
        }
        int sc, m;
        k_scale_min(j, scales, sc, m);
        // The min is stored negated, so that x = scale * q + offset as for
        // Q4_1/Q5_1, whose block the kernels share (weights/q4_1.kinc).
        put(blk, fp16_to_fp32(d) * sc);
        put(n_blocks + blk, -(fp16_to_fp32(dmin) * m));
      }
    }
    if (type == DType::kQ4_K) {
      unpack_q4_k(reinterpret_cast<const BlockQ4_K*>(data)[sb], u);
    } else if (type == DType::kQ5_K) {
      unpack_q5_k(reinterpret_cast<const BlockQ5_K*>(data)[sb], u);
    } else {
      int8_t q[kQK_K];
      unpack_q6_k(reinterpret_cast<const BlockQ6_K*>(data)[sb], q);
      for (int k = 0; k < kQK_K; ++k) u[k] = static_cast<uint8_t>(q[k] + 32);
    }
    for (int j = 0; j < 8; ++j) {
      const uint8_t* v = u + 32 * j;
      uint32_t* q = out.data() + 2 * n_blocks + (sb * 8 + j) * quant_words;
      put_nibbles(v, type == DType::kQ5_K, q);
      if (type == DType::kQ6_K) {
        uint32_t lo = 0, hi = 0;
        for (int k = 0; k < 16; ++k) {
          lo |= static_cast<uint32_t>((v[k] >> 4) & 3) << (2 * k);
          hi |= static_cast<uint32_t>((v[k + 16] >> 4) & 3) << (2 * k);
        }
        q[4] = lo;
        q[5] = hi;
      }
    }
  }
  return out;
}

}  // namespace

const KernelSource* matrix_kernel(DType type, bool tokens) {
  const char* name = nullptr;
  switch (type) {
    case DType::kF32: name = "mat_f32"; break;
    case DType::kF16: name = "mat_f16"; break;
    case DType::kBF16: name = "mat_bf16"; break;
    case DType::kMXFP4: name = "mat_mxfp4"; break;
    case DType::kQ8_0: name = "mat_q8_0"; break;
    case DType::kQ4_0: name = "mat_q4_0"; break;
    case DType::kQ4_1: name = "mat_q4_1"; break;
    case DType::kQ5_0: name = "mat_q5_0"; break;
    case DType::kQ5_1: name = "mat_q5_1"; break;
    case DType::kQ4_K: name = "mat_q4_k"; break;
    case DType::kQ5_K: name = "mat_q5_k"; break;
    case DType::kQ6_K: name = "mat_q6_k"; break;
    default: return nullptr;
  }
  return find_gpu_kernel(tokens ? std::string(name) + "_tokens" : std::string(name));
}

int64_t packed_bytes(DType type, int64_t n_values) {
  int words = 0;  // per 32 values, as the layout above
  switch (type) {
    case DType::kF32: words = 32; break;
    case DType::kF16:
    case DType::kBF16: words = 16; break;
    case DType::kMXFP4: words = 1 + 4; break;
    case DType::kQ8_0: words = 1 + 8; break;
    case DType::kQ4_0: words = 1 + 4; break;
    case DType::kQ5_0: words = 1 + 5; break;
    case DType::kQ4_1: words = 2 + 4; break;
    case DType::kQ5_1: words = 2 + 5; break;
    case DType::kQ4_K: words = 2 + 4; break;
    case DType::kQ5_K: words = 2 + 5; break;
    case DType::kQ6_K: words = 2 + 6; break;
    default: return 0;
  }
  return n_values / 32 * words * 4;
}

std::vector<uint32_t> pack_weights(DType type, const uint8_t* data, int64_t n_values) {
  switch (type) {
    case DType::kQ8_0: return split_scales(data, n_values / 32, 32);
    case DType::kQ4_0: return split_scales(data, n_values / 32, 16);
    case DType::kQ4_1: return split_scale_offset<quant::BlockQ4_1>(data, n_values / 32);
    case DType::kQ5_0: return split_q5_0(data, n_values / 32);
    case DType::kQ5_1: return split_scale_offset<quant::BlockQ5_1>(data, n_values / 32);
    case DType::kQ4_K:
    case DType::kQ5_K:
    case DType::kQ6_K: return split_k_quant(type, data, n_values);
    case DType::kMXFP4: return split_mxfp4(data, n_values / 32);
    case DType::kF16:
    case DType::kBF16: {
      std::vector<uint32_t> out(n_values / 2);
      std::memcpy(out.data(), data, n_values * 2);
      return out;
    }
    case DType::kF32: {
      std::vector<uint32_t> out(n_values);
      std::memcpy(out.data(), data, n_values * 4);
      return out;
    }
    default: return {};
  }
}

}  // namespace osprey::backends
