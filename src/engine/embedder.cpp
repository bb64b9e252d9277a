#include "engine/embedder.h"

#include <algorithm>
#include <cmath>

namespace osprey {

void normalize_embedding(std::vector<float>& v) {
  double ss = 0;
  for (float x : v) ss += static_cast<double>(x) * x;
  if (ss == 0) return;
  const double inv = 1.0 / std::sqrt(ss);
  for (float& x : v) x = static_cast<float>(x * inv);
}

std::vector<int32_t> embedding_tokens(const Tokenizer& tokenizer, const std::string& text) {
  return tokenizer.encode(text, /*add_special=*/true, /*parse_special=*/true);
}

std::vector<int32_t> rerank_tokens(const Tokenizer& tokenizer, const std::string& query, const std::string& document) {
  std::vector<int32_t> ids = tokenizer.encode(query, /*add_special=*/true, /*parse_special=*/false);
  const Vocab& v = tokenizer.vocab();
  // The query ends with its separator whether or not the vocabulary adds one.
  if (v.eos >= 0 && (ids.empty() || ids.back() != v.eos)) ids.push_back(v.eos);
  const std::vector<int32_t> doc = tokenizer.encode(document, /*add_special=*/false, /*parse_special=*/false);
  ids.insert(ids.end(), doc.begin(), doc.end());
  if (v.eos >= 0) ids.push_back(v.eos);
  return ids;
}

Status check_embedding_inputs(const Model& model, const std::vector<std::vector<int32_t>>& inputs,
                              const std::string& what) {
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::string name = inputs.size() > 1 ? what + " " + std::to_string(i) : what;
    if (inputs[i].empty()) return InvalidArgument(name + " has no tokens");
    if (static_cast<int64_t>(inputs[i].size()) > model.n_ctx())
      return InvalidArgument(name + " has " + std::to_string(inputs[i].size()) + " tokens; the model reads at most " +
                             std::to_string(model.n_ctx()));
    for (int32_t t : inputs[i])
      if (t < 0 || t >= model.config().n_vocab)
        return InvalidArgument(name + " holds token id " + std::to_string(t) + ", outside the vocabulary (0.." +
                               std::to_string(model.config().n_vocab - 1) + ")");
  }
  return Status::Ok();
}

Expected<std::vector<std::vector<float>>> embed_inputs(Model& model, const std::vector<std::vector<int32_t>>& inputs,
                                                       bool normalize) {
  OSPREY_TRY(check_embedding_inputs(model, inputs));
  const int64_t E = model.config().n_embd;
  std::vector<std::vector<float>> out;
  out.reserve(inputs.size());
  std::vector<BatchItem> items;
  // As many inputs at once as there are sequences (the model packs their
  // tokens into passes of its batch size), fewer when the KV pool cannot
  // hold them all.
  size_t group = static_cast<size_t>(model.n_seq_max());
  for (size_t first = 0; first < inputs.size();) {
    items.clear();
    for (size_t i = first; i < inputs.size() && items.size() < group; ++i) {
      BatchItem it;
      it.seq = static_cast<int>(items.size());
      it.tokens = inputs[i].data();
      it.n = static_cast<int64_t>(inputs[i].size());
      it.logits = false;
      it.embed = true;
      items.push_back(it);
    }
    auto done = model.eval_batch(items.data(), items.size());
    for (const BatchItem& it : items) model.seq_clear(it.seq);
    if (!done.ok() && done.status().code() == ErrorCode::kOutOfRange && group > 1) {
      group = std::max<size_t>(1, items.size() / 2);
      continue;
    }
    if (!done.ok()) return done.status();
    for (size_t k = 0; k < items.size(); ++k) {
      const float* e = model.embeddings() + static_cast<int64_t>(k) * E;
      out.emplace_back(e, e + E);
      if (normalize) normalize_embedding(out.back());
    }
    first += items.size();
  }
  return out;
}

}  // namespace osprey
