#include "grammar/matcher.h"

#include <algorithm>

namespace osprey::grammar {
namespace {

// Pushes the stacks `st` becomes once every rule on its top is expanded into
// its alternatives, until each top is a byte element (or the stack is empty).
// The branches wait in a list of their own rather than on the call stack: a
// grammar's rules can nest 200k deep, and a request's grammar is hostile
// input. A stack deeper than kMaxDepth is a reading too deep to follow and is
// dropped; memory stays within kMaxStacks stacks of kMaxDepth. Returns false,
// with the readings unfinished, once there are more than kMaxStacks.
bool expand(const Grammar& g, Stack st, State& out) {
  std::vector<Stack> pending;
  pending.push_back(std::move(st));
  while (!pending.empty()) {
    Stack cur = std::move(pending.back());
    pending.pop_back();
    bool keep = true;
    while (!cur.empty()) {
      const uint32_t top = cur.back();
      const Element& e = g.elements[top];
      if (e.kind == Element::kBytes) break;
      cur.pop_back();
      if (e.kind == Element::kEnd) continue;
      // Resume after the rule, unless that is the end of the alternative: then
      // the frame would only be popped, and tail recursion (x*) keeps stacks flat.
      if (g.elements[top + 1].kind != Element::kEnd) cur.push_back(top + 1);
      if (cur.size() >= Matcher::kMaxDepth) {
        keep = false;
        break;
      }
      const auto& alts = g.alternatives[e.arg];
      for (size_t i = 0; i + 1 < alts.size(); ++i) {
        if (out.size() + pending.size() > Matcher::kMaxStacks) return false;
        pending.push_back(cur);
        pending.back().push_back(alts[i]);
      }
      cur.push_back(alts.back());
    }
    if (keep) out.push_back(std::move(cur));
    if (out.size() > Matcher::kMaxStacks) return false;
  }
  return true;
}

void normalize(State& s) {
  std::sort(s.begin(), s.end());
  s.erase(std::unique(s.begin(), s.end()), s.end());
}

}  // namespace

Matcher::Matcher(std::shared_ptr<const Grammar> grammar) : grammar_(std::move(grammar)) {
  for (uint32_t alt : grammar_->alternatives[grammar_->root])
    if (!expand(*grammar_, Stack{alt}, state_)) break;  // too ambiguous: follows what it has
  normalize(state_);
}

State Matcher::advance(const Grammar& g, const State& state, uint8_t byte) {
  State next;
  for (const Stack& st : state) {
    if (st.empty()) continue;
    const Element& e = g.elements[st.back()];
    if (!g.sets[e.arg].test(byte)) continue;
    Stack moved = st;
    moved.back() += 1;
    if (!expand(g, std::move(moved), next)) return {};
  }
  normalize(next);
  return next;
}

bool Matcher::is_complete(const State& state) {
  // Sorted: an empty stack comes first.
  return !state.empty() && state.front().empty();
}

uint32_t Matcher::min_remaining(const Grammar& g, const State& state) {
  uint32_t best = UINT32_MAX;
  for (const Stack& st : state) {
    uint64_t total = 0;
    for (uint32_t pos : st) total += g.rest_min[pos];
    best = static_cast<uint32_t>(std::min<uint64_t>(best, total));
  }
  return best;
}

bool Matcher::accept(std::string_view bytes) {
  State s = state_;
  for (char c : bytes) {
    s = advance(*grammar_, s, static_cast<uint8_t>(c));
    if (s.empty()) return false;
  }
  state_ = std::move(s);
  return true;
}

}  // namespace osprey::grammar
