#include "sampling/descending_order.h"

#include "sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace osprey::sampling {

uint32_t descending_key(float logit) {
  if (std::isnan(logit)) return UINT32_MAX;   // a broken logit is never preferred
  if (logit == 0.0f) logit = 0.0f;            // -0 and +0 compare equal
  uint32_t u;
  std::memcpy(&u, &logit, sizeof u);
  const uint32_t ascending = (u & 0x80000000u) ? ~u : (u | 0x80000000u);  // unsigned order = float order
  return ~ascending;
}

void DescendingOrder::reset(const std::vector<TokenCandidate>& c) {
  // Keys at or above this one's are -inf and NaN.
  static const uint32_t never = descending_key(-INFINITY);
  constexpr uint32_t shift = 32 - kBucketBits;
  c_ = c.data();
  const uint32_t n = static_cast<uint32_t>(c.size());
  key_.resize(n);
  grouped_.resize(n);
  start_.assign(kLanes * kBuckets + kBuckets + 1, 0);
  uint32_t* lane = start_.data();
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t k = key_[i] = descending_key(c[i].logit);
    if (k < never) ++lane[(i % kLanes) * kBuckets + (k >> shift)];
  }
  // Each lane's count becomes its first place within its bucket; the bucket
  // starts follow the lanes.
  uint32_t* bucket_start = lane + kLanes * kBuckets;
  uint32_t place = 0;
  for (uint32_t b = 0; b < kBuckets; ++b) {
    bucket_start[b] = place;
    for (uint32_t l = 0; l < kLanes; ++l) {
      const uint32_t count = lane[l * kBuckets + b];
      lane[l * kBuckets + b] = place;
      place += count;
    }
  }
  bucket_start[kBuckets] = place;
  for (uint32_t i = 0; i < n; ++i)
    if (key_[i] < never) grouped_[lane[(i % kLanes) * kBuckets + (key_[i] >> shift)]++] = i;
  bucket_ = 0;
  at_ = 0;
  end_ = place;
}

int64_t DescendingOrder::next() {
  if (at_ >= end_) return -1;
  const uint32_t* bucket_start = start_.data() + kLanes * kBuckets;
  if (at_ == bucket_start[bucket_]) {
    // Entering a bucket: skip empty ones and sort this one's candidates.
    while (bucket_start[bucket_ + 1] == at_) ++bucket_;
    auto first = grouped_.begin() + bucket_start[bucket_], last = grouped_.begin() + bucket_start[bucket_ + 1];
    std::sort(first, last, [this](uint32_t a, uint32_t b) {
      return key_[a] < key_[b] || (key_[a] == key_[b] && c_[a].id < c_[b].id);
    });
  }
  const uint32_t index = grouped_[at_++];
  if (at_ == bucket_start[bucket_ + 1]) ++bucket_;
  return index;
}

}  // namespace osprey::sampling
