// SentencePiece-style BPE (tokenizer.ggml.model = "llama"): spaces become
// U+2581, the text starts as one symbol per character, and the adjacent pair
// whose concatenation is the highest-scoring vocabulary entry merges first.
// Characters left outside the vocabulary fall back to <0xXX> byte tokens.
#include <queue>

#include "core/utf8.h"
#include "tokenizer/tokenizer.h"

namespace osprey {

namespace {

const char kSpace[] = "\xE2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK

struct Symbol {
  size_t start, len;  // bytes of the escaped text
  int prev, next;     // neighbours in the linked list, -1 at the ends
};

struct Bigram {
  float score;
  int left;
  size_t len;  // combined length when queued; stale entries no longer match
  bool operator<(const Bigram& o) const {
    // Highest score first; on ties the leftmost pair, as SentencePiece does.
    return score < o.score || (score == o.score && left > o.left);
  }
};

}  // namespace

void Tokenizer::encode_spm(std::string_view raw, bool prefix_space, std::vector<int32_t>& out) const {
  std::string text;
  text.reserve(raw.size() * 3 / 2 + 4);
  if (prefix_space) text += kSpace;
  for (char c : raw) {
    if (c == ' ') text += kSpace;
    else text += c;
  }
  std::vector<Symbol> sym;
  for (size_t i = 0; i < text.size();) {
    uint32_t cp;
    size_t n;
    utf8::decode(text, i, cp, n);
    sym.push_back({i, n, static_cast<int>(sym.size()) - 1, static_cast<int>(sym.size()) + 1});
    i += n;
  }
  if (sym.empty()) return;
  sym.back().next = -1;

  std::priority_queue<Bigram> queue;
  auto try_pair = [&](int left) {
    if (left < 0 || sym[left].next < 0) return;
    const Symbol& a = sym[left];
    const Symbol& b = sym[a.next];
    const int32_t id = vocab_.find(text.substr(a.start, a.len + b.len));
    if (id >= 0) queue.push({vocab_.scores[id], left, a.len + b.len});
  };
  for (size_t i = 0; i + 1 < sym.size(); ++i) try_pair(static_cast<int>(i));

  while (!queue.empty()) {
    const Bigram top = queue.top();
    queue.pop();
    Symbol& a = sym[top.left];
    if (a.len == 0 || a.next < 0) continue;
    Symbol& b = sym[a.next];
    if (a.len + b.len != top.len) continue;  // one side merged since this was queued
    a.len += b.len;
    b.len = 0;
    a.next = b.next;
    if (b.next >= 0) sym[b.next].prev = top.left;
    try_pair(a.prev);
    try_pair(top.left);
  }

  for (int i = 0; i >= 0; i = sym[i].next) {
    const std::string piece = text.substr(sym[i].start, sym[i].len);
    const int32_t id = vocab_.find(piece);
    if (id >= 0) {
      out.push_back(id);
      continue;
    }
    for (unsigned char byte : piece) {
      const int32_t b = byte_tokens_[byte];
      if (b >= 0) out.push_back(b);
      else if (vocab_.unk >= 0) out.push_back(vocab_.unk);
    }
  }
}

}  // namespace osprey
