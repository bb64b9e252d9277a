// The vocabulary as structured output sees it: each token's bytes in a trie
// (end-of-generation tokens left out, since they end the reply whatever their
// text), the end-of-generation tokens, and the control tokens that mark
// reasoning or tool calls. Those markers have no text of their own, so they
// are rendered into parsed or constrained replies and a grammar may write
// them as their text.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "grammar/token_constraint.h"
#include "tokenizer/tokenizer.h"

namespace osprey::server {

struct ConstraintVocabulary {
  std::shared_ptr<const grammar::TokenTrie> trie;
  std::vector<int32_t> end_tokens;
  std::vector<int32_t> marker_tokens;
};

ConstraintVocabulary constraint_vocabulary(const Tokenizer& tokenizer);

}  // namespace osprey::server
