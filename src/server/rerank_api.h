// POST /v1/rerank (also /rerank), as Jina, Cohere and llama.cpp's server
// shape it: a query and documents in, the documents' relevance scores out,
// best first. Each (query, document) pair is one input of a cross-encoder
// reranker (a bert file with pooling_type rank); the score is its
// classification head's raw logit, as llama.cpp reports it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "server/request_fields.h"
#include "tokenizer/tokenizer.h"

namespace osprey::server {

struct RerankRequest {
  std::vector<std::string> documents;
  std::vector<std::vector<int32_t>> inputs;  // one per document: [CLS] query [SEP] document [SEP]
  int64_t top_n = 0;                          // 0: every document
  bool return_documents = false;
};

// Throws BadRequest naming the field ("documents[2]", "top_n").
RerankRequest parse_rerank_request(const Fields& body, const Tokenizer& tokenizer, int64_t n_ctx);

// `scores[i]` is document i's; the reply lists the top_n best first (ties
// in document order).
json rerank_reply(const std::vector<float>& scores, const RerankRequest& request, const std::string& model);

}  // namespace osprey::server
