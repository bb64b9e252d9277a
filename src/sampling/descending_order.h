// The sampler's order over candidates (descending logit, -0 equal to +0,
// then ascending id), walked one candidate at a time without sorting them all.
// Candidates whose logit is -inf or NaN can never be drawn and are left out.
//
// A draw usually stops within the first few candidates, but it needs them in
// exactly that order, and sorting a 152k-token vocabulary for every token
// cost 4.9 ms on the serving thread (bench/sampler_bench.cpp, Zen 5; 1.3 ms
// this way). Instead, one counting pass and one
// filing pass put every candidate into one of 4096 buckets by the top 12 bits
// of its logit's order key (sign, exponent and 3 mantissa bits), and a bucket
// is sorted only when the walk reaches it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace osprey {
struct TokenCandidate;
}

namespace osprey::sampling {

class DescendingOrder {
 public:
  // Files c's candidates. c must not change until the walk is done.
  void reset(const std::vector<TokenCandidate>& c);
  // The index in c of the next candidate in order, or -1 after the last.
  int64_t next();

 private:
  static constexpr int kBucketBits = 12;
  static constexpr uint32_t kBuckets = 1u << kBucketBits;
  // Counting and filing alternate between this many sets of buckets, so that
  // a run of candidates in one bucket does not wait on its own last count.
  static constexpr uint32_t kLanes = 4;

  const TokenCandidate* c_ = nullptr;
  std::vector<uint32_t> key_;      // per candidate: ascending in the order, ids aside
  std::vector<uint32_t> start_;    // per lane and bucket, then per bucket: where it begins in grouped_
  std::vector<uint32_t> grouped_;  // the candidates' indices, bucket by bucket
  uint32_t bucket_ = 0;            // the bucket being walked
  uint32_t at_ = 0;                // the next position in grouped_
  uint32_t end_ = 0;               // the number of candidates filed
};

// The order key of a logit: smaller comes first in the sampler's order.
// -inf and NaN (never drawn) get the largest keys, NaN's the very largest.
uint32_t descending_key(float logit);

}  // namespace osprey::sampling
