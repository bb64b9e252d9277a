// Constrained decoding: which tokens of a vocabulary a grammar allows next.
//
// The vocabulary is held once as a trie of the tokens' bytes. To find the
// allowed tokens, the grammar state walks the trie byte by byte and a whole
// subtree is dropped as soon as its prefix is refused, so a state that allows
// few tokens costs little. The answer (a bit per token) depends only on the
// state, which repeats (every character inside a JSON string leaves the same
// state), so masks are cached per compiled grammar and shared by requests.
//
// Budget: a token is only taken if the fewest bytes that would then complete
// the grammar still fit in the tokens left (max_tokens, or the context). The
// next byte of a shortest completion always fits, and every vocabulary osprey
// reads has a token for each single byte, so a JSON schema's reply is
// complete and parses even when max_tokens cut the model's own choices short.
// The cached mask (by state alone) is tried first; only when its draw would
// not fit is a mask by state and budget made, and the draw repeated from it,
// which gives the same distribution as drawing from that mask at once.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "grammar/matcher.h"

namespace osprey::grammar {

class TokenTrie {
 public:
  // `bytes[id]` is what token `id` stands for; empty: a control token, which
  // a grammar never offers.
  explicit TokenTrie(std::vector<std::string> bytes);
  int32_t n_vocab() const { return static_cast<int32_t>(bytes_.size()); }
  const std::string& bytes(int32_t id) const { return bytes_[static_cast<size_t>(id)]; }

  struct Node {
    uint32_t first_child = 0, n_children = 0;  // into nodes
    uint32_t first_token = 0, n_tokens = 0;    // into tokens: those ending here
    uint8_t byte = 0;
  };
  const std::vector<Node>& nodes() const { return nodes_; }
  const std::vector<int32_t>& tokens() const { return tokens_; }

 private:
  std::vector<std::string> bytes_;
  std::vector<Node> nodes_;  // nodes_[0] is the root (no byte)
  std::vector<int32_t> tokens_;
};

using Mask = std::vector<uint64_t>;  // bit per token

// A compiled grammar with the masks found for it so far.
class GrammarMasks {
 public:
  explicit GrammarMasks(std::shared_ptr<const Grammar> grammar) : grammar_(std::move(grammar)) {}
  const std::shared_ptr<const Grammar>& grammar() const { return grammar_; }
  // The tokens allowed from `state` after which the grammar can still be
  // completed in `limit` bytes (UINT32_MAX: no limit).
  std::shared_ptr<const Mask> mask(const TokenTrie& trie, const State& state, uint32_t limit);
  size_t cached() const;

 private:
  std::shared_ptr<const Grammar> grammar_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<const Mask>> masks_;
};

// One generation's constraint.
class TokenConstraint {
 public:
  TokenConstraint(std::shared_ptr<GrammarMasks> grammar, std::shared_ptr<const TokenTrie> trie,
                  std::vector<int32_t> end_tokens);

  // Draws the next token with `sample` from the logits of the tokens the
  // grammar allows now, given `budget` tokens left including this one, and
  // moves past it. -1 when no token is allowed.
  int32_t next(const float* logits, int64_t budget, const std::function<int32_t(const float*)>& sample);
  // Moves past `token`; false if the grammar does not allow it.
  bool accept(int32_t token);
  bool complete() const { return matcher_.complete(); }
  // The fewest bytes that would complete the grammar from here.
  uint32_t min_remaining() const { return matcher_.min_remaining(); }

 private:
  std::shared_ptr<GrammarMasks> grammar_;
  std::shared_ptr<const TokenTrie> trie_;
  // Copies `logits` into scratch_ with the tokens outside `mask` (and the
  // end tokens, unless complete) at -infinity; false if none is left.
  bool masked(const float* logits, const Mask* mask);
  // The fewest bytes to completion after `token` (UINT32_MAX if refused).
  uint32_t min_after(int32_t token) const;

  std::vector<int32_t> end_tokens_;
  Matcher matcher_;
  std::vector<float> scratch_;
};

}  // namespace osprey::grammar
