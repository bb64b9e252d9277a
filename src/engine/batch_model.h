// What the batching scheduler needs of a model: numbered sequence slots over
// a shared pool of KV blocks, and one forward pass over items from several
// sequences. A narrow interface, so the scheduler's tests can drive it with a
// scripted fake and the scheduler never sees a family or a kernel.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "models/model.h"
#include "osprey/status.h"

namespace osprey {

class BatchModel {
 public:
  virtual ~BatchModel() = default;
  virtual int n_seq_max() const = 0;
  virtual int64_t n_ctx() const = 0;  // per sequence
  virtual int32_t n_vocab() const = 0;
  virtual int64_t seq_n_past(int seq) const = 0;
  virtual void seq_clear(int seq) = 0;
  virtual void seq_truncate(int seq, int64_t n_past) = 0;  // forgets positions >= n_past (rejected drafts)
  // Attaches cached blocks holding a prefix of `tokens` to an empty sequence;
  // returns the positions now held (0 without a prefix cache).
  virtual int64_t seq_attach_prefix(int seq, const int32_t* tokens, int64_t n) = 0;
  virtual int64_t blocks_needed(int seq, int64_t n) const = 0;
  virtual int64_t available_blocks() const = 0;
  // Logits of the items that asked, in item order, rows of n_vocab (an
  // item with all_logits gives one row per token). On
  // error no sequence has changed; kOutOfRange means the KV pool ran dry.
  virtual Expected<const float*> eval_batch(const BatchItem* items, size_t count) = 0;
  // Embeddings: after eval_batch, the rows of the items that asked (n_embd
  // each). An encoder (not causal) must read each input whole in one item.
  virtual int64_t n_embd() const { return 0; }
  virtual const float* embeddings() const { return nullptr; }
  virtual bool causal() const { return true; }
  // LoRA adapters: each one's scale for an empty sequence (empty: the
  // scales the model was loaded with).
  virtual Status seq_set_lora(int /*seq*/, const std::vector<float>& scales) {
    return scales.empty() ? Status::Ok() : InvalidArgument("this model has no LoRA adapters");
  }
};

// A loaded Model as a BatchModel.
class ModelBatch final : public BatchModel {
 public:
  explicit ModelBatch(Model& m) : m_(m) {}
  int n_seq_max() const override { return m_.n_seq_max(); }
  int64_t n_ctx() const override { return m_.n_ctx(); }
  int32_t n_vocab() const override { return static_cast<int32_t>(m_.config().n_vocab); }
  int64_t seq_n_past(int seq) const override { return m_.seq_n_past(seq); }
  void seq_clear(int seq) override { m_.seq_clear(seq); }
  void seq_truncate(int seq, int64_t n_past) override { m_.seq_truncate(seq, n_past); }
  int64_t seq_attach_prefix(int seq, const int32_t* tokens, int64_t n) override {
    return m_.seq_attach_prefix(seq, tokens, n);
  }
  int64_t blocks_needed(int seq, int64_t n) const override { return m_.blocks_needed(seq, n); }
  int64_t available_blocks() const override { return m_.kv().available_blocks(); }
  Expected<const float*> eval_batch(const BatchItem* items, size_t count) override {
    return m_.eval_batch(items, count);
  }
  int64_t n_embd() const override { return m_.config().n_embd; }
  const float* embeddings() const override { return m_.embeddings(); }
  bool causal() const override { return m_.config().causal; }
  Status seq_set_lora(int seq, const std::vector<float>& scales) override {
    const auto& adapters = m_.adapters();
    if (adapters.empty() && scales.empty()) return Status::Ok();
    if (!scales.empty() && scales.size() != adapters.size())
      return InvalidArgument("expected a scale for each of the " + std::to_string(adapters.size()) + " adapters");
    std::vector<float> s = scales;
    if (s.empty())
      for (const LoraAdapter& a : adapters) s.push_back(a.scale);
    return m_.seq_set_lora(seq, s.data());
  }

 private:
  Model& m_;
};

}  // namespace osprey
