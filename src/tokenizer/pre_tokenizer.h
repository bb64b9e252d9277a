// Splits text into words before byte-level BPE, with the regular expressions
// that each model family's tokenizer.json defines. The GGUF key
// tokenizer.ggml.pre names the family. Several expressions apply in turn,
// each splitting every piece into matches and the gaps between them (the
// "isolated" split of Hugging Face tokenizers).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "osprey/status.h"

namespace osprey {

class PreTokenizer {
 public:
  // Fails for a name it does not know.
  static Expected<std::unique_ptr<PreTokenizer>> create(const std::string& pre_name);
  // The split expressions a tokenizer.json gives, in order; an expression
  // PCRE2 cannot compile is an error naming it (`where` says whose).
  static Expected<std::unique_ptr<PreTokenizer>> from_patterns(const std::vector<std::string>& patterns,
                                                               const std::string& where);
  ~PreTokenizer();

  std::vector<std::string_view> split(std::string_view text) const;

  // The pre-tokenizer names osprey knows.
  static std::vector<std::string> known_names();
  // The split expressions of a known name (empty for an unknown one), and the
  // name whose expressions are exactly `patterns` ("" if none): how a
  // tokenizer.json's splits are named in GGUF, and back.
  static std::vector<std::string> patterns_of(const std::string& name);
  static std::string name_of(const std::vector<std::string>& patterns);

 private:
  PreTokenizer() = default;
  struct Regex;
  std::vector<Regex*> regexes_;
};

}  // namespace osprey
