#include "sampling/sampler.h"

#include "sampling/descending_order.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <unordered_map>

namespace osprey {

Status SamplingParams::validate(int32_t n_vocab) const {
  auto finite = [](float v) { return std::isfinite(v); };
  if (!finite(temperature) || temperature < 0 || temperature > 100)
    return InvalidArgument("temperature must be between 0 and 100");
  if (top_k < 0) return InvalidArgument("top_k must be >= 0");
  if (!finite(top_p) || top_p <= 0 || top_p > 1) return InvalidArgument("top_p must be in (0, 1]");
  if (!finite(min_p) || min_p < 0 || min_p > 1) return InvalidArgument("min_p must be in [0, 1]");
  if (!finite(repeat_penalty) || repeat_penalty <= 0 || repeat_penalty > 100)
    return InvalidArgument("repeat_penalty must be in (0, 100]");
  if (!finite(frequency_penalty) || std::fabs(frequency_penalty) > 100)
    return InvalidArgument("frequency_penalty must be between -100 and 100");
  if (!finite(presence_penalty) || std::fabs(presence_penalty) > 100)
    return InvalidArgument("presence_penalty must be between -100 and 100");
  if (penalty_last_n < -1) return InvalidArgument("penalty_last_n must be >= -1");
  for (const auto& [id, bias] : logit_bias) {
    if (id < 0 || id >= n_vocab) return InvalidArgument("logit_bias token id " + std::to_string(id) + " is outside the vocabulary");
    if (std::isnan(bias)) return InvalidArgument("logit_bias value for token " + std::to_string(id) + " is NaN");
  }
  return Status::Ok();
}

namespace sampling {

void apply_penalties(std::vector<TokenCandidate>& c, const std::vector<int32_t>& recent, const SamplingParams& p) {
  if (recent.empty() || !p.penalises()) return;
  std::unordered_map<int32_t, int> counts;
  for (int32_t t : recent) ++counts[t];
  // Candidates are indexed by id before any stage reorders them.
  for (const auto& [id, n] : counts) {
    if (id < 0 || id >= static_cast<int32_t>(c.size())) continue;
    float& l = c[id].logit;
    l = l > 0 ? l / p.repeat_penalty : l * p.repeat_penalty;
    l -= n * p.frequency_penalty + p.presence_penalty;
  }
}

void top_k(std::vector<TokenCandidate>& c, int32_t k) {
  if (k <= 0 || k >= static_cast<int32_t>(c.size())) return;
  // The sampler's order, as the walk in draw() and nucleus() follows it.
  auto by_logit = [](const TokenCandidate& a, const TokenCandidate& b) {
    const uint32_t ka = descending_key(a.logit), kb = descending_key(b.logit);
    return ka < kb || (ka == kb && a.id < b.id);
  };
  std::partial_sort(c.begin(), c.begin() + k, c.end(), by_logit);
  c.resize(k);
}

namespace {

// Fills each candidate's p with exp(logit - max) and returns the sum, in
// double. -inf and NaN logits get 0. With no finite logit there is no
// distribution and the sum is 0; +inf ones, if any, share it all.
double exponentials(std::vector<TokenCandidate>& c) {
  float max = -INFINITY;
  for (const auto& t : c)
    if (t.logit > max) max = t.logit;
  double sum = 0;
  if (max == -INFINITY) return sum;
  for (auto& t : c) sum += (t.p = t.logit == max ? 1.0f : t.logit > -INFINITY ? std::exp(t.logit - max) : 0.0f);
  return sum;
}

}  // namespace

void nucleus(std::vector<TokenCandidate>& c, float top_p, float min_p, DescendingOrder& order) {
  const double sum = exponentials(c);
  if (sum == 0) return;  // nothing finite to choose between: the draw takes the first in order
  order.reset(c);
  thread_local std::vector<TokenCandidate> kept;
  kept.clear();
  double cum = 0;
  float threshold = 0;
  for (int64_t i; (i = order.next()) >= 0;) {
    TokenCandidate t = c[i];
    t.p = static_cast<float>(t.p / sum);
    if (kept.empty()) threshold = t.p * min_p;
    else if (t.p == 0.0f || t.p < threshold) break;  // and so is every later one
    kept.push_back(t);
    cum += t.p;
    if (top_p < 1.0f && cum >= top_p) break;
  }
  c.assign(kept.begin(), kept.end());
}

void temperature(std::vector<TokenCandidate>& c, float t) {
  for (auto& x : c) x.logit /= t;
}

int32_t draw(std::vector<TokenCandidate>& c, double r, DescendingOrder& order) {
  const double sum = exponentials(c);
  order.reset(c);
  int32_t chosen = -1;
  double cum = 0;
  for (int64_t i; (i = order.next()) >= 0;) {
    if (chosen >= 0 && c[i].p == 0.0f) break;  // the rest have probability 0 as well
    chosen = c[i].id;
    cum += static_cast<float>(c[i].p / sum);
    if (r < cum) break;
  }
  if (chosen >= 0) return chosen;
  // Nothing can be drawn (every logit -inf or NaN): the first in order.
  size_t first = 0;
  uint32_t first_key = descending_key(c[0].logit);
  for (size_t i = 1; i < c.size(); ++i) {
    const uint32_t key = descending_key(c[i].logit);
    if (key < first_key || (key == first_key && c[i].id < c[first].id)) first = i, first_key = key;
  }
  return c[first].id;
}

int32_t argmax(const float* logits, int32_t n) {
  int32_t best = 0;
  for (int32_t i = 1; i < n; ++i)
    if (logits[i] > logits[best]) best = i;
  return best;
}

}  // namespace sampling

Sampler::Sampler(SamplingParams params, int32_t n_vocab)
    : params_(std::move(params)), n_vocab_(n_vocab), rng_(params_.seed) {
  cand_.reserve(n_vocab);
}

void Sampler::reset() {
  history_.clear();
  rng_.seed(params_.seed);
}

void Sampler::accept(int32_t token) {
  history_.push_back(token);
  // Bound the history so that a long generation does not grow it forever.
  const size_t cap = params_.penalty_last_n < 0 ? (1u << 20) : static_cast<size_t>(params_.penalty_last_n);
  if (history_.size() > 2 * cap + 64) history_.erase(history_.begin(), history_.end() - cap);
}

double Sampler::uniform() { return static_cast<double>(rng_() >> 11) * (1.0 / 9007199254740992.0); }

int32_t Sampler::sample(const float* logits) {
  // Plain greedy decoding needs no candidate list: its argmax over the
  // logits themselves is the same comparison over the same values, without
  // copying the whole vocabulary every token (a visible share of a small
  // model's decode step, in wasm most of all).
  if (params_.greedy() && params_.logit_bias.empty() && !params_.penalises()) return sampling::argmax(logits, n_vocab_);
  cand_.resize(n_vocab_);
  for (int32_t i = 0; i < n_vocab_; ++i) cand_[i] = {i, logits[i], 0.0f};
  for (const auto& [id, bias] : params_.logit_bias) cand_[id].logit += bias;
  recent_.clear();
  if (params_.penalty_last_n != 0) {
    const size_t n = params_.penalty_last_n < 0 ? history_.size()
                                                : std::min<size_t>(history_.size(), params_.penalty_last_n);
    recent_.assign(history_.end() - n, history_.end());
  }
  sampling::apply_penalties(cand_, recent_, params_);
  if (params_.greedy()) {
    int32_t best = 0;
    for (int32_t i = 1; i < n_vocab_; ++i)
      if (cand_[i].logit > cand_[best].logit) best = i;
    return best;
  }
  sampling::top_k(cand_, params_.top_k);
  if (params_.top_p < 1.0f || params_.min_p > 0.0f) sampling::nucleus(cand_, params_.top_p, params_.min_p, order_);
  sampling::temperature(cand_, params_.temperature);
  return sampling::draw(cand_, uniform(), order_);
}

}  // namespace osprey
