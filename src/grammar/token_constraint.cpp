#include "grammar/token_constraint.h"

#include <algorithm>
#include <limits>
#include <numeric>

namespace osprey::grammar {

TokenTrie::TokenTrie(std::vector<std::string> bytes) : bytes_(std::move(bytes)) {
  std::vector<int32_t> order;
  for (int32_t id = 0; id < n_vocab(); ++id)
    if (!bytes_[static_cast<size_t>(id)].empty()) order.push_back(id);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return bytes_[static_cast<size_t>(a)] < bytes_[static_cast<size_t>(b)];
  });
  // Builds the node for the tokens order[lo, hi), which share their first
  // `depth` bytes, breadth first so that each node's children are adjacent.
  struct Pending {
    uint32_t node;
    size_t lo, hi, depth;
  };
  nodes_.push_back(Node{});
  std::vector<Pending> queue{{0, 0, order.size(), 0}};
  for (size_t q = 0; q < queue.size(); ++q) {
    const Pending p = queue[q];
    size_t i = p.lo;
    nodes_[p.node].first_token = static_cast<uint32_t>(tokens_.size());
    while (i < p.hi && bytes_[static_cast<size_t>(order[i])].size() == p.depth) tokens_.push_back(order[i++]);
    nodes_[p.node].n_tokens = static_cast<uint32_t>(tokens_.size()) - nodes_[p.node].first_token;
    nodes_[p.node].first_child = static_cast<uint32_t>(nodes_.size());
    while (i < p.hi) {
      const uint8_t b = static_cast<uint8_t>(bytes_[static_cast<size_t>(order[i])][p.depth]);
      size_t j = i;
      while (j < p.hi && static_cast<uint8_t>(bytes_[static_cast<size_t>(order[j])][p.depth]) == b) ++j;
      Node child;
      child.byte = b;
      queue.push_back({static_cast<uint32_t>(nodes_.size()), i, j, p.depth + 1});
      nodes_.push_back(child);
      ++nodes_[p.node].n_children;
      i = j;
    }
  }
}

namespace {

std::string state_key(const State& state, uint32_t limit) {
  std::string key(reinterpret_cast<const char*>(&limit), sizeof limit);
  for (const Stack& st : state) {
    const uint32_t n = static_cast<uint32_t>(st.size());
    key.append(reinterpret_cast<const char*>(&n), sizeof n);
    key.append(reinterpret_cast<const char*>(st.data()), st.size() * sizeof(uint32_t));
  }
  return key;
}

struct Walk {
  const Grammar& g;
  const TokenTrie& trie;
  uint32_t limit;
  Mask& mask;

  void node(uint32_t index, const State& state) {
    const TokenTrie::Node& n = trie.nodes()[index];
    for (uint32_t c = n.first_child; c < n.first_child + n.n_children; ++c) {
      const TokenTrie::Node& child = trie.nodes()[c];
      const State next = Matcher::advance(g, state, child.byte);
      if (next.empty()) continue;
      if (child.n_tokens > 0 && (limit == UINT32_MAX || Matcher::min_remaining(g, next) <= limit)) {
        for (uint32_t t = child.first_token; t < child.first_token + child.n_tokens; ++t) {
          const int32_t id = trie.tokens()[t];
          mask[static_cast<size_t>(id) / 64] |= uint64_t{1} << (id % 64);
        }
      }
      node(c, next);
    }
  }
};

bool has(const Mask& m, int32_t id) { return (m[static_cast<size_t>(id) / 64] >> (id % 64)) & 1; }

}  // namespace

std::shared_ptr<const Mask> GrammarMasks::mask(const TokenTrie& trie, const State& state, uint32_t limit) {
  const std::string key = state_key(state, limit);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = masks_.find(key);
    if (it != masks_.end()) return it->second;
  }
  auto m = std::make_shared<Mask>((static_cast<size_t>(trie.n_vocab()) + 63) / 64, 0);
  Walk{*grammar_, trie, limit, *m}.node(0, state);
  std::lock_guard<std::mutex> lock(mu_);
  // A bound on memory: a grammar whose states never repeat starts afresh.
  if (masks_.size() >= 4096) masks_.clear();
  masks_.emplace(key, m);
  return m;
}

size_t GrammarMasks::cached() const {
  std::lock_guard<std::mutex> lock(mu_);
  return masks_.size();
}

TokenConstraint::TokenConstraint(std::shared_ptr<GrammarMasks> grammar, std::shared_ptr<const TokenTrie> trie,
                                 std::vector<int32_t> end_tokens)
    : grammar_(std::move(grammar)), trie_(std::move(trie)), end_tokens_(std::move(end_tokens)), matcher_(grammar_->grammar()) {}

bool TokenConstraint::masked(const float* logits, const Mask* mask) {
  const int32_t n = trie_->n_vocab();
  scratch_.assign(logits, logits + n);
  constexpr float kOff = -std::numeric_limits<float>::infinity();
  bool any = false;
  for (int32_t id = 0; id < n; ++id) {
    const bool allowed = mask != nullptr && has(*mask, id);
    if (!allowed) scratch_[static_cast<size_t>(id)] = kOff;
    any |= allowed;
  }
  // The end of the generation only once the grammar is complete.
  const bool done = matcher_.complete();
  for (int32_t id : end_tokens_) {
    if (id < 0 || id >= n) continue;
    scratch_[static_cast<size_t>(id)] = done ? logits[id] : kOff;
    any |= done;
  }
  return any;
}

uint32_t TokenConstraint::min_after(int32_t token) const {
  if (std::find(end_tokens_.begin(), end_tokens_.end(), token) != end_tokens_.end()) return 0;
  const std::string& bytes = trie_->bytes(token);
  State s = matcher_.state();
  for (char c : bytes) {
    s = Matcher::advance(matcher_.grammar(), s, static_cast<uint8_t>(c));
    if (s.empty()) return UINT32_MAX;
  }
  return Matcher::min_remaining(matcher_.grammar(), s);
}

int32_t TokenConstraint::next(const float* logits, int64_t budget, const std::function<int32_t(const float*)>& sample) {
  const State& state = matcher_.state();
  const uint32_t now = matcher_.min_remaining();
  // After this token, budget - 1 tokens remain, and each can bring the
  // completion at least one byte nearer. With less than that left already
  // (max_tokens below the grammar's shortest sentence), every token must
  // bring it nearer.
  const int64_t room = std::max<int64_t>(0, budget - 1);
  const uint32_t limit = room >= static_cast<int64_t>(now) ? static_cast<uint32_t>(std::min<int64_t>(room, UINT32_MAX - 1))
                                                           : (now > 0 ? now - 1 : 0);
  int32_t token = -1;
  if (masked(logits, grammar_->mask(*trie_, state, UINT32_MAX).get())) {
    token = sample(scratch_.data());
    if (min_after(token) > limit) token = -1;
  }
  if (token < 0) {
    if (!masked(logits, grammar_->mask(*trie_, state, limit).get())) return -1;
    token = sample(scratch_.data());
  }
  accept(token);
  return token;
}

bool TokenConstraint::accept(int32_t token) {
  if (std::find(end_tokens_.begin(), end_tokens_.end(), token) != end_tokens_.end()) return matcher_.complete();
  if (token < 0 || token >= trie_->n_vocab()) return false;
  const std::string& bytes = trie_->bytes(token);
  return !bytes.empty() && matcher_.accept(bytes);
}

}  // namespace osprey::grammar
