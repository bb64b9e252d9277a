#include "server/scheduler.h"

#include <algorithm>
#include <cmath>

#include "core/log.h"

namespace osprey::server {

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

// Length of the longest suffix of `text` that begins some stop string: that
// much must be held back until the next token decides.
size_t partial_stop_suffix(const std::string& text, const std::vector<std::string>& stops) {
  size_t best = 0;
  for (const std::string& s : stops) {
    for (size_t len = std::min(s.size() - 1, text.size()); len > best; --len) {
      if (text.compare(text.size() - len, len, s, 0, len) == 0) {
        best = len;
        break;
      }
    }
  }
  return best;
}

}  // namespace

struct Scheduler::Active {
  std::shared_ptr<GenerationRequest> req;
  int seq = -1;
  uint64_t order = 0;
  std::vector<int32_t> input;  // prompt, plus generated tokens after a preemption
  int64_t fed = 0;             // tokens of `input` held in the KV cache
  int32_t next = -1;           // sampled, not yet fed
  std::unique_ptr<Sampler> sampler;
  std::unique_ptr<StreamDetokenizer> detok;
  std::string held;  // text held back while it may begin a stop string
  std::string before_constraint;  // the reply so far, while the constraint waits for its trigger
  std::deque<int32_t> forced;     // tokens to emit next without sampling (the trigger, when time runs out)
  std::vector<int32_t> trigger;   // the trigger and a paragraph break, as tokens (made once, when first needed)
  Clock::time_point last_token;
  bool finished = false;
};

Scheduler::Scheduler(Model& model, const Tokenizer& tokenizer, Metrics& metrics, SchedulerOptions options)
    : model_(model), tokenizer_(tokenizer), metrics_(metrics), options_(options) {
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
    if (cancel_running) {
      dropped.swap(waiting_);
      for (auto& a : active_) a->req->cancelled = true;
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
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !active_.empty() || !waiting_.empty(); });
      if (stop_ && active_.empty() && waiting_.empty()) break;
    }
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
  for (auto& a : active_) {
    if (a->finished) continue;
    fail_request(*a->req, "internal error during generation");
    a->req->cancelled = true;
    finish(*a, "cancelled");
  }
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
    a->input.insert(a->input.end(), req->generated_so_far.begin(), req->generated_so_far.end());
    const int64_t n = static_cast<int64_t>(a->input.size());
    a->fed = model_.seq_attach_prefix(seq, a->input.data(), n);
    // Admit only when the rest of the input and the first token fit now.
    if (model_.blocks_needed(seq, n - a->fed + 1) > model_.kv().available_blocks()) {
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
    metrics_.prefix_cache_hit_tokens += static_cast<uint64_t>(a->fed);
    if (req->state) {
      // Resuming after preemption: the sampler and text state carry on.
      a->sampler = std::move(req->state->sampler);
      a->detok = std::move(req->state->detok);
      a->held = std::move(req->state->held);
      a->last_token = req->state->last_token;
      req->state.reset();
    } else {
      a->sampler = std::make_unique<Sampler>(req->sampling, static_cast<int32_t>(model_.config().n_vocab));
      for (int32_t t : req->prompt) a->sampler->accept(t);
      a->detok = std::make_unique<StreamDetokenizer>(tokenizer_);
      a->detok->push_context(req->prompt);
      req->n_prompt = static_cast<int64_t>(req->prompt.size());
      metrics_.prompt_tokens += static_cast<uint64_t>(req->prompt.size());
    }
    active_.push_back(std::move(a));
  }
}

void Scheduler::preempt_newest() {
  auto newest = std::max_element(active_.begin(), active_.end(),
                                 [](const auto& x, const auto& y) { return x->order < y->order; });
  Active& a = **newest;
  log::warn("KV cache full: preempting a sequence; it will be recomputed");
  metrics_.preemptions++;
  auto state = std::make_unique<ResumeState>();
  state->sampler = std::move(a.sampler);
  state->detok = std::move(a.detok);
  state->held = std::move(a.held);
  state->last_token = a.last_token;
  a.req->state = std::move(state);
  model_.seq_clear(a.seq);
  free_slots_.push_back(a.seq);
  {
    std::lock_guard<std::mutex> lock(mu_);
    waiting_.push_front(a.req);
  }
  active_.erase(newest);
}

void Scheduler::finish(Active& a, const std::string& reason) {
  GenerationRequest& r = *a.req;
  Event e;
  e.done = true;
  if (reason == "error") {
    e.error = "generation failed";
  } else if (reason != "cancelled") {
    e.finish_reason = reason;
    // A stop string ends the text where it starts; otherwise flush what is held.
    if (reason != "stop_string") e.text = a.held + a.detok->flush();
    if (reason == "stop_string") e.finish_reason = "stop";
  }
  push_event(r, std::move(e));
  metrics_.request_duration.observe(std::chrono::duration<double>(Clock::now() - r.arrival).count());
  model_.seq_clear(a.seq);
  free_slots_.push_back(a.seq);
  a.finished = true;
}

void Scheduler::deliver(Active& a, int32_t token, const float* logits) {
  GenerationRequest& r = *a.req;
  const auto now = Clock::now();
  if (r.n_generated == 0 && r.generated_so_far.empty())
    metrics_.time_to_first_token.observe(std::chrono::duration<double>(now - r.arrival).count());
  else
    metrics_.inter_token_latency.observe(std::chrono::duration<double>(now - a.last_token).count());
  a.last_token = now;
  if (tokenizer_.vocab().is_end_of_generation(token)) {
    finish(a, "stop");
    return;
  }
  r.n_generated++;
  r.generated_so_far.push_back(token);
  metrics_.generated_tokens++;
  metrics_.generation_rate.add(1);

  Event e;
  e.has_token = true;
  e.token = token;
  if (r.top_logprobs >= 0) {
    // Log-probabilities of the model's own distribution (before sampling settings).
    const int64_t V = model_.config().n_vocab;
    float max = logits[0];
    for (int64_t i = 1; i < V; ++i) max = std::max(max, logits[i]);
    double sum = 0;
    for (int64_t i = 0; i < V; ++i) sum += std::exp(static_cast<double>(logits[i] - max));
    const float log_z = max + static_cast<float>(std::log(sum));
    e.logprob = logits[token] - log_z;
    if (r.top_logprobs > 0) {
      std::vector<int32_t> ids(static_cast<size_t>(V));
      for (int64_t i = 0; i < V; ++i) ids[static_cast<size_t>(i)] = static_cast<int32_t>(i);
      const size_t k = std::min<size_t>(static_cast<size_t>(r.top_logprobs), ids.size());
      std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(k), ids.end(),
                        [&](int32_t x, int32_t y) { return logits[x] > logits[y] || (logits[x] == logits[y] && x < y); });
      for (size_t i = 0; i < k; ++i)
        e.top.push_back({tokenizer_.token_bytes(ids[i]), logits[ids[i]] - log_z});
    }
  }

  std::string piece = a.detok->push(token);
  if (std::find(r.render_tokens.begin(), r.render_tokens.end(), token) != r.render_tokens.end())
    piece += tokenizer_.vocab().text_of(token);
  if (!r.constraint_after.empty()) {
    // Once the trigger has been written, the constraint applies from the next token.
    a.before_constraint += piece;
    if (a.before_constraint.find(r.constraint_after) != std::string::npos) {
      r.constraint_after.clear();
      a.before_constraint.clear();
    } else if (a.before_constraint.size() > 4 * r.constraint_after.size() + 64) {
      a.before_constraint.erase(0, a.before_constraint.size() - r.constraint_after.size());
    }
  }
  a.held += piece;
  for (const std::string& s : r.stop) {
    const size_t at = a.held.find(s);
    if (at != std::string::npos) {
      e.text = a.held.substr(0, at);
      push_event(r, std::move(e));
      finish(a, "stop_string");
      return;
    }
  }
  const size_t keep = partial_stop_suffix(a.held, r.stop);
  e.text = a.held.substr(0, a.held.size() - keep);
  a.held.erase(0, a.held.size() - keep);
  push_event(r, std::move(e));

  if (r.n_generated >= r.max_tokens || model_.seq_n_past(a.seq) + 1 > model_.n_ctx()) {
    finish(a, "length");
    return;
  }
  a.next = token;
}

bool Scheduler::step() {
  const auto now = Clock::now();
  for (auto& a : active_) {
    if (a->req->cancelled) finish(*a, "cancelled");
    else if (now > a->req->deadline) {
      Event e;
      e.done = true;
      e.error = "the request timed out";
      push_event(*a->req, std::move(e));
      a->req->cancelled = true;
      finish(*a, "cancelled");
    }
  }
  std::erase_if(active_, [](const auto& a) { return a->finished; });
  if (active_.empty()) return false;

  std::vector<BatchItem> items;
  std::vector<Active*> owners;
  for (auto& a : active_) {
    if (a->fed == static_cast<int64_t>(a->input.size()) && a->next >= 0) {
      items.push_back({a->seq, &a->next, 1, true});
      owners.push_back(a.get());
    }
  }
  int64_t budget = options_.prefill_chunk;
  for (auto& a : active_) {
    const int64_t left = static_cast<int64_t>(a->input.size()) - a->fed;
    if (left <= 0 || budget <= 0) continue;
    const int64_t take = std::min(left, budget);
    budget -= take;
    items.push_back({a->seq, a->input.data() + a->fed, take, take == left});
    owners.push_back(a.get());
  }
  if (items.empty()) return false;

  auto logits = model_.eval_batch(items.data(), items.size());
  if (!logits.ok()) {
    if (logits.status().code() == ErrorCode::kOutOfRange && active_.size() > 1) {
      preempt_newest();
      return true;
    }
    log::error("forward pass failed: " + logits.status().message());
    for (Active* a : owners) {
      fail_request(*a->req, logits.status().message());
      a->req->cancelled = true;
      finish(*a, "cancelled");
    }
    std::erase_if(active_, [](const auto& a) { return a->finished; });
    return false;
  }
  const int64_t V = model_.config().n_vocab;
  int64_t row = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    Active& a = *owners[i];
    if (items[i].tokens != &a.next) {
      a.fed += items[i].n;
      metrics_.prompt_tokens_computed += static_cast<uint64_t>(items[i].n);
      metrics_.prompt_rate.add(static_cast<uint64_t>(items[i].n));
    }
    if (!items[i].logits) continue;
    const float* l = *logits + row * V;
    ++row;
    if (a.req->cancelled) continue;
    int32_t token;
    const int64_t budget = std::min(a.req->max_tokens - a.req->n_generated, model_.n_ctx() - model_.seq_n_past(a.seq));
    if (a.req->constraint && !a.req->constraint_after.empty() && a.forced.empty()) {
      // Still in the reasoning: when only the answer's shortest completion
      // (and the trigger) still fit, the trigger is written for the model.
      if (a.trigger.empty()) a.trigger = tokenizer_.encode(a.req->constraint_after + "\n\n", false, true);
      if (budget <= static_cast<int64_t>(a.req->constraint->min_remaining() + a.trigger.size()) + 2)
        a.forced.assign(a.trigger.begin(), a.trigger.end());
    }
    if (!a.forced.empty()) {
      token = a.forced.front();
      a.forced.pop_front();
    } else if (a.req->constraint && a.req->constraint_after.empty()) {
      // Drawn from the grammar's allowed tokens; logprobs still report the
      // model's own distribution.
      token = a.req->constraint->next(l, budget, [&](const float* masked) { return a.sampler->sample(masked); });
      if (token < 0) {
        fail_request(*a.req, "no token of the vocabulary can continue the requested grammar here");
        a.req->cancelled = true;
        finish(a, "cancelled");
        continue;
      }
    } else {
      token = a.sampler->sample(l);
    }
    a.sampler->accept(token);
    a.next = -1;
    deliver(a, token, l);
  }
  std::erase_if(active_, [](const auto& a) { return a->finished; });
  return true;
}

}  // namespace osprey::server
