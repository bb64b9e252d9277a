#include "server/metrics.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>

namespace osprey::server {

int64_t resident_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  long long pages = 0, resident = 0;
  const int n = std::fscanf(f, "%lld %lld", &pages, &resident);
  std::fclose(f);
  return n == 2 ? resident * static_cast<int64_t>(sysconf(_SC_PAGESIZE)) : 0;
}
namespace {

std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

void scalar(std::string& out, const std::string& name, const char* type, const std::string& help, double value) {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " + number(value) + "\n";
}

}  // namespace

int64_t RecentRate::now_second() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void RecentRate::add(uint64_t n) {
  const int64_t sec = now_second();
  const int slot = static_cast<int>(sec % kRing);
  std::lock_guard<std::mutex> lock(mu_);
  if (seconds_[slot] != sec) {
    seconds_[slot] = sec;
    counts_[slot] = 0;
  }
  counts_[slot] += n;
}

double RecentRate::per_second() const {
  // The current second is still filling, so the window is the kSeconds before it.
  const int64_t sec = now_second();
  uint64_t total = 0;
  std::lock_guard<std::mutex> lock(mu_);
  for (int64_t s = sec - kSeconds; s < sec; ++s) {
    const int slot = static_cast<int>(((s % kRing) + kRing) % kRing);
    if (seconds_[slot] == s) total += counts_[slot];
  }
  return static_cast<double>(total) / kSeconds;
}

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  std::lock_guard<std::mutex> lock(mu_);
  size_t b = 0;
  while (b < bounds_.size() && value > bounds_[b]) ++b;
  ++counts_[b];
  sum_ += value;
  ++count_;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& help) const {
  std::lock_guard<std::mutex> lock(mu_);
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
  uint64_t cumulative = 0;
  for (size_t b = 0; b < bounds_.size(); ++b) {
    cumulative += counts_[b];
    out += name + "_bucket{le=\"" + number(bounds_[b]) + "\"} " + std::to_string(cumulative) + "\n";
  }
  out += name + "_bucket{le=\"+Inf\"} " + std::to_string(count_) + "\n";
  out += name + "_sum " + number(sum_) + "\n" + name + "_count " + std::to_string(count_) + "\n";
}

Metrics::Metrics()
    : time_to_first_token({0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}),
      inter_token_latency({0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2}),
      request_duration({0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120}) {}

void Metrics::admitted(int64_t new_prompt_tokens, int64_t prefix_hit_tokens) {
  prompt_tokens += static_cast<uint64_t>(new_prompt_tokens);
  prefix_cache_hit_tokens += static_cast<uint64_t>(prefix_hit_tokens);
}

void Metrics::prompt_computed(int64_t tokens) {
  prompt_tokens_computed += static_cast<uint64_t>(tokens);
  prompt_rate.add(static_cast<uint64_t>(tokens));
}

void Metrics::token(bool first, double seconds, bool in_reply) {
  (first ? time_to_first_token : inter_token_latency).observe(seconds);
  if (!in_reply) return;
  generated_tokens++;
  generation_rate.add(1);
}

void Metrics::count_request(const std::string& endpoint, int status) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{endpoint, status}];
}

std::string Metrics::render(const Gauges& g) const {
  std::string out;
  out += "# HELP osprey_requests_total HTTP requests answered, by endpoint and status.\n"
         "# TYPE osprey_requests_total counter\n";
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [key, n] : requests_)
      out += "osprey_requests_total{endpoint=\"" + key.first + "\",status=\"" + std::to_string(key.second) + "\"} " +
             std::to_string(n) + "\n";
  }
  scalar(out, "osprey_prompt_tokens_total", "counter", "Prompt tokens received.", static_cast<double>(prompt_tokens.load()));
  scalar(out, "osprey_generated_tokens_total", "counter", "Tokens generated.", static_cast<double>(generated_tokens.load()));
  scalar(out, "osprey_prefix_cache_hit_tokens_total", "counter", "Prompt tokens served from the prefix cache.",
         static_cast<double>(prefix_cache_hit_tokens.load()));
  scalar(out, "osprey_prompt_tokens_computed_total", "counter",
         "Prompt positions run through the model: those not found in the prefix cache, and recomputed ones.",
         static_cast<double>(prompt_tokens_computed.load()));
  scalar(out, "osprey_preemptions_total", "counter", "Sequences preempted for lack of KV cache.",
         static_cast<double>(preemptions.load()));
  scalar(out, "osprey_speculative_draft_tokens_total", "counter", "Tokens drafted by speculative decoding and verified.",
         static_cast<double>(draft_tokens.load()));
  scalar(out, "osprey_speculative_accepted_tokens_total", "counter",
         "Drafted tokens that the model's own choice matched (each saved a forward pass).",
         static_cast<double>(accepted_draft_tokens.load()));
  {
    const double hit = static_cast<double>(prefix_cache_hit_tokens.load());
    const double computed = static_cast<double>(prompt_tokens_computed.load());
    scalar(out, "osprey_prefix_cache_hit_ratio", "gauge",
           "Share of prompt positions served from the prefix cache rather than computed, since start.",
           hit + computed > 0 ? hit / (hit + computed) : 0.0);
  }
  out += "# HELP osprey_tokens_per_second Tokens processed per second over the last " +
         std::to_string(RecentRate::kSeconds) + " seconds, by phase.\n# TYPE osprey_tokens_per_second gauge\n";
  out += "osprey_tokens_per_second{phase=\"prompt\"} " + number(prompt_rate.per_second()) + "\n";
  out += "osprey_tokens_per_second{phase=\"generation\"} " + number(generation_rate.per_second()) + "\n";
  time_to_first_token.render(out, "osprey_time_to_first_token_seconds", "From arrival to the first generated token.");
  inter_token_latency.render(out, "osprey_inter_token_latency_seconds", "Between consecutive tokens of a sequence.");
  request_duration.render(out, "osprey_request_duration_seconds", "From arrival to the last token.");
  scalar(out, "osprey_queue_depth", "gauge", "Requests waiting for a sequence slot.", static_cast<double>(g.queued));
  scalar(out, "osprey_running_sequences", "gauge", "Sequences being generated.", static_cast<double>(g.running));
  scalar(out, "osprey_kv_blocks_used", "gauge", "KV cache blocks held by running sequences.", static_cast<double>(g.kv_blocks_used));
  scalar(out, "osprey_kv_blocks_cached", "gauge", "Unused KV blocks kept for prefix reuse.", static_cast<double>(g.kv_blocks_cached));
  scalar(out, "osprey_kv_blocks_total", "gauge", "KV cache blocks in the pool.", static_cast<double>(g.kv_blocks_total));
  scalar(out, "osprey_kv_tokens_total", "gauge", "Positions the KV pool holds.",
         static_cast<double>(g.kv_tokens_total));
  scalar(out, "osprey_kv_cache_bytes", "gauge", "Memory of the KV cache, sliding-window pools included.",
         static_cast<double>(g.kv_bytes));
  scalar(out, "osprey_open_connections", "gauge", "HTTP connections open, idle ones included.",
         static_cast<double>(g.open_connections));
  scalar(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
         static_cast<double>(resident_bytes()));
  scalar(out, "osprey_draining", "gauge", "1 once SIGTERM has been received: running requests finish, no new ones are wanted.",
         g.draining ? 1.0 : 0.0);
  scalar(out, "osprey_kv_cache_usage_ratio", "gauge", "Share of KV blocks held by running sequences.",
         g.kv_blocks_total > 0 ? static_cast<double>(g.kv_blocks_used) / static_cast<double>(g.kv_blocks_total) : 0.0);
  return out;
}

}  // namespace osprey::server
