// The pre-norm decoder (models/blocks.h's decoder_forward) written against
// the device seam (backends/device.h), for a model run on a GPU back end:
//   x = embedding[token]                      (looked up and scaled on the host, as on the CPU)
//   per layer:  h = rms_norm(x)
//               q, k, v = Wq h + bq, Wk h + bk, Wv h + bv; per-head Q/K norms
//               rope(q), rope(k) (the layer's base); k, v -> the fp16 cache at each row's position
//               x += Wo attend(q, cache) (+ bo)               (or post_norm(Wo attend(...)): Gemma;
//                                                              a sink logit per head: gpt-oss)
//               x += Wdown (act(Wgate rms_norm(x)) * Wup rms_norm(x))   (act: SiLU, GELU or clamped SwiGLU;
//                                                                         post-norm likewise)
//               or, in a mixture-of-experts layer, routed on the device (no read-back mid-pass):
//               ids, wts = top k of router(rms_norm(x));  slot (t, j) = down_e(act(gate_e h) * up_e h), e = ids[t, j]
//               (gpt-oss: a router bias, and each expert's biases after its products)
//               x += sum over j of wts[t, j] * slot (t, j)
//   logits = Wout rms_norm(x), for the rows that want them (soft-capped: Gemma 2)
// Weights are uploaded once; keys and values stay on the device, in blocks
// of the same paged layout and block tables the CPU cache uses, so
// sequences, batching and truncation work as they do on the CPU.
//
// It runs the decoder families (llama, mistral, qwen2, qwen3, gemma2, gemma3,
// phi3, and with experts Mixtral, qwen3moe, olmoe and gpt-oss) with the matrix types
// backends/weight_layout.h packs. `check`
// names everything else a model needs, so that it is refused whole rather
// than split with the CPU.
#pragma once

#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "backends/device.h"
#include "models/blocks.h"

namespace osprey {

struct DevicePassSize {
  int64_t n_batch = 0;         // rows per pass
  int n_seq_max = 1;
  int64_t kv_blocks = 0;       // blocks of KvCache::kBlockSize positions in the pool
  int64_t blocks_per_seq = 0;  // the longest block table
};

class DevicePass {
 public:
  // What the device pass lacks to run this model ("" when it runs it).
  static std::string check(const GgufFile& file, const ModelConfig& c, const ModelWeights& w);

  // Uploads the weights and makes the cache and activation buffers, for a
  // model `check` passed.
  static Expected<std::unique_ptr<DevicePass>> create(std::unique_ptr<backends::Device> device, const GgufFile& file,
                                                      const ModelConfig& c, const ModelWeights& w,
                                                      const float* rope_factors, const DevicePassSize& size);

  // The pass's rows (p.ws tokens, sequences, positions; p.block_tables)
  // through every layer; the logits of p.ws.out_rows land in p.logits.
  Status forward(Pass& p);

  // "vulkan (llvmpipe (LLVM 15.0.6, 256 bits))".
  std::string name() const;
  int64_t kv_bytes() const { return kv_bytes_; }
  int64_t device_bytes() const { return device_->bytes_allocated(); }
  // Buffers the weight matrices were uploaded in (more than the matrices
  // when some were split), and rows of logits one pass makes.
  int64_t weight_parts() const { return weight_parts_; }
  int64_t logit_rows() const { return logit_rows_; }
  // Passes whose commands the device recorded rather than replayed (-1: it records every one).
  int64_t passes_recorded() const { return device_->passes_recorded(); }

  // Time on the device per kernel, summed over the passes since timing was
  // turned on (bench --device). time_operations(true) is false when the
  // device cannot time its dispatches.
  struct OpTime {
    std::string kernel;
    int64_t calls = 0;
    double seconds = 0;
  };
  bool time_operations(bool on);
  const std::vector<OpTime>& operation_times() const { return op_times_; }
  void clear_operation_times() { op_times_.clear(); }

 private:
  // A weight matrix on the device: one buffer, or several of consecutive
  // rows when it is larger than the device binds at once.
  struct Matrix {
    struct Part {
      backends::Buffer buf;
      uint32_t o_base = 0, n_out = 0;
    };
    std::vector<Part> parts;
    const backends::KernelSource* kernel = nullptr;
    const backends::KernelSource* kernel_tokens = nullptr;  // four rows a workgroup; dense matrices only
    uint32_t n_in = 0, n_out = 0;  // per expert, when stacked
    uint32_t experts = 1;          // stacked experts: parts hold whole experts
  };
  struct Layer {
    Matrix wq, wk, wv, wo, gate, up, down;        // dense feed-forward matrices are absent in a mixture layer
    Matrix router, gate_exps, up_exps, down_exps;  // a mixture layer's, else absent
    backends::Buffer attn_norm, ffn_norm, bq, bk, bv, q_norm, k_norm;  // bias/norm buffers may be absent
    backends::Buffer attn_post_norm, ffn_post_norm;                      // Gemma's, absent elsewhere
    backends::Buffer sinks, bo;                                          // gpt-oss's attention sinks and output bias
    backends::Buffer router_bias, gate_bias, up_bias, down_bias;         // gpt-oss's, per expert
    backends::Buffer kc, vc;
    int64_t q_norm_width = 0, k_norm_width = 0;  // head_dim (per head) or the whole row's width
    int rope = 0;  // which of the pass's rotary tables (ropes_) this layer reads
  };
  // The rotary angles of one (base, scale) the layers use: Gemma 3's window
  // layers have a base of their own.
  struct Rope {
    kernels::RopeParams params;
    backends::Buffer cs;  // [n_batch, rope_dim] (cos, sin) pairs of the pass's positions
  };

  DevicePass() = default;
  // m's rows as the file stores them (a fused tensor's part from its own
  // row), or with experts > 1 the whole stack of experts m is the first of.
  Expected<Matrix> upload_matrix(const GgufFile& file, const ModelWeights& w, const kernels::WeightMatrix& m,
                                 int64_t experts = 1);
  Expected<backends::Buffer> upload_vector(const std::vector<float>& v, const std::string& what);
  Expected<backends::Buffer> scratch(int64_t floats, const std::string& what);
  void matmul(const Matrix& m, backends::Buffer x, backends::Buffer y, uint32_t rows, bool accumulate);
  // y[s] = W_ids[s] x[s / x_div] for each of `slots` routing slots (stacked experts).
  void matmul_experts(const Matrix& m, backends::Buffer x, backends::Buffer y, uint32_t slots, uint32_t x_div);
  void dispatch_matmul(const Matrix& m, const Matrix::Part& part, backends::Buffer x, backends::Buffer y,
                       const uint32_t (&params)[9], uint32_t rows);
  // The gated feed-forward's middle: SiLU, GELU or gpt-oss's clamped SwiGLU.
  const backends::KernelSource& gated_activation() const;
  // y[r] += bias over `rows` rows of `width`; with expert_bias, each slot's expert's row of the biases.
  void add_bias(backends::Buffer y, backends::Buffer bias, int64_t rows, int64_t width);
  void expert_bias(backends::Buffer y, backends::Buffer bias, uint32_t slots, uint32_t width);
  // The output head over `rows` rows named by out_idx_: logits_ rows 0..rows.
  void output_head(uint32_t rows);
  // finish(), then each kernel's time added to op_times_ while timing.
  Status finish_pass();
  // x += the mixture of experts of layer L (its pre-norm applied).
  void mixture_of_experts(const Layer& L, uint32_t rows);
  void elementwise(const backends::KernelSource& k, std::initializer_list<backends::Buffer> buffers, const void* params,
                   int param_bytes, int64_t n);
  // y = m x, then x += post_norm(y) when the block has one, else x += m x.
  void project_into_residual(const Matrix& m, backends::Buffer in, backends::Buffer post_norm, uint32_t rows);

  std::unique_ptr<backends::Device> device_;
  const ModelConfig* c_ = nullptr;
  DevicePassSize size_;
  std::vector<Rope> ropes_;
  std::vector<Layer> layers_;
  backends::Buffer output_norm_;
  Matrix output_;
  // Activations, [n_batch, width] each.
  backends::Buffer x_, h_, q_, k_, v_, att_, gate_, up_, head_in_, logits_;
  // Mixture-of-experts layers: [n_batch, n_expert] router logits; per slot
  // (n_batch * k) its expert and weight, and its gate/up and output rows.
  backends::Buffer router_, ids_, wts_, exp_gate_, exp_up_, exp_out_;
  // Per-pass inputs: cache slots, (sequence, position) of each row, block
  // tables, the rows that want logits (and each Rope's angles).
  backends::Buffer slots_, rows_, tables_, out_idx_;
  std::vector<float> host_cs_;
  std::vector<uint32_t> host_slots_, host_rows_, host_out_;
  std::vector<int32_t> host_tables_;
  std::vector<int64_t> host_last_block_;  // [n_seq_max] each sequence's last block in the pass
  const backends::KernelSource *rms_norm_ = nullptr, *rms_norm_inplace_ = nullptr, *rope_k_ = nullptr,
                               *kv_store_ = nullptr, *attention_ = nullptr, *silu_gate_ = nullptr,
                               *add_bias_ = nullptr, *gather_rows_ = nullptr, *gelu_gate_ = nullptr,
                               *rms_norm_add_ = nullptr, *softcap_ = nullptr, *moe_route_ = nullptr,
                               *moe_combine_ = nullptr, *swiglu_oai_ = nullptr, *expert_bias_ = nullptr;
  int64_t logit_rows_ = 0;  // rows of logits_ (at most n_batch)
  int64_t weight_parts_ = 0;
  int64_t kv_bytes_ = 0;
  bool timing_ = false;
  std::vector<OpTime> op_times_;  // in order of first use
};

}  // namespace osprey
