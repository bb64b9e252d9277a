// The merge loop shared by both BPE flavours: text starts as one symbol per
// UTF-8 character, and the best-ranked adjacent pair merges until no pair
// ranks. SentencePiece ranks by vocabulary score, byte-level BPE by merge
// order; ties go to the leftmost pair in both.
#pragma once

#include <optional>
#include <queue>
#include <string>
#include <string_view>
#include <vector>

#include "core/utf8.h"

namespace osprey {

struct MergedSymbol {
  size_t start, len;  // bytes of the text
  int prev, next;     // neighbours, -1 at the ends
};

// `rank(left, right)` returns the priority of merging the two pieces (lower
// merges first) or nullopt when they do not merge. Returns the final pieces
// in order, as views into `text`.
template <typename Rank>
std::vector<std::string_view> merge_symbols(std::string_view text, Rank rank) {
  std::vector<MergedSymbol> sym;
  for (size_t i = 0; i < text.size();) {
    uint32_t cp;
    size_t n;
    utf8::decode(text, i, cp, n);
    sym.push_back({i, n, static_cast<int>(sym.size()) - 1, static_cast<int>(sym.size()) + 1});
    i += n;
  }
  std::vector<std::string_view> out;
  if (sym.empty()) return out;
  sym.back().next = -1;

  struct Pair {
    double rank;
    int left;
    size_t len;  // combined length when queued; a stale entry no longer matches
    bool operator<(const Pair& o) const { return rank > o.rank || (rank == o.rank && left > o.left); }
  };
  std::priority_queue<Pair> queue;
  auto try_pair = [&](int left) {
    if (left < 0 || sym[left].next < 0) return;
    const MergedSymbol& a = sym[left];
    const MergedSymbol& b = sym[a.next];
    if (std::optional<double> r = rank(text.substr(a.start, a.len), text.substr(b.start, b.len)))
      queue.push({*r, left, a.len + b.len});
  };
  for (size_t i = 0; i + 1 < sym.size(); ++i) try_pair(static_cast<int>(i));

  while (!queue.empty()) {
    const Pair top = queue.top();
    queue.pop();
    MergedSymbol& a = sym[top.left];
    if (a.len == 0 || a.next < 0) continue;
    MergedSymbol& b = sym[a.next];
    if (a.len + b.len != top.len) continue;  // one side merged since this was queued
    a.len += b.len;
    b.len = 0;
    a.next = b.next;
    if (b.next >= 0) sym[b.next].prev = top.left;
    try_pair(a.prev);
    try_pair(top.left);
  }
  // Symbol 0 always heads the list: merges absorb the right neighbour into the left.
  for (int i = 0; i >= 0; i = sym[i].next) out.push_back(text.substr(sym[i].start, sym[i].len));
  return out;
}

}  // namespace osprey
