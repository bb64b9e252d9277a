// Continuous batching. One thread owns the model and loops: admit waiting
// requests into free sequence slots, run one forward pass holding a token of
// every decoding sequence plus a bounded chunk of prompt for those still
// reading theirs, let each sequence's SequenceStep take its token, deliver,
// and drop finished or cancelled sequences at once. A request that does not
// fit waits; if the KV pool runs dry mid-generation, the newest sequence is
// preempted and later recomputed, which gives identical results because rows
// do not depend on the batch and its SequenceStep carries on where it was.
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

#include "engine/batch_model.h"
#include "engine/sequence_step.h"
#include "tokenizer/tokenizer.h"

namespace osprey {

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
  std::vector<float> embedding;  // an embedding request's result, with done (pooled, not normalised)
};

struct GenerationRequest {
  std::vector<int32_t> prompt;
  ReplyOptions reply;
  // Embed the prompt instead of generating: the one event carries the
  // pooled embedding. It shares passes with generating sequences.
  bool embed = false;
  // Each loaded LoRA adapter's scale for this request, in load order
  // (empty: the scales the model was loaded with).
  std::vector<float> lora;
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();

  // Filled by the scheduler; read by the connection.
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Event> events;
  std::atomic<bool> cancelled{false};
  std::chrono::steady_clock::time_point arrival = std::chrono::steady_clock::now();
  std::atomic<int64_t> n_generated{0};
  std::atomic<int64_t> n_cached{0};  // prompt tokens found in the prefix cache when admitted

  // Owned by the scheduler thread: the reply's state, kept across a preemption.
  std::unique_ptr<SequenceStep> step;
  std::chrono::steady_clock::time_point last_token;

  // Blocks up to `timeout` for the next event.
  std::optional<Event> next_event(std::chrono::milliseconds timeout);
};

// What the scheduler reports as it works (the server's /metrics); every
// method is called on the scheduler's thread.
class SchedulerObserver {
 public:
  virtual ~SchedulerObserver() = default;
  virtual void admitted(int64_t /*new_prompt_tokens*/, int64_t /*prefix_hit_tokens*/) {}
  virtual void prompt_computed(int64_t /*tokens*/) {}
  // A token was taken: `seconds` since arrival for the first, else since the
  // previous one; `in_reply` false for the end-of-generation token.
  virtual void token(bool /*first*/, double /*seconds*/, bool /*in_reply*/) {}
  virtual void preempted() {}
  // Speculative decoding: a pass verified `drafted` tokens, of which the
  // chosen tokens matched the first `accepted`.
  virtual void speculated(int64_t /*drafted*/, int64_t /*accepted*/) {}
  virtual void finished(double /*seconds_since_arrival*/) {}
};

struct SchedulerOptions {
  int64_t max_queue = 64;      // waiting requests beyond the running ones
  int64_t prefill_chunk = 64;  // prompt tokens per step, shared by all prefilling sequences
};

class Scheduler {
 public:
  // `observer` may be null.
  Scheduler(BatchModel& model, const Tokenizer& tokenizer, SchedulerObserver* observer, SchedulerOptions options);
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
  void step();  // one batched forward pass over the active sequences
  void finish(Active& a, Event last);
  void fail(Active& a, const std::string& message);
  void take_token(Active& a, const float* logits, int64_t n_past);
  void propose_draft(Active& a);
  void preempt_newest();
  void fail_all_active(const std::string& what);

  BatchModel& model_;
  const Tokenizer& tokenizer_;
  SchedulerObserver no_observer_;
  SchedulerObserver& observer_;
  SchedulerOptions options_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<GenerationRequest>> waiting_;
  std::vector<std::unique_ptr<Active>> active_;  // only the scheduler's thread touches it
  std::vector<int> free_slots_;
  std::atomic<int64_t> running_{0};
  uint64_t admitted_ = 0;  // admission counter: the newest sequence is preempted first
  bool accepting_ = true;
  bool stop_ = false;
  bool cancel_running_ = false;  // shutdown(true): the loop cancels what runs
  std::thread thread_;
};

}  // namespace osprey
