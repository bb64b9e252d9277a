// Where a grammar's match stands after some bytes, and how it moves on.
//
// The state is a set of stacks of element positions. Each stack is one way
// the bytes so far can be read: its top is the byte element that must match
// next, and the positions beneath it are where enclosing rules resume. A
// stack that has become empty has matched the whole root rule. Reading a
// byte keeps the stacks whose top accepts it, steps them past it and expands
// any rule now on top into its alternatives, so tops are always bytes.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "grammar/grammar.h"

namespace osprey::grammar {

using Stack = std::vector<uint32_t>;
using State = std::vector<Stack>;  // sorted, without duplicates

class Matcher {
 public:
  explicit Matcher(std::shared_ptr<const Grammar> grammar);

  const State& state() const { return state_; }
  const Grammar& grammar() const { return *grammar_; }

  // Reads the bytes if the grammar allows all of them; otherwise returns
  // false and stays where it was.
  bool accept(std::string_view bytes);
  // The root rule has been matched (more may still be allowed).
  bool complete() const { return is_complete(state_); }
  // The fewest bytes that would complete the match.
  uint32_t min_remaining() const { return min_remaining(*grammar_, state_); }

  // The stacks after one more byte (empty: the byte is not allowed).
  static State advance(const Grammar& g, const State& state, uint8_t byte);
  static bool is_complete(const State& state);
  static uint32_t min_remaining(const Grammar& g, const State& state);
  // More stacks than this at once is a grammar too ambiguous to follow, and a
  // stack deeper than kMaxDepth (rules nested within rules) one too deep;
  // such readings are dropped. JSON nested a few hundred levels still fits.
  static constexpr size_t kMaxStacks = 4096;
  static constexpr size_t kMaxDepth = 1024;

 private:
  std::shared_ptr<const Grammar> grammar_;
  State state_;
};

}  // namespace osprey::grammar
