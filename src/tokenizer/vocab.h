// A tokenizer vocabulary: as stored in GGUF metadata (tokenizer.ggml.*), or
// read from a Hugging Face tokenizer.json (tokenizer/hf_tokenizer_json.cpp).
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
  // tokenizer.json BPE with byte_fallback (Llama 2, Gemma): spaces as U+2581
  // like kSpm, but merged by rank as Hugging Face's BPE does.
  kCharBpe,
  // tokenizer.ggml.model = "bert": WordPiece, word starts marked with U+2581
  // as llama.cpp's converter writes them (tokenizer/wordpiece.cpp).
  kWordPiece,
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
  // tokenizer.json: the pre-tokenizer's split expressions in order (used in
  // place of `pre` when set), and NFC before anything else (Qwen).
  std::vector<std::string> pre_patterns;
  bool nfc = false;
  // Per token, for added tokens matched in text: 1 = also take the
  // whitespace before it (lstrip), 2 = the whitespace after it (rstrip).
  std::vector<uint8_t> strip;
  // Tokens that end a generation: eos, eot, and the end-of-turn markers of
  // common chat formats when the vocabulary has them.
  std::vector<int32_t> end_of_generation;
  // Control and user-defined tokens, longest text first, for splitting raw text.
  std::vector<int32_t> special_by_length;

  static Expected<Vocab> from_gguf(const GgufFile& file);
  // A tokenizer.json file, or a folder holding one (and tokenizer_config.json,
  // whose bos/eos tokens and add_bos_token it also reads).
  static Expected<Vocab> from_tokenizer_json(const std::string& path);
  // The same from the files' text (config_json may be empty); `name` names them in errors.
  static Expected<Vocab> from_tokenizer_json_text(const std::string& tokenizer_json, const std::string& config_json,
                                                  const std::string& name);
  // Builds token_to_id, special_by_length and end_of_generation from the
  // tokens, types and special ids (every constructor's last step).
  void build_indexes();

  int32_t size() const { return static_cast<int32_t>(tokens.size()); }
  int32_t find(const std::string& text) const {
    auto it = token_to_id.find(text);
    return it == token_to_id.end() ? -1 : it->second;
  }
  bool is_end_of_generation(int32_t id) const;
  // The text of a token such as BOS (for a chat template), or "" for id -1.
  std::string text_of(int32_t id) const { return id >= 0 && id < size() ? tokens[static_cast<size_t>(id)] : std::string(); }
  bool is_control(int32_t id) const { return id >= 0 && id < size() && types[id] == TokenType::kControl; }
  // SentencePiece-like: spaces stored as U+2581, <0xXX> byte tokens.
  bool spm_like() const { return kind == VocabKind::kSpm || kind == VocabKind::kCharBpe; }
};

}  // namespace osprey
