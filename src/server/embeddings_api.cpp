#include "server/embeddings_api.h"

#include <cstring>

#include "engine/embedder.h"

namespace osprey::server {

namespace {

bool is_token_id(const json& v) { return v.is_number_integer() || v.is_number_unsigned(); }

std::string base64(const std::vector<float>& v) {
  static const char kDigits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string bytes(v.size() * 4, '\0');
  for (size_t i = 0; i < v.size(); ++i) {
    uint32_t u;
    std::memcpy(&u, &v[i], 4);
    for (int b = 0; b < 4; ++b) bytes[i * 4 + b] = static_cast<char>((u >> (8 * b)) & 0xFF);  // little-endian
  }
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const uint32_t n = (static_cast<uint8_t>(bytes[i]) << 16) |
                       (i + 1 < bytes.size() ? static_cast<uint8_t>(bytes[i + 1]) << 8 : 0) |
                       (i + 2 < bytes.size() ? static_cast<uint8_t>(bytes[i + 2]) : 0);
    out += kDigits[(n >> 18) & 63];
    out += kDigits[(n >> 12) & 63];
    out += i + 1 < bytes.size() ? kDigits[(n >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? kDigits[n & 63] : '=';
  }
  return out;
}

}  // namespace

EmbeddingsRequest parse_embeddings_request(const Fields& body, const Tokenizer& tokenizer, const EmbeddingsLimits& limits) {
  EmbeddingsRequest r;
  const json& input = body.required("input");
  auto add_text = [&](const json& s, const std::string& param) {
    if (s.get_ref<const std::string&>().empty()) reject(param, "'" + param + "' is an empty string");
    r.inputs.push_back(embedding_tokens(tokenizer, s.get<std::string>()));
  };
  if (input.is_string()) {
    add_text(input, "input");
  } else if (input.is_array() && !input.empty() && is_token_id(input[0])) {
    r.inputs.push_back(token_ids(input, "input", limits.n_vocab));
  } else if (input.is_array() && !input.empty()) {
    if (static_cast<int64_t>(input.size()) > limits.max_inputs)
      reject("input", "'input' has " + std::to_string(input.size()) + " entries; at most " +
                          std::to_string(limits.max_inputs) + " are embedded per request");
    for (size_t i = 0; i < input.size(); ++i) {
      const std::string param = element_path("input", i);
      if (input[i].is_string()) add_text(input[i], param);
      else if (input[i].is_array() && !input[i].empty()) r.inputs.push_back(token_ids(input[i], param, limits.n_vocab));
      else reject(param, "'" + param + "' must be a string or a non-empty array of token ids");
    }
  } else {
    body.fail("input", "'input' must be a string, an array of strings, an array of token ids, or an array of such arrays");
  }
  for (size_t i = 0; i < r.inputs.size(); ++i) {
    const std::string param = r.inputs.size() > 1 || (input.is_array() && !is_token_id(input[0])) ? element_path("input", i)
                                                                                                 : "input";
    if (static_cast<int64_t>(r.inputs[i].size()) > limits.n_ctx)
      reject(param, "'" + param + "' has " + std::to_string(r.inputs[i].size()) +
                        " tokens; the model reads at most " + std::to_string(limits.n_ctx));
    if (r.inputs[i].empty()) reject(param, "'" + param + "' has no tokens");
  }
  r.base64 = body.choice("encoding_format", {"float", "base64"}, "float") == "base64";
  if (auto d = body.optional_integer("dimensions", 1, limits.n_embd)) {
    if (*d != limits.n_embd && !limits.matryoshka)
      reject("dimensions", "this model gives " + std::to_string(limits.n_embd) +
                               " dimensions; shorter vectors keep their meaning only for models trained for it, so "
                               "the server allows 'dimensions' below that only when started with --matryoshka");
    r.dimensions = *d;
  }
  (void)body.optional_string("model");  // one model per server: any name is accepted, as for completions
  (void)body.optional_string("user");
  return r;
}

json embeddings_reply(std::vector<std::vector<float>> vectors, const EmbeddingsRequest& request, const std::string& model) {
  json data = json::array();
  int64_t n_tokens = 0;
  for (size_t i = 0; i < vectors.size(); ++i) {
    std::vector<float>& v = vectors[i];
    if (request.dimensions > 0 && static_cast<size_t>(request.dimensions) < v.size()) v.resize(request.dimensions);
    normalize_embedding(v);
    json e{{"object", "embedding"}, {"index", i}};
    if (request.base64) e["embedding"] = base64(v);
    else e["embedding"] = v;
    data.push_back(std::move(e));
    n_tokens += static_cast<int64_t>(request.inputs[i].size());
  }
  return json{{"object", "list"},
              {"data", std::move(data)},
              {"model", model},
              {"usage", json{{"prompt_tokens", n_tokens}, {"total_tokens", n_tokens}}}};
}

}  // namespace osprey::server
