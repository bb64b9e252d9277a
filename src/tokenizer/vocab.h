// A tokenizer vocabulary as stored in GGUF metadata (tokenizer.ggml.*).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "formats/gguf.h"
#include "osprey/status.h"

namespace osprey {

enum class VocabKind {
  kSpm,  // tokenizer.ggml.model = "llama": SentencePiece BPE by scores, byte fallback
  kBpe,  // tokenizer.ggml.model = "gpt2": byte-level BPE by merge ranks
};

// Values of tokenizer.ggml.token_type.
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

struct Vocab {
  VocabKind kind = VocabKind::kSpm;
  std::string model_name;  // tokenizer.ggml.model
  std::string pre;         // tokenizer.ggml.pre, "default" when absent
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<TokenType> types;
  std::unordered_map<std::string, int32_t> token_to_id;
  // BPE merges: "left right" -> rank (lower merges first).
  std::unordered_map<std::string, int32_t> merge_rank;

  int32_t bos = -1, eos = -1, unk = -1, pad = -1, eot = -1;
  bool add_bos = false, add_eos = false;
  bool add_space_prefix = false;  // SPM: prepend a space to the text
  bool ignore_merges = false;     // BPE: look a whole word up before merging (Llama 3)
  // Tokens that end a generation: eos, eot, and the end-of-turn markers of
  // common chat formats when the vocabulary has them.
  std::vector<int32_t> end_of_generation;
  // Control and user-defined tokens, longest text first, for splitting raw text.
  std::vector<int32_t> special_by_length;

  static Expected<Vocab> from_gguf(const GgufFile& file);

  int32_t size() const { return static_cast<int32_t>(tokens.size()); }
  int32_t find(const std::string& text) const {
    auto it = token_to_id.find(text);
    return it == token_to_id.end() ? -1 : it->second;
  }
  bool is_end_of_generation(int32_t id) const;
  // The text of a token such as BOS (for a chat template), or "" for id -1.
  std::string text_of(int32_t id) const { return id >= 0 && id < size() ? tokens[static_cast<size_t>(id)] : std::string(); }
  bool is_control(int32_t id) const { return id >= 0 && id < size() && types[id] == TokenType::kControl; }
};

}  // namespace osprey
