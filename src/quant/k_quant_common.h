// Pieces shared by Q4_K and Q5_K: the 12-byte packing of eight 6-bit scales
// and eight 6-bit mins, and the search for a sub-block's scale and min.
#pragma once

#include <cstdint>
#include <cstring>

namespace osprey::quant {

// Sub-block j's 6-bit scale and min from the packed 12 bytes.
inline void k_scale_min(int j, const uint8_t* q, int& sc, int& m) {
  if (j < 4) {
    sc = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    sc = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
    m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// All eight scales and mins at once, a 32-bit word at a time: byte j of
// `scales` (and of `mins`) is sub-block j's. In the packed 12 bytes, bytes
// 0-3 hold scales 0-3 (low 6 bits) and the top bits of scales 4-7; bytes 4-7
// likewise for the mins; bytes 8-11 the low nibbles of scales 4-7 and, in
// their high nibbles, of mins 4-7. Equal to k_scale_min for every j.
inline void k_unpack_scales_mins(const uint8_t* packed, uint64_t& scales, uint64_t& mins) {
  uint32_t w[3];
  std::memcpy(w, packed, 12);
  const uint32_t sc_lo = w[0] & 0x3F3F3F3Fu;
  const uint32_t m_lo = w[1] & 0x3F3F3F3Fu;
  const uint32_t sc_hi = (w[2] & 0x0F0F0F0Fu) | (((w[0] >> 6) & 0x03030303u) << 4);
  const uint32_t m_hi = ((w[2] >> 4) & 0x0F0F0F0Fu) | (((w[1] >> 6) & 0x03030303u) << 4);
  scales = sc_lo | (static_cast<uint64_t>(sc_hi) << 32);
  mins = m_lo | (static_cast<uint64_t>(m_hi) << 32);
}

// The low two bits of element i of a Q2_K or Q3_K super-block (see BlockQ2_K).
inline int k_low2(const uint8_t* qs, int i) { return (qs[32 * (i / 128) + i % 32] >> (2 * ((i % 128) / 32))) & 3; }
inline void k_set_low2(uint8_t* qs, int i, int v) {
  qs[32 * (i / 128) + i % 32] |= static_cast<uint8_t>((v & 3) << (2 * ((i % 128) / 32)));
}

// Q3_K's sixteen 6-bit scales in 12 bytes: sub-block s keeps its low nibble
// in byte s % 8 (the high nibble of that byte for s >= 8) and its top two
// bits in byte 8 + s % 4, at bits 2 * (s / 4). Stored with an offset of 32.
inline int q3k_scale(const uint8_t* packed, int s) {
  const int low = (packed[s % 8] >> (s >= 8 ? 4 : 0)) & 15;
  const int high = (packed[8 + s % 4] >> (2 * (s / 4))) & 3;
  return (low | (high << 4)) - 32;
}
// Its inverse for one sub-block of zeroed bytes: sc in -32..31.
inline void q3k_set_scale(uint8_t* packed, int s, int sc) {
  const int code = sc + 32;
  packed[s % 8] |= static_cast<uint8_t>((code & 15) << (s >= 8 ? 4 : 0));
  packed[8 + s % 4] |= static_cast<uint8_t>((code >> 4) << (2 * (s / 4)));
}

struct BlockQ8_K;

// sum over a super-block of (d*sc_j*q - dmin*m_j) * a, given the levels q[256]
// (0..31) and the packed scales: returns d-part and min-part as integers,
// sumi = sum_j sc_j * sum(q*a) and summ = sum_j m_j * sum(a) (from bsums).
void k_dot_levels(const uint8_t q[256], const uint8_t scales[12], const BlockQ8_K& y, int32_t& sumi, int32_t& summ);

void k_pack_scale_min(const uint8_t sc[8], const uint8_t m[8], uint8_t out[12]);

// Fits x[i] ~= scale * q[i] - min with q in [0, levels-1] and min >= 0,
// refining by least squares. Returns the scale; writes min. `weights`
// (optional, n values): how much each element's error counts (an importance
// matrix's column weights); n is a multiple of 8.
float k_fit_scale_min(const float* x, int n, int levels, float& min, const float* weights = nullptr);

// The scale s of x ~= s * q with integer q in [nmin, nmax] (nmin < 0 < nmax,
// |nmin| > nmax) with the least squared error found. 0 for all-zero x.
float k_fit_symmetric_scale(const float* x, int n, int nmin, int nmax, const float* weights = nullptr);

// Encodes one super-block of 256 values into 8 sub-block scales/mins (6 bit
// each) and the integer levels q[256] in [0, levels-1]. Writes d and dmin as
// floats; the caller stores them as fp16.
void k_quantize_superblock(const float* x, int levels, uint8_t scales[12], uint8_t q[256], float& d, float& dmin,
                           const float* weights = nullptr);

}  // namespace osprey::quant
