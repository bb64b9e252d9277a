#include "sampling/sampler.h"

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
  if (recent.empty() || (p.repeat_penalty == 1.0f && p.frequency_penalty == 0.0f && p.presence_penalty == 0.0f))
    return;
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
  auto by_logit = [](const TokenCandidate& a, const TokenCandidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  };
  std::partial_sort(c.begin(), c.begin() + k, c.end(), by_logit);
  c.resize(k);
}

// Orders candidates by descending logit, then ascending id. That is a total
// order, so any correct sort gives the same result. With no top-k the whole
// vocabulary is sorted for every sampled token, and a comparison sort of
// 50-150k candidates costs milliseconds on the serving thread; a radix sort
// of 64-bit keys (order-preserving logit bits, then the id) costs a tenth.
void sort_by_logit(std::vector<TokenCandidate>& c) {
  thread_local std::vector<uint64_t> keys, keys_tmp;
  thread_local std::vector<uint32_t> index, index_tmp;
  thread_local std::vector<TokenCandidate> sorted;
  const size_t n = c.size();
  keys.resize(n);
  keys_tmp.resize(n);
  index.resize(n);
  index_tmp.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const float l = c[i].logit == 0.0f ? 0.0f : c[i].logit;  // -0 and +0 compare equal
    uint32_t u;
    std::memcpy(&u, &l, sizeof u);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);  // ascending in the float's value
    keys[i] = (uint64_t{~u} << 32) | static_cast<uint32_t>(c[i].id);  // so descending logit, then id
    index[i] = static_cast<uint32_t>(i);
  }
  for (int shift = 0; shift < 64; shift += 8) {
    size_t count[257] = {};
    for (size_t i = 0; i < n; ++i) ++count[((keys[i] >> shift) & 0xff) + 1];
    if (n == 0 || count[((keys[0] >> shift) & 0xff) + 1] == n) continue;  // every key has this digit
    for (int d = 0; d < 256; ++d) count[d + 1] += count[d];
    for (size_t i = 0; i < n; ++i) {
      const size_t at = count[(keys[i] >> shift) & 0xff]++;
      keys_tmp[at] = keys[i];
      index_tmp[at] = index[i];
    }
    keys.swap(keys_tmp);
    index.swap(index_tmp);
  }
  sorted.resize(n);
  for (size_t i = 0; i < n; ++i) sorted[i] = c[index[i]];
  std::copy(sorted.begin(), sorted.end(), c.begin());
}

void softmax(std::vector<TokenCandidate>& c) {
  sort_by_logit(c);
  const float max = c.front().logit;
  double sum = 0;
  for (auto& t : c) sum += (t.p = std::exp(t.logit - max));
  for (auto& t : c) t.p = static_cast<float>(t.p / sum);
}

void top_p(std::vector<TokenCandidate>& c, float p) {
  if (p >= 1.0f) return;
  double cum = 0;
  size_t keep = c.size();
  for (size_t i = 0; i < c.size(); ++i) {
    cum += c[i].p;
    if (cum >= p) {
      keep = i + 1;
      break;
    }
  }
  c.resize(keep);
}

void min_p(std::vector<TokenCandidate>& c, float p) {
  if (p <= 0.0f || c.empty()) return;
  const float threshold = c.front().p * p;
  size_t keep = 1;
  while (keep < c.size() && c[keep].p >= threshold) ++keep;
  c.resize(keep);
}

void temperature(std::vector<TokenCandidate>& c, float t) {
  for (auto& x : c) x.logit /= t;
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
  // top-p and min-p need probabilities; when both are off, the softmax below
  // (which sorts afresh) is the only one needed.
  if (params_.top_p < 1.0f || params_.min_p > 0.0f) {
    sampling::softmax(cand_);
    sampling::top_p(cand_, params_.top_p);
    sampling::min_p(cand_, params_.min_p);
  }
  sampling::temperature(cand_, params_.temperature);
  sampling::softmax(cand_);
  double r = uniform(), cum = 0;
  for (const auto& t : cand_) {
    cum += t.p;
    if (r < cum) return t.id;
  }
  return cand_.back().id;
}

}  // namespace osprey
