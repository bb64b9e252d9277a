#include "quant/k_quant_common.h"

#include <algorithm>
#include <cmath>

#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/quant_util.h"

namespace osprey::quant {

void k_dot_levels(const uint8_t q[256], const uint8_t scales[12], const BlockQ8_K& y, int32_t& sumi, int32_t& summ) {
  sumi = 0;
  summ = 0;
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    k_scale_min(j, scales, sc, m);
    int32_t s = 0;
    for (int l = 0; l < 32; ++l) s += q[32 * j + l] * y.qs[32 * j + l];
    sumi += sc * s;
    summ += m * (y.bsums[2 * j] + y.bsums[2 * j + 1]);
  }
}

void k_pack_scale_min(const uint8_t sc[8], const uint8_t m[8], uint8_t out[12]) {
  for (int j = 0; j < 12; ++j) out[j] = 0;
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      out[j] = sc[j];
      out[j + 4] = m[j];
    } else {
      out[j + 4] = static_cast<uint8_t>((sc[j] & 0x0F) | ((m[j] & 0x0F) << 4));
      out[j - 4] |= static_cast<uint8_t>((sc[j] >> 4) << 6);
      out[j] |= static_cast<uint8_t>((m[j] >> 4) << 6);
    }
  }
}

float k_fit_scale_min(const float* x, int n, int levels, float& min_out) {
  float lo = x[0], hi = x[0];
  for (int i = 1; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  lo = std::min(lo, 0.0f);  // the format stores a non-negative min to subtract
  if (hi <= lo) {
    min_out = -lo;
    return 0;
  }
  const int top = levels - 1;
  float scale = (hi - lo) / top;
  float offset = -lo;  // x ~= scale*q - offset
  float best_err = INFINITY, best_scale = scale, best_offset = offset;
  // Alternate between assigning levels and solving the 2x2 least-squares
  // problem for (scale, offset) given the levels.
  for (int iter = 0; iter < 6; ++iter) {
    double sq = 0, sqq = 0, sx = 0, sqx = 0;
    float err = 0;
    for (int i = 0; i < n; ++i) {
      const int q = round_clamp((x[i] + offset) / scale, 0, top);
      const float e = scale * q - offset - x[i];
      err += e * e;
      sq += q;
      sqq += static_cast<double>(q) * q;
      sx += x[i];
      sqx += static_cast<double>(q) * x[i];
    }
    if (err < best_err) {
      best_err = err;
      best_scale = scale;
      best_offset = offset;
    }
    const double det = n * sqq - sq * sq;
    if (det <= 0) break;
    const double new_scale = (n * sqx - sq * sx) / det;
    const double new_offset = -(sx - new_scale * sq) / n;
    if (!(new_scale > 0)) break;
    scale = static_cast<float>(new_scale);
    offset = std::max(0.0f, static_cast<float>(new_offset));
  }
  min_out = best_offset;
  return best_scale;
}

void k_quantize_superblock(const float* x, int levels, uint8_t scales[12], uint8_t q[256], float& d, float& dmin) {
  float sub_scale[8], sub_min[8];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    sub_scale[j] = k_fit_scale_min(x + 32 * j, 32, levels, sub_min[j]);
    max_scale = std::max(max_scale, sub_scale[j]);
    max_min = std::max(max_min, sub_min[j]);
  }
  // The super-block factors are stored as fp16, so quantize against their
  // rounded values to keep encoder and decoder in agreement.
  d = fp16_to_fp32(fp32_to_fp16(max_scale / 63.0f));
  dmin = fp16_to_fp32(fp32_to_fp16(max_min / 63.0f));
  uint8_t ls[8], lm[8];
  for (int j = 0; j < 8; ++j) {
    ls[j] = static_cast<uint8_t>(d > 0 ? round_clamp(sub_scale[j] / d, 0, 63) : 0);
    lm[j] = static_cast<uint8_t>(dmin > 0 ? round_clamp(sub_min[j] / dmin, 0, 63) : 0);
  }
  k_pack_scale_min(ls, lm, scales);
  for (int j = 0; j < 8; ++j) {
    const float s = d * ls[j], m = dmin * lm[j];
    for (int i = 0; i < 32; ++i)
      q[32 * j + i] = static_cast<uint8_t>(s > 0 ? round_clamp((x[32 * j + i] + m) / s, 0, levels - 1) : 0);
  }
}

}  // namespace osprey::quant
