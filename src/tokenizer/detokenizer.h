// Turns a stream of token ids into text that is always valid UTF-8: bytes of
// a character split across tokens are held back until the character is
// complete, and bytes that can never form a character become U+FFFD.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace osprey {

class StreamDetokenizer {
 public:
  explicit StreamDetokenizer(const Tokenizer& tokenizer, bool render_special = false)
      : tok_(tokenizer), render_special_(render_special) {}

  // Text ready to show after this token (possibly empty).
  std::string push(int32_t id);
  // Whatever is still held back, with incomplete characters replaced.
  std::string flush();
  // Forget everything, as at the start of a new text.
  void reset();
  // Marks the text as continuing after these tokens (a prompt), so the
  // first generated piece keeps its leading space.
  void push_context(const std::vector<int32_t>& ids);

 private:
  const Tokenizer& tok_;
  bool render_special_;
  bool at_start_ = true;
  std::string pending_;
};

// Copies `bytes` keeping valid UTF-8 sequences and replacing each invalid
// byte with U+FFFD. If hold_incomplete, a truncated sequence at the end is not
// replaced but left in `rest`.
std::string sanitize_utf8(const std::string& bytes, bool hold_incomplete, std::string& rest);

}  // namespace osprey
