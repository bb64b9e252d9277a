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

namespace {

// Weighted squared error of x ~= scale * q - offset with each q the nearest
// level in [0, top], and the weighted sums the least-squares refit of
// (scale, offset) needs. kWeighted false: every weight 1 (w unread).
// Written as plain float loops so that the compiler vectorizes them: this
// search is most of the time `quantize` spends.
struct AffineFit {
  float err = 0;
  float sw = 0, sq = 0, sqq = 0, sx = 0, sqx = 0;
};
template <bool kWeighted>
AffineFit affine_fit(const float* x, const float* w, int n, int top, float scale, float offset) {
  // Eight running sums per quantity, one per lane: each lane adds in a fixed
  // order, so the compiler may vectorize across lanes without reassociating
  // any sum, and the result is the same on every machine. n is a multiple of 8.
  constexpr int kLanes = 8;
  float err[kLanes] = {}, sw[kLanes] = {}, sq[kLanes] = {}, sqq[kLanes] = {}, sx[kLanes] = {}, sqx[kLanes] = {};
  const float inv = 1.0f / scale, ftop = static_cast<float>(top);
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding and subtracting it rounds to nearest even
  for (int i = 0; i < n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      const float xi = x[i + j];
      const float wi = kWeighted ? w[i + j] : 1.0f;
      float v = (xi + offset) * inv;
      v = v < 0.0f ? 0.0f : v;
      v = v > ftop ? ftop : v;
      const float q = (v + kRound) - kRound;
      const float e = scale * q - offset - xi;
      err[j] += wi * e * e;
      sw[j] += wi;
      sq[j] += wi * q;
      sqq[j] += wi * q * q;
      sx[j] += wi * xi;
      sqx[j] += wi * q * xi;
    }
  AffineFit f;
  for (int j = 0; j < kLanes; ++j) {
    f.err += err[j];
    f.sw += sw[j];
    f.sq += sq[j];
    f.sqq += sqq[j];
    f.sx += sx[j];
    f.sqx += sqx[j];
  }
  return f;
}

template <bool kWeighted>
float fit_scale_min(const float* x, const float* w, int n, int levels, float& min_out) {
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
  float best_err = INFINITY, best_scale = (hi - lo) / top, best_offset = -lo;
  // Stretching the grid a little past the extremes (or short of them) often
  // lands more values near a level than spanning them exactly does, so try a
  // few spans; from each, alternate between assigning levels and solving the
  // 2x2 least-squares problem for (scale, offset) given them. Neither step
  // raises the error, so the best seen is kept.
  for (int t = -2; t <= 4; ++t) {
    float scale = (hi - lo) / (static_cast<float>(top) + 0.2f * static_cast<float>(t));
    float offset = -lo;
    for (int iter = 0; iter < 3; ++iter) {
      const AffineFit f = affine_fit<kWeighted>(x, w, n, top, scale, offset);
      if (f.err < best_err) {
        best_err = f.err;
        best_scale = scale;
        best_offset = offset;
      }
      // Minimising sum w (scale*q - offset - x)^2 over (scale, offset).
      const double det = static_cast<double>(f.sw) * f.sqq - static_cast<double>(f.sq) * f.sq;
      if (det <= 0 || f.sw <= 0) break;
      double new_scale = (static_cast<double>(f.sw) * f.sqx - static_cast<double>(f.sq) * f.sx) / det;
      double new_offset = (new_scale * f.sq - f.sx) / f.sw;
      if (new_offset < 0) {  // the offset must stay >= 0: refit the scale alone with offset 0
        new_offset = 0;
        new_scale = f.sqq > 0 ? f.sqx / f.sqq : 0;
      }
      if (!(new_scale > 0)) break;
      scale = static_cast<float>(new_scale);
      offset = static_cast<float>(new_offset);
    }
  }
  min_out = best_offset;
  return best_scale;
}

template <bool kWeighted>
float fit_symmetric_scale(const float* x, const float* w, int n, int nmin, int nmax) {
  const float max = signed_absmax(x, n);
  if (max == 0) return 0;
  // Weighted squared error of x ~= s * q, q the nearest level; also the sums
  // for the least-squares scale given those levels. Lane-wise, as affine_fit.
  const float lo = static_cast<float>(nmin), hi = static_cast<float>(nmax);
  auto fit = [&](float s, float& sxq_out, float& sqq_out) {
    constexpr int kLanes = 8;
    float err[kLanes] = {}, sxq[kLanes] = {}, sqq[kLanes] = {};
    const float inv = 1.0f / s;
    constexpr float kRound = 12582912.0f;
    for (int l = 0; l < n; l += kLanes)
      for (int j = 0; j < kLanes; ++j) {
        const float xl = x[l + j];
        const float wl = kWeighted ? w[l + j] : 1.0f;
        float v = xl * inv;
        v = v < lo ? lo : v;
        v = v > hi ? hi : v;
        const float q = (v + kRound) - kRound;
        const float e = s * q - xl;
        err[j] += wl * e * e;
        sxq[j] += wl * xl * q;
        sqq[j] += wl * q * q;
      }
    float total = 0;
    sxq_out = sqq_out = 0;
    for (int j = 0; j < kLanes; ++j) {
      total += err[j];
      sxq_out += sxq[j];
      sqq_out += sqq[j];
    }
    return total;
  };
  // The largest magnitude maps to nmin (the longer side of the range), a
  // little beyond it or some way inside; each candidate is then refined by
  // least squares for its levels, and the best seen is kept.
  float best = max / static_cast<float>(nmin), best_err = INFINITY;
  for (int t = -1; t <= 6; ++t) {
    float s = max / (static_cast<float>(nmin) * (1.0f - 0.05f * static_cast<float>(t)));
    for (int iter = 0; iter < 3; ++iter) {
      float sxq, sqq;
      const float err = fit(s, sxq, sqq);
      if (err < best_err) best_err = err, best = s;
      if (sqq <= 0 || sxq == 0) break;
      s = sxq / sqq;
    }
  }
  return best;
}

}  // namespace

namespace {
// Weights that are all zero (columns the sample text never reached) say
// nothing about where precision matters: fit those values plainly.
bool has_weight(const float* weights, int n) {
  if (weights == nullptr) return false;
  float sum = 0;
  for (int i = 0; i < n; ++i) sum += weights[i];
  return sum > 0;
}
}  // namespace

float k_fit_scale_min(const float* x, int n, int levels, float& min, const float* weights) {
  return has_weight(weights, n) ? fit_scale_min<true>(x, weights, n, levels, min)
                            : fit_scale_min<false>(x, nullptr, n, levels, min);
}

float k_fit_symmetric_scale(const float* x, int n, int nmin, int nmax, const float* weights) {
  return has_weight(weights, n) ? fit_symmetric_scale<true>(x, weights, n, nmin, nmax)
                            : fit_symmetric_scale<false>(x, nullptr, n, nmin, nmax);
}

void k_quantize_superblock(const float* x, int levels, uint8_t scales[12], uint8_t q[256], float& d, float& dmin,
                           const float* weights) {
  float sub_scale[8], sub_min[8];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    sub_scale[j] = k_fit_scale_min(x + 32 * j, 32, levels, sub_min[j], weights ? weights + 32 * j : nullptr);
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
