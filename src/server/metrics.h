// Counters and histograms for GET /metrics, in Prometheus' text format.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "engine/scheduler.h"

namespace osprey::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double value);
  void render(std::string& out, const std::string& name, const std::string& help) const;

 private:
  mutable std::mutex mu_;
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket, not cumulative
  double sum_ = 0;
  uint64_t count_ = 0;
};

// Events per second over the last few whole seconds: the rate an autoscaler
// or a dashboard reads now, rather than a lifetime average.
class RecentRate {
 public:
  static constexpr int kSeconds = 10;  // the window the rate is averaged over
  void add(uint64_t n);
  double per_second() const;

 private:
  static int64_t now_second();
  mutable std::mutex mu_;
  // One bucket per second, indexed by the second modulo the ring's size; a
  // bucket is stale when its second is not the one its slot stands for.
  static constexpr int kRing = kSeconds + 2;
  uint64_t counts_[kRing] = {};
  int64_t seconds_[kRing] = {};
};

// Values read at scrape time from the scheduler and the KV cache.
struct Gauges {
  int64_t queued = 0;
  int64_t running = 0;
  int64_t kv_blocks_used = 0;
  int64_t kv_blocks_cached = 0;
  int64_t kv_blocks_total = 0;
  int64_t kv_tokens_total = 0;
  int64_t kv_bytes = 0;  // the pool's memory (its cache types decide how many blocks that is)
  int64_t open_connections = 0;
  bool draining = false;  // SIGTERM received: /ready answers 503 while running requests finish
};

// The process's resident memory now, from /proc/self/statm (0 where absent).
int64_t resident_bytes();

// The scheduler reports into it as it works (SchedulerObserver).
class Metrics final : public SchedulerObserver {
 public:
  Metrics();
  void admitted(int64_t new_prompt_tokens, int64_t prefix_hit_tokens) override;
  void prompt_computed(int64_t tokens) override;
  void token(bool first, double seconds, bool in_reply) override;
  void preempted() override { preemptions++; }
  void speculated(int64_t drafted, int64_t accepted) override {
    draft_tokens += static_cast<uint64_t>(drafted);
    accepted_draft_tokens += static_cast<uint64_t>(accepted);
  }
  void finished(double seconds_since_arrival) override { request_duration.observe(seconds_since_arrival); }
  void count_request(const std::string& endpoint, int status);
  std::string render(const Gauges& gauges) const;

  std::atomic<uint64_t> prompt_tokens{0};
  std::atomic<uint64_t> generated_tokens{0};
  std::atomic<uint64_t> prefix_cache_hit_tokens{0};
  std::atomic<uint64_t> prompt_tokens_computed{0};  // prompt positions run through the model (cache misses, recomputation)
  RecentRate prompt_rate;      // prompt tokens computed per second
  RecentRate generation_rate;  // tokens generated per second
  std::atomic<uint64_t> preemptions{0};
  std::atomic<uint64_t> draft_tokens{0}, accepted_draft_tokens{0};  // speculative decoding
  Histogram time_to_first_token;
  Histogram inter_token_latency;
  Histogram request_duration;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
};

}  // namespace osprey::server
