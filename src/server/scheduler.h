// Continuous batching. One thread owns the model and loops: admit waiting
// requests into free sequence slots, run one forward pass holding a token of
// every decoding sequence plus a bounded chunk of prompt for those still
// reading theirs, sample, deliver, and drop finished or cancelled sequences
// at once. A request that does not fit waits; if the KV pool runs dry
// mid-generation, the newest sequence is preempted and later recomputed,
// which gives identical results because rows do not depend on the batch.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "engine/generator.h"
#include "grammar/token_constraint.h"
#include "models/model.h"
#include "sampling/sampler.h"
#include "server/metrics.h"
#include "tokenizer/detokenizer.h"
#include "tokenizer/tokenizer.h"

namespace osprey::server {

struct TopLogprob {
  std::string token;
  float logprob;
};

// One step of output delivered to the waiting connection.
struct Event {
  std::string text;  // may be empty while a character or stop match is pending
  int32_t token = -1;
  float logprob = 0;
  std::vector<TopLogprob> top;
  bool has_token = false;
  bool done = false;
  std::string finish_reason;  // "stop" or "length" when done
  std::string error;          // set when the request failed
};

// What a preempted sequence keeps so that it resumes exactly where it was.
struct ResumeState {
  std::unique_ptr<Sampler> sampler;
  std::unique_ptr<StreamDetokenizer> detok;
  std::string held;
  std::chrono::steady_clock::time_point last_token;
};

struct GenerationRequest {
  std::vector<int32_t> prompt;
  SamplingParams sampling;
  int64_t max_tokens = 256;
  std::vector<std::string> stop;
  int top_logprobs = -1;  // -1: no logprobs
  // Structured output: the tokens the reply may take next (null: any).
  std::shared_ptr<grammar::TokenConstraint> constraint;
  std::string constraint_after;  // non-empty: the constraint applies once the reply holds this text
  std::vector<int32_t> render_tokens;  // control tokens whose text the reply shows
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();

  // Filled by the scheduler; read by the connection.
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Event> events;
  std::atomic<bool> cancelled{false};
  std::chrono::steady_clock::time_point arrival = std::chrono::steady_clock::now();

  // Owned by the scheduler thread.
  int64_t n_prompt = 0, n_generated = 0;
  std::vector<int32_t> generated_so_far;
  std::unique_ptr<ResumeState> state;

  // Blocks up to `timeout` for the next event.
  std::optional<Event> next_event(std::chrono::milliseconds timeout);
};

struct SchedulerOptions {
  int64_t max_queue = 64;     // waiting requests beyond the running ones
  int64_t prefill_chunk = 64;  // prompt tokens per step, shared by all prefilling sequences
};

class Scheduler {
 public:
  Scheduler(Model& model, const Tokenizer& tokenizer, Metrics& metrics, SchedulerOptions options);
  ~Scheduler();

  // Queues a request; false when the queue is full or the scheduler is
  // shutting down (accepting() tells which; the caller answers 429 or 503).
  bool submit(std::shared_ptr<GenerationRequest> request);
  // Stops admitting. A drain (`cancel_running` false) still generates every
  // request already queued or running; otherwise those are cancelled.
  void shutdown(bool cancel_running);
  bool accepting() const;
  int64_t queued() const;
  int64_t running() const;

 private:
  struct Active;
  void loop();
  void admit();
  bool step();
  void finish(Active& a, const std::string& reason);
  void deliver(Active& a, int32_t token, const float* logits);
  void preempt_newest();
  void fail_all_active(const std::string& what);

  Model& model_;
  const Tokenizer& tokenizer_;
  Metrics& metrics_;
  SchedulerOptions options_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<GenerationRequest>> waiting_;
  std::vector<std::unique_ptr<Active>> active_;
  std::vector<int> free_slots_;
  std::atomic<int64_t> running_{0};
  uint64_t admitted_ = 0;  // admission counter: the newest sequence is preempted first
  bool accepting_ = true;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace osprey::server
