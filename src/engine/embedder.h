// Embeddings outside the server (osprey embed, the C++ API): texts or token
// lists in, one vector each out. Inputs run as separate sequences, as many
// at once as the model holds, so a batch of inputs shares its forward passes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "models/model.h"
#include "osprey/status.h"
#include "tokenizer/tokenizer.h"

namespace osprey {

// Scales `v` to unit length (left as it is when all zero).
void normalize_embedding(std::vector<float>& v);

// An input as the model reads it: [CLS] text [SEP] for an encoder, the
// vocabulary's BOS/EOS for a decoder; special-token text is parsed, as
// llama.cpp's server does for embeddings.
std::vector<int32_t> embedding_tokens(const Tokenizer& tokenizer, const std::string& text);

// A reranker's input for one (query, document) pair, as cross-encoders were
// trained on it: [CLS] query [SEP] document [SEP] (BOS/EOS for other
// vocabularies).
std::vector<int32_t> rerank_tokens(const Tokenizer& tokenizer, const std::string& query, const std::string& document);

// Checks inputs against the model before any is run: none empty, none
// longer than the context. `what` names them in errors ("input").
Status check_embedding_inputs(const Model& model, const std::vector<std::vector<int32_t>>& inputs,
                              const std::string& what = "input");

// Pooled as the model says (Model::embeddings); normalised when asked.
// Every sequence of the model must be empty, and is left empty.
Expected<std::vector<std::vector<float>>> embed_inputs(Model& model, const std::vector<std::vector<int32_t>>& inputs,
                                                       bool normalize);

}  // namespace osprey
