// A context-free grammar over bytes, compiled from GBNF text.
//
// GBNF is the grammar notation llama.cpp made common: `name ::= alternatives`,
// with "literals", [character classes] (ranges, ^ negation, \x \u escapes),
// rule references, ( groups ) and the postfix operators * + ? {m} {m,} {m,n};
// `#` starts a comment; the start rule is `root`. Character classes and
// literals are over Unicode code points and are compiled to UTF-8 byte
// sequences, so the grammar consumes bytes, exactly what tokens are made of
// (including byte-fallback tokens that hold half a character).
//
// The compiled form is flat: each alternative is a run of elements ending in
// kEnd; an element either matches one byte from a set or refers to a rule.
// Left recursion is refused at compile time (the matcher expands rules
// eagerly and would not terminate on it).
#pragma once

#include <bitset>
#include <cstdint>
#include <string>
#include <vector>

#include "osprey/status.h"

namespace osprey::grammar {

using ByteSet = std::bitset<256>;

struct Element {
  enum Kind : uint8_t { kEnd, kBytes, kRule } kind;
  uint32_t arg;  // kBytes: index into Grammar::sets; kRule: rule id
};

struct Grammar {
  std::vector<Element> elements;                    // alternatives, each ended by kEnd
  std::vector<std::vector<uint32_t>> alternatives;  // per rule: the start of each alternative
  std::vector<std::string> rule_names;
  std::vector<ByteSet> sets;
  uint32_t root = 0;
  // Bytes still needed from an element to the end of its alternative, at the
  // fewest: what the matcher adds up to know how far a completion is.
  std::vector<uint32_t> rest_min;

  // Compiles GBNF text; errors name the line and what is wrong.
  static Expected<Grammar> parse(const std::string& gbnf);
};

}  // namespace osprey::grammar
