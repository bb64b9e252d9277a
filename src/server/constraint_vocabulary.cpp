#include "server/constraint_vocabulary.h"

#include <string>

namespace osprey::server {

ConstraintVocabulary constraint_vocabulary(const Tokenizer& tokenizer) {
  ConstraintVocabulary v;
  const Vocab& vocab = tokenizer.vocab();
  std::vector<std::string> bytes(static_cast<size_t>(vocab.size()));
  for (int32_t id = 0; id < vocab.size(); ++id) {
    if (vocab.is_end_of_generation(id)) v.end_tokens.push_back(id);
    else bytes[static_cast<size_t>(id)] = tokenizer.token_bytes(id);
  }
  for (const char* marker : {"<think>", "</think>", "<tool_call>", "</tool_call>", "[TOOL_CALLS]", "<|python_tag|>"}) {
    const int32_t id = vocab.find(marker);
    if (id < 0 || !bytes[static_cast<size_t>(id)].empty() || vocab.is_end_of_generation(id)) continue;
    v.marker_tokens.push_back(id);
    bytes[static_cast<size_t>(id)] = marker;
  }
  v.trie = std::make_shared<const grammar::TokenTrie>(std::move(bytes));
  return v;
}

}  // namespace osprey::server
