// Text <-> token ids for the vocabularies GGUF files carry, and for
// Hugging Face tokenizer.json files.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"

namespace osprey {

class PreTokenizer;

// A piece of input text: either raw text to tokenize, or a special token
// found verbatim in the text.
struct TextFragment {
  std::string_view text;  // empty when token >= 0
  int32_t token = -1;
};

// Splits text around special tokens. User-defined tokens are always matched;
// control and unknown tokens only when parse_special is set (so that user
// text cannot smuggle in "<|im_end|>" unless the caller allows it).
std::vector<TextFragment> split_special(const Vocab& vocab, std::string_view text, bool parse_special);

// Byte-level BPE: the GPT-2 mapping of bytes to printable code points.
const std::string& bpe_byte_to_text(uint8_t byte);
// Inverse mapping; returns false for a code point outside the 256 used.
bool bpe_text_to_byte(uint32_t code_point, uint8_t& byte);

class Tokenizer {
 public:
  static Expected<std::shared_ptr<Tokenizer>> from_gguf(const GgufFile& file);
  // A Hugging Face tokenizer.json, or a model folder holding one.
  static Expected<std::shared_ptr<Tokenizer>> from_tokenizer_json(const std::string& path);
  // Any vocabulary; `where` names its source in errors.
  static Expected<std::shared_ptr<Tokenizer>> from_vocab(Vocab vocab, const std::string& where);
  ~Tokenizer();

  const Vocab& vocab() const { return vocab_; }

  // add_special: prepend BOS / append EOS as the vocabulary asks.
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const;
  // A prompt rendered by a chat template: special-token text becomes those
  // tokens, and BOS is added as the vocabulary asks, but only once even when
  // the template wrote the BOS text itself.
  std::vector<int32_t> encode_chat(std::string_view rendered) const;

  // The bytes a token stands for (may be part of a UTF-8 character). Control
  // tokens give "" unless render_special.
  std::string token_bytes(int32_t id, bool render_special = false) const;

  // Whole-sequence decode; drops the SPM leading space the encoder added.
  std::string decode(const std::vector<int32_t>& ids, bool render_special = false) const;

 private:
  Tokenizer() = default;
  void encode_spm(std::string_view text, bool prefix_space, std::vector<int32_t>& out) const;
  void encode_bpe(std::string_view text, std::vector<int32_t>& out) const;
  void bpe_word(const std::string& word, std::vector<int32_t>& out) const;
  void encode_wordpiece(std::string_view text, std::vector<int32_t>& out) const;  // tokenizer/wordpiece.cpp

  Vocab vocab_;
  std::unique_ptr<PreTokenizer> pre_;
  int32_t byte_tokens_[256];  // SPM <0xXX> token ids, -1 when absent
  size_t max_token_bytes_ = 0;  // WordPiece: the longest entry, which bounds each match
};

}  // namespace osprey
