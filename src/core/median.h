// The median of a sample: the middle value, or the mean of the middle two
// for an even count; 0 for an empty sample. Used wherever a noisy host's
// measurements are summed up (osprey bench, the bandwidth read loop).
#pragma once

#include <algorithm>
#include <vector>

namespace osprey {

inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t h = v.size() / 2;
  return v.size() % 2 ? v[h] : (v[h - 1] + v[h]) / 2;
}

}  // namespace osprey
