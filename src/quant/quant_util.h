// Small numeric helpers shared by the format files.
#pragma once

#include <cmath>
#include <cstdint>

namespace osprey::quant {

// Rounds and clamps to [lo, hi]. NaN maps to lo rather than being undefined.
inline int round_clamp(float v, int lo, int hi) {
  v = std::fmax(static_cast<float>(lo), std::fmin(static_cast<float>(hi), v));
  return static_cast<int>(std::nearbyint(v));
}

// Truncating conversion for the legacy formats, whose encoders add 0.5 first.
inline int trunc_clamp(float v, int lo, int hi) {
  v = std::fmax(static_cast<float>(lo), std::fmin(static_cast<float>(hi), v));
  return static_cast<int>(v);
}

// The element with the largest magnitude, keeping its sign. The symmetric
// formats map it to the most negative level so that level is not wasted.
inline float signed_absmax(const float* x, int n) {
  float amax = 0, max = 0;
  for (int j = 0; j < n; ++j) {
    const float a = std::fabs(x[j]);
    if (a > amax) {
      amax = a;
      max = x[j];
    }
  }
  return max;
}

}  // namespace osprey::quant
