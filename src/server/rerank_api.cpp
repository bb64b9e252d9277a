#include "server/rerank_api.h"

#include <algorithm>
#include <numeric>

#include "engine/embedder.h"

namespace osprey::server {

RerankRequest parse_rerank_request(const Fields& body, const Tokenizer& tokenizer, int64_t n_ctx) {
  RerankRequest r;
  const std::string query = body.required_string("query");
  if (query.empty()) reject("query", "'query' is an empty string");
  const json& docs = body.required_array("documents");
  if (docs.empty()) reject("documents", "'documents' is empty");
  if (docs.size() > 1024) reject("documents", "'documents' has " + std::to_string(docs.size()) + " entries; at most 1024 are ranked per request");
  for (size_t i = 0; i < docs.size(); ++i) {
    const std::string param = element_path("documents", i);
    // A document is its text, or an object holding it ({"text": ...}, as Jina's API allows).
    if (docs[i].is_string()) {
      r.documents.push_back(docs[i].get<std::string>());
    } else if (docs[i].is_object()) {
      r.documents.push_back(Fields(docs[i], param).required_string("text"));
    } else {
      reject(param, "'" + param + "' must be a string or an object with 'text'");
    }
    r.inputs.push_back(rerank_tokens(tokenizer, query, r.documents.back()));
    if (static_cast<int64_t>(r.inputs.back().size()) > n_ctx)
      reject(param, "the query and '" + param + "' make " + std::to_string(r.inputs.back().size()) +
                        " tokens; the model reads at most " + std::to_string(n_ctx));
  }
  if (auto top_n = body.optional_integer("top_n", 1, int64_t{1} << 30)) r.top_n = *top_n;
  r.return_documents = body.boolean("return_documents", false);
  (void)body.optional_string("model");
  return r;
}

json rerank_reply(const std::vector<float>& scores, const RerankRequest& request, const std::string& model) {
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  const size_t n = request.top_n > 0 ? std::min(order.size(), static_cast<size_t>(request.top_n)) : order.size();
  json results = json::array();
  int64_t n_tokens = 0;
  for (const auto& input : request.inputs) n_tokens += static_cast<int64_t>(input.size());
  for (size_t k = 0; k < n; ++k) {
    json item{{"index", order[k]}, {"relevance_score", scores[order[k]]}};
    if (request.return_documents) item["document"] = json{{"text", request.documents[order[k]]}};
    results.push_back(std::move(item));
  }
  return json{{"object", "list"},
              {"model", model},
              {"results", std::move(results)},
              {"usage", json{{"prompt_tokens", n_tokens}, {"total_tokens", n_tokens}}}};
}

}  // namespace osprey::server
