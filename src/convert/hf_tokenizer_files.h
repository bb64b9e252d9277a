// A tokenizer between its two homes: the tokenizer.ggml.* keys of a GGUF
// file and a Hugging Face folder's tokenizer.json and tokenizer_config.json.
// Byte-level BPE goes both ways, its split expressions named as llama.cpp
// names them (tokenizer.ggml.pre); byte-fallback BPE (Llama 2, Gemma) is
// refused by name for now.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/gguf.h"
#include "osprey/status.h"
#include "tokenizer/vocab.h"

namespace osprey::hf {

// tokenizer.ggml.* for `vocab`, padded with [PAD<i>] tokens up to n_rows (the
// embedding's rows, which may exceed the tokenizer's tokens); and
// tokenizer.chat_template when `chat_template` is not empty.
Expected<std::vector<std::pair<std::string, GgufValue>>> gguf_tokenizer_metadata(const Vocab& vocab, int64_t n_rows,
                                                                                const std::string& chat_template,
                                                                                const std::string& where);

// The chat template of a folder: tokenizer_config.json's chat_template (a
// string, or the "default" of a list of named ones), else chat_template.jinja;
// "" when there is none.
Expected<std::string> folder_chat_template(const std::string& dir);

// tokenizer.json and tokenizer_config.json for a GGUF vocabulary.
Expected<nlohmann::json> tokenizer_json(const Vocab& vocab, const std::string& where);
nlohmann::json tokenizer_config(const Vocab& vocab, const std::string& chat_template);

}  // namespace osprey::hf
