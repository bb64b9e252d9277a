#include "engine/scheduler.h"

#include <algorithm>

#include "core/log.h"
#include "engine/drafter.h"

namespace osprey {

using Clock = std::chrono::steady_clock;

std::optional<Event> GenerationRequest::next_event(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu);
  if (!cv.wait_for(lock, timeout, [this] { return !events.empty(); })) return std::nullopt;
  Event e = std::move(events.front());
  events.pop_front();
  return e;
}

namespace {

void push_event(GenerationRequest& r, Event e) {
  {
    std::lock_guard<std::mutex> lock(r.mu);
    r.events.push_back(std::move(e));
  }
  r.cv.notify_all();
}

void fail_request(GenerationRequest& r, const std::string& message) {
  Event e;
  e.done = true;
  e.error = message;
  push_event(r, std::move(e));
}

double seconds_between(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

}  // namespace

struct Scheduler::Active {
  std::shared_ptr<GenerationRequest> req;
  int seq = -1;
  uint64_t order = 0;
  std::vector<int32_t> input;  // prompt, plus generated tokens after a preemption
  int64_t fed = 0;             // tokens of `input` held in the KV cache
  int32_t next = -1;           // taken, not yet fed
  bool finished = false;
  // Speculative decoding (reply.speculation): the prompt and reply so far,
  // the drafter, and this turn's pass: `next` then the draft.
  std::vector<int32_t> history;
  std::unique_ptr<Drafter> drafter;
  std::vector<int32_t> pass;
};

Scheduler::Scheduler(BatchModel& model, const Tokenizer& tokenizer, SchedulerObserver* observer, SchedulerOptions options)
    : model_(model), tokenizer_(tokenizer), observer_(observer ? *observer : no_observer_), options_(options) {
  for (int s = model.n_seq_max() - 1; s >= 0; --s) free_slots_.push_back(s);
  thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() {
  shutdown(true);
  if (thread_.joinable()) thread_.join();
}

bool Scheduler::submit(std::shared_ptr<GenerationRequest> request) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!accepting_ || static_cast<int64_t>(waiting_.size()) >= options_.max_queue) return false;
    waiting_.push_back(std::move(request));
  }
  cv_.notify_all();
  return true;
}

void Scheduler::shutdown(bool cancel_running) {
  std::deque<std::shared_ptr<GenerationRequest>> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    accepting_ = false;
    stop_ = true;
    // A drain keeps what was accepted, queued or running: a load balancer
    // stopped sending here, and every request it already sent completes.
    // The running ones belong to the scheduler's thread, which cancels
    // them at its next turn.
    if (cancel_running) {
      dropped.swap(waiting_);
      cancel_running_ = true;
    }
  }
  for (auto& r : dropped) fail_request(*r, "the server is shutting down");
  cv_.notify_all();
}

bool Scheduler::accepting() const {
  std::lock_guard<std::mutex> lock(mu_);
  return accepting_;
}

int64_t Scheduler::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(waiting_.size());
}

int64_t Scheduler::running() const { return running_.load(); }

void Scheduler::loop() {
  for (;;) {
    bool cancel = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !active_.empty() || !waiting_.empty(); });
      if (stop_ && active_.empty() && waiting_.empty()) break;
      cancel = cancel_running_;
    }
    if (cancel)
      for (auto& a : active_) a->req->cancelled = true;
    try {
      admit();
      // With nothing running, admit() has admitted or failed every waiting
      // request, so the wait at the top of the loop does not spin.
      if (active_.empty()) continue;
      step();
    } catch (const std::exception& e) {
      fail_all_active(e.what());
    } catch (...) {
      fail_all_active("an unknown exception");
    }
    running_ = static_cast<int64_t>(active_.size());
  }
  running_ = 0;
}

// Something unexpected went wrong in a step: the sequences in it end with an
// error, their slots and KV blocks are freed, and the loop serves on.
void Scheduler::fail_all_active(const std::string& what) {
  log::error("scheduler step failed: " + what + "; failing the " + std::to_string(active_.size()) + " running request(s)");
  for (auto& a : active_)
    if (!a->finished) fail(*a, "internal error during generation");
  active_.clear();
}

void Scheduler::admit() {
  while (!free_slots_.empty()) {
    std::shared_ptr<GenerationRequest> req;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (waiting_.empty()) return;
      req = waiting_.front();
      waiting_.pop_front();
    }
    if (req->cancelled) {
      fail_request(*req, "cancelled");
      continue;
    }
    const int seq = free_slots_.back();
    auto a = std::make_unique<Active>();
    a->req = req;
    a->seq = seq;
    a->order = ++admitted_;
    a->input = req->prompt;
    if (req->step) a->input.insert(a->input.end(), req->step->generated().begin(), req->step->generated().end());
    const int64_t n = static_cast<int64_t>(a->input.size());
    // The adapters come first: the prefix cache shares blocks only between
    // sequences that run the same ones.
    if (Status st = model_.seq_set_lora(seq, req->lora); !st.ok()) {
      fail_request(*req, st.message());
      continue;
    }
    // An embedding pools over its whole input, which is computed afresh.
    a->fed = req->embed ? 0 : model_.seq_attach_prefix(seq, a->input.data(), n);
    // Admit only when the rest of the input and the first token fit beside
    // what the running sequences still need for theirs (free blocks are not
    // claimed until used). Without that reserve, a sequence admitted into
    // blocks another one is about to take was preempted at the next pass,
    // re-admitted at once, and preempted again, for ever.
    int64_t reserved = 0;
    for (const auto& r : active_)
      reserved += model_.blocks_needed(r->seq, static_cast<int64_t>(r->input.size()) - r->fed + 1);
    if (model_.blocks_needed(seq, n - a->fed + 1) + reserved > model_.available_blocks()) {
      model_.seq_clear(seq);
      if (active_.empty()) {
        fail_request(*req, "the prompt needs more KV cache than the server has");
        continue;
      }
      std::lock_guard<std::mutex> lock(mu_);
      waiting_.push_front(req);
      return;
    }
    free_slots_.pop_back();
    // A request resuming after preemption keeps its SequenceStep, and so
    // its sampler and text state.
    const bool fresh = !req->step;
    if (fresh) req->step = std::make_unique<SequenceStep>(tokenizer_, req->reply, model_.n_vocab(), req->prompt);
    if (fresh) req->n_cached = a->fed;
    observer_.admitted(fresh ? static_cast<int64_t>(req->prompt.size()) : 0, a->fed);
    if (!req->embed) a->drafter = make_drafter(req->reply.speculation, seq);
    if (a->drafter) a->history = a->input;
    active_.push_back(std::move(a));
  }
}

void Scheduler::preempt_newest() {
  auto newest = std::max_element(active_.begin(), active_.end(),
                                 [](const auto& x, const auto& y) { return x->order < y->order; });
  Active& a = **newest;
  log::warn("KV cache full: preempting a sequence; it will be recomputed");
  observer_.preempted();
  model_.seq_clear(a.seq);
  free_slots_.push_back(a.seq);
  {
    std::lock_guard<std::mutex> lock(mu_);
    waiting_.push_front(a.req);
  }
  active_.erase(newest);
}

// Ends a sequence with its last event (done set), and frees its slot.
void Scheduler::finish(Active& a, Event last) {
  last.done = true;
  push_event(*a.req, std::move(last));
  observer_.finished(seconds_between(a.req->arrival, Clock::now()));
  model_.seq_clear(a.seq);
  free_slots_.push_back(a.seq);
  a.finished = true;
}

void Scheduler::fail(Active& a, const std::string& message) {
  a.req->cancelled = true;
  Event e;
  e.error = message;
  finish(a, std::move(e));
}

// `n_past`: the positions of the cache that hold this sequence's context
// (a verifying pass also holds drafts beyond them).
void Scheduler::take_token(Active& a, const float* logits, int64_t n_past) {
  GenerationRequest& r = *a.req;
  const auto now = Clock::now();
  const bool first = r.step->n_generated() == 0;
  StepOutput out = r.step->next(logits, model_.n_ctx() - n_past);
  observer_.token(first, seconds_between(first ? r.arrival : r.last_token, now), out.token >= 0);
  r.last_token = now;
  if (out.finish == FinishReason::kError) return fail(a, out.error);
  if (out.token >= 0) {
    r.n_generated = r.step->n_generated();
    Event e;
    e.has_token = true;
    e.token = out.token;
    e.text = std::move(out.text);
    e.logprob = out.logprob;
    e.top = std::move(out.top);
    push_event(r, std::move(e));
  }
  if (!out.done) {
    a.next = out.token;
    if (a.drafter) a.history.push_back(out.token);
    return;
  }
  Event last;
  last.text = std::move(out.tail);
  // OpenAI's API has no separate reason for a full context: it is a length.
  last.finish_reason = out.finish == FinishReason::kStop ? "stop" : "length";
  finish(a, std::move(last));
}

// This turn's pass for a decoding sequence: its next token, then what
// prompt lookup drafts after it, within its context, its max_tokens and the
// free KV blocks (a draft never causes a preemption on its own).
void Scheduler::propose_draft(Active& a) {
  a.pass.assign(1, a.next);
  if (!a.drafter) return;
  const GenerationRequest& r = *a.req;
  const int64_t n_past = model_.seq_n_past(a.seq);
  int64_t limit = model_.n_ctx() - n_past - 1;
  if (r.reply.max_tokens >= 0) limit = std::min(limit, r.reply.max_tokens - r.step->n_generated() - 1);
  std::vector<int32_t> draft = a.drafter->propose(a.history, limit);
  while (!draft.empty() && model_.blocks_needed(a.seq, 1 + static_cast<int64_t>(draft.size())) > model_.available_blocks())
    draft.pop_back();
  a.pass.insert(a.pass.end(), draft.begin(), draft.end());
}

void Scheduler::step() {
  const auto now = Clock::now();
  for (auto& a : active_) {
    if (a->req->cancelled) {
      finish(*a, Event{});
    } else if (now > a->req->deadline) {
      fail(*a, "the request timed out");
    }
  }
  std::erase_if(active_, [](const auto& a) { return a->finished; });
  if (active_.empty()) return;

  std::vector<BatchItem> items;
  std::vector<Active*> owners;
  for (auto& a : active_) {
    if (a->fed == static_cast<int64_t>(a->input.size()) && a->next >= 0) {
      propose_draft(*a);
      items.push_back({a->seq, a->pass.data(), static_cast<int64_t>(a->pass.size()), true, a->pass.size() > 1});
      owners.push_back(a.get());
    }
  }
  int64_t budget = options_.prefill_chunk;
  for (auto& a : active_) {
    const int64_t left = static_cast<int64_t>(a->input.size()) - a->fed;
    if (left <= 0 || budget <= 0) continue;
    // An encoder reads an input whole, in one pass, whatever the budget.
    const int64_t take = a->req->embed && !model_.causal() ? left : std::min(left, budget);
    budget -= take;
    if (a->req->embed) items.push_back({a->seq, a->input.data() + a->fed, take, false, false, take == left});
    else items.push_back({a->seq, a->input.data() + a->fed, take, take == left});
    owners.push_back(a.get());
  }
  if (items.empty()) return;

  auto logits = model_.eval_batch(items.data(), items.size());
  if (!logits.ok()) {
    if (logits.status().code() == ErrorCode::kOutOfRange && active_.size() > 1) {
      preempt_newest();
      return;
    }
    log::error("forward pass failed: " + logits.status().message());
    for (Active* a : owners) fail(*a, logits.status().message());
    std::erase_if(active_, [](const auto& a) { return a->finished; });
    return;
  }
  const int64_t V = model_.n_vocab();
  int64_t row = 0, embed_row = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    Active& a = *owners[i];
    const bool decode = items[i].tokens == a.pass.data() && !a.pass.empty();
    if (!decode) {
      a.fed += items[i].n;
      observer_.prompt_computed(items[i].n);
    }
    if (items[i].embed) {
      const int64_t E = model_.n_embd();
      const float* e = model_.embeddings() + embed_row++ * E;
      Event done;
      done.embedding.assign(e, e + E);
      done.finish_reason = "stop";
      finish(a, std::move(done));
      continue;
    }
    if (!items[i].logits) continue;
    const int64_t n_rows = items[i].all_logits ? items[i].n : 1;
    const float* rows = *logits + row * V;
    row += n_rows;
    if (a.req->cancelled) continue;
    a.next = -1;
    if (!decode) {
      take_token(a, rows, model_.seq_n_past(a.seq));
      continue;
    }
    // The pass holds `next` and then the draft: each chosen token that
    // matches the draft's next token already has its logits in the pass.
    const int64_t start = model_.seq_n_past(a.seq) - n_rows;  // before the pass
    const int64_t drafted = n_rows - 1;
    int64_t accepted = 0;
    take_token(a, rows, start + 1);
    while (!a.finished && accepted < drafted && a.next == a.pass[1 + accepted]) {
      ++accepted;
      a.next = -1;
      take_token(a, rows + accepted * V, start + 1 + accepted);
    }
    if (drafted > 0) {
      observer_.speculated(drafted, accepted);
      a.drafter->feedback(static_cast<int>(drafted), static_cast<int>(accepted));
      // The cache forgets the drafts that were not taken.
      if (!a.finished && accepted < drafted) model_.seq_truncate(a.seq, start + 1 + accepted);
    }
    a.pass.clear();
  }
  std::erase_if(active_, [](const auto& a) { return a->finished; });
}

}  // namespace osprey
