// POST /v1/embeddings as OpenAI defines it: `input` as a string, an array of
// strings, an array of token ids or an array of such arrays; the vectors as
// floats or base64 (little-endian float32); `dimensions` to shorten them.
// The server runs each input as a sequence through the scheduler, beside
// whatever else is generating; this file reads the request and writes the
// reply.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "server/request_fields.h"
#include "tokenizer/tokenizer.h"

namespace osprey::server {

struct EmbeddingsRequest {
  std::vector<std::vector<int32_t>> inputs;  // tokens, with the vocabulary's [CLS]/[SEP] or BOS/EOS
  bool base64 = false;
  int64_t dimensions = 0;  // 0: the model's own
};

struct EmbeddingsLimits {
  int64_t n_vocab = 0, n_embd = 0, n_ctx = 0;
  // Shorter vectors than n_embd are asked for with `dimensions`; only a
  // model trained for it (Matryoshka) keeps its meaning when cut, so the
  // server allows it only when told so (serve --matryoshka).
  bool matryoshka = false;
  int64_t max_inputs = 2048;
};

// Throws BadRequest naming the field ("input[3]", "dimensions") on anything
// the API cannot serve.
EmbeddingsRequest parse_embeddings_request(const Fields& body, const Tokenizer& tokenizer, const EmbeddingsLimits& limits);

// The reply body for pooled vectors, one per input in order: each cut to
// the asked dimensions, then normalised.
json embeddings_reply(std::vector<std::vector<float>> vectors, const EmbeddingsRequest& request, const std::string& model);

}  // namespace osprey::server
