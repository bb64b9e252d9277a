// An independent reference forward pass for llama-style models, used to check
// osprey's logits. It shares no code with src/: its own GGUF reading, its own
// dequantization (written per element from the format definitions) and plain
// double-precision arithmetic. Slow and simple on purpose.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace reference {

class Model {
 public:
  // Returns "" on success, else a message. `n_ctx`: the context the engine
  // under test runs with (LongRoPE picks its factor table by it).
  std::string load(const std::string& path, int n_ctx = 4096);
  // Merges a LoRA adapter (GGUF pairs .lora_a/.lora_b, adapter.lora.alpha)
  // into the matrices it adapts: W += scale * alpha / r * B A. Call after
  // load and before the first step. Returns "" or a message.
  std::string add_lora(const std::string& path, double scale);
  // Leaves out the attention of one layer (its output is not added), to
  // show that a comparison would notice. -1: none.
  void skip_attention(int layer) { skip_attention_ = layer; }
  // Appends one token and returns the logits that follow it.
  std::vector<double> step(int token);
  int vocab_size() const { return n_vocab_; }
  // The pooled, unnormalised embedding of a whole input from an empty
  // state: a BERT encoder's (bidirectional, LayerNorm after each residual,
  // mean or first-token pooling), or a decoder's last hidden state after
  // output_norm. Leaves the decoder's state at the input's end.
  std::vector<double> embed(const std::vector<int>& tokens);

 private:
  struct Tensor {
    std::vector<uint64_t> dims;
    uint32_t type = 0;
    uint64_t offset = 0;
  };
  std::string read_gguf(const std::string& path);  // the file's metadata and tensor table
  std::vector<double> matrix_row(const std::string& name, uint64_t row) const;
  std::vector<double> vec(const std::string& name) const;
  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  std::vector<double> matvec(const std::string& name, const std::vector<double>& x) const;
  // Expert e of a stacked tensor {n_in, rows, n_expert} times x.
  std::vector<double> expert_matvec(const std::string& name, int e, const std::vector<double>& x) const;
  double num_(const std::string& key) const;  // <arch>.key, or 0
  std::vector<double> vec_all(const std::string& name) const;  // every element of a tensor, in order

  std::vector<uint8_t> bytes_;
  uint64_t data_start_ = 0;
  std::map<std::string, Tensor> tensors_;
  std::map<std::string, double> numbers_;
  std::map<std::string, std::string> strings_;

  std::string arch_;
  int n_vocab_ = 0, n_embd_ = 0, n_layer_ = 0, n_head_ = 0, n_kv_ = 0, head_dim_ = 0, rope_dim_ = 0;
  double eps_ = 1e-5, rope_base_ = 10000, rope_scale_ = 1, attn_factor_ = 1;
  double attn_softcap_ = 0, final_softcap_ = 0, query_scale_ = 0, embd_scale_ = 1;
  bool neox_ = false, gelu_ = false, yarn_ = false;
  int n_ctx_ = 4096, n_ctx_orig_ = 0, skip_attention_ = -1;
  std::vector<int> window_;          // per layer; 0: global
  std::vector<double> layer_base_;   // per layer rope base
  std::vector<double> layer_scale_;  // per layer linear rope scale
  // Cached matrices, dequantized once: name -> [rows][cols].
  mutable std::map<std::string, std::vector<std::vector<double>>> cache_;
  std::vector<std::vector<std::vector<double>>> keys_, values_;  // [layer][pos][kv_dim]
  int pos_ = 0;
  std::vector<double> last_hidden_;  // the decoder's normed final state after the last step
  std::vector<double> encode_bert(const std::vector<int>& tokens) const;
};

}  // namespace reference
