// The llama-style decoder block, shared by llama, mistral and qwen2:
//   x += Wo · attention(rope(Wq·norm(x) + bq), rope(Wk·norm(x) + bk), Wv·norm(x) + bv)
//   x += Wdown · (silu(Wgate·norm(x)) * Wup·norm(x))
// Optional pieces (QKV biases, tied output, rope frequency factors) follow
// from the tensors present in the file.
#include <cmath>

#include "core/fp16.h"
#include "kernels/ops.h"
#include "models/model.h"

namespace osprey {

void Model::forward_batch(const int32_t* tokens, int64_t n, int64_t n_out, float* logits) {
  const ModelConfig& c = config_;
  const int64_t E = c.n_embd, hd = c.head_dim, q_dim = c.n_head * hd, kv_dim = c.n_head_kv * hd;
  const int64_t bs = KvCache::kBlockSize;
  Workspace& w = ws_;
  ThreadPool& pool = *pool_;
  Tracer* tr = tracer_;
  const TraceSpan pass(tr, "forward", -1, n);

  {
    const TraceSpan span(tr, "embed", -1, n);
    const auto& emb = weights_.tok_embd;
    for (int64_t t = 0; t < n; ++t) {
      const uint8_t* row = emb.data + tokens[t] * emb.row_bytes;
      if (emb.kernel.unpack != nullptr) {  // repacked as the output matrix
        const int64_t g = emb.kernel.row_group;
        emb.kernel.unpack(emb.data + tokens[t] / g * g * emb.row_bytes, tokens[t] % g, w.embd_row.data(), E);
        row = w.embd_row.data();
      }
      emb.ops->dequantize(row, w.x.data() + t * E, E);
    }
  }

  kernels::RopeParams rope;
  rope.style = c.rope_style;
  rope.rope_dim = static_cast<int>(c.rope_dim);
  rope.freq_base = static_cast<float>(c.rope_freq_base);
  rope.linear_scale = static_cast<float>(c.rope_scale_linear);
  rope.freq_factors = weights_.rope_freq_factors.empty() ? nullptr : weights_.rope_freq_factors.data();
  const float att_scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const int64_t group = c.n_head / c.n_head_kv;

  for (int64_t l = 0; l < c.n_layer; ++l) {
    const LayerWeights& L = weights_.layers[l];
    {
      // The attention norm is fused into the encoding of the Q/K/V input.
      const TraceSpan span(tr, "norm_qkv", l, n);
      const kernels::WeightMatrix* qkv[3] = {&L.wq, &L.wk, &L.wv};
      float* qkv_out[3] = {w.q.data(), w.k.data(), w.v.data()};
      kernels::norm_matmul_group(pool, qkv, 3, w.x.data(), L.attn_norm.data(), static_cast<float>(c.norm_eps), n, qkv_out,
                                 w.act.data(), static_cast<int64_t>(w.act.size()));
      if (!L.bq.empty()) kernels::add_bias(w.q.data(), L.bq.data(), n, q_dim);
      if (!L.bk.empty()) kernels::add_bias(w.k.data(), L.bk.data(), n, kv_dim);
      if (!L.bv.empty()) kernels::add_bias(w.v.data(), L.bv.data(), n, kv_dim);
    }
    {
      // Tokens are independent here (each writes its own cache row), so a
      // prompt's tokens are split over the threads.
      const TraceSpan span(tr, "rope_kv_write", l, n);
      pool.parallel_for(n, 1, [&](int64_t t0, int64_t t1, int) {
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t pos = w.tok_pos[t];
          const Sequence& s = seqs_[w.tok_seq[t]];
          kernels::rope(w.q.data() + t * q_dim, static_cast<int>(c.n_head), static_cast<int>(hd), pos, rope);
          kernels::rope(w.k.data() + t * kv_dim, static_cast<int>(c.n_head_kv), static_cast<int>(hd), pos, rope);
          const int64_t row = int64_t{s.blocks[pos / bs]} * bs + pos % bs;
          uint16_t* kc = cache_.k(l, row);
          uint16_t* vc = cache_.v(l, row);
          for (int64_t i = 0; i < kv_dim; ++i) {
            kc[i] = fp32_to_fp16(w.k[t * kv_dim + i]);
            vc[i] = fp32_to_fp16(w.v[t * kv_dim + i]);
          }
        }
      });
    }
    {
      // One task per (run of up to att_tokens_ rows of one sequence, KV head):
      // the queries of a grouped-query group for those tokens share each K
      // and V row. A token sees its sequence's positions up to its own.
      const TraceSpan span(tr, "attention", l, n);
      int64_t n_runs = 0;
      for (int64_t t = 0; t < n; ++t)
        if (t == 0 || w.tok_seq[t] != w.tok_seq[t - 1] || t - w.att_runs[n_runs - 1] == att_tokens_)
          w.att_runs[n_runs++] = t;
      w.att_runs[n_runs] = n;
      pool.parallel_for(n_runs * c.n_head_kv, 1, [&](int64_t i0, int64_t i1, int thread) {
        float* scores = w.scores.data() + thread * att_tokens_ * group * n_ctx_;
        const float* q[kernels::kMaxGroupQueries];
        float* out[kernels::kMaxGroupQueries];
        int64_t n_kv[kernels::kMaxGroupQueries];
        for (int64_t i = i0; i < i1; ++i) {
          const int64_t run = i / c.n_head_kv, kvh = i % c.n_head_kv;
          const int64_t t0 = w.att_runs[run], t1 = w.att_runs[run + 1];
          const kernels::KvView kv{cache_.k(l, 0) + kvh * hd, cache_.v(l, 0) + kvh * hd, kv_dim,
                                   seqs_[w.tok_seq[t0]].blocks.data(), bs};
          // att_tokens_ x min(group, kMaxGroupQueries) queries fit one call.
          const int64_t h_end = (kvh + 1) * group, h_step = std::min<int64_t>(group, kernels::kMaxGroupQueries);
          for (int64_t h0 = kvh * group; h0 < h_end; h0 += h_step) {
            int nq = 0;
            for (int64_t t = t0; t < t1; ++t)
              for (int64_t h = h0; h < std::min(h_end, h0 + h_step); ++h) {
                q[nq] = w.q.data() + t * q_dim + h * hd;
                out[nq] = w.att.data() + t * q_dim + h * hd;
                n_kv[nq++] = w.tok_pos[t] + 1;
              }
            attend_group_(q, nq, n_kv, kv, static_cast<int>(hd), att_scale, scores, out);
          }
        }
      });
    }
    {
      const TraceSpan span(tr, "attn_output", l, n);
      kernels::matmul(pool, L.wo, w.att.data(), n, w.proj.data(), w.act.data());
      kernels::add(w.x.data(), w.proj.data(), n * E);
    }
    {
      // Likewise the FFN norm, into the gate/up input.
      const TraceSpan span(tr, "norm_ffn_gate_up", l, n);
      const kernels::WeightMatrix* gate_up[2] = {&L.w_gate, &L.w_up};
      float* gate_up_out[2] = {w.gate.data(), w.up.data()};
      kernels::norm_matmul_group(pool, gate_up, 2, w.x.data(), L.ffn_norm.data(), static_cast<float>(c.norm_eps), n,
                                 gate_up_out, w.act.data(), static_cast<int64_t>(w.act.size()));
    }
    {
      const TraceSpan span(tr, "silu_mul", l, n);
      // Elementwise: ranges of 16 floats (one cache line) and up split over the threads.
      pool.parallel_for(n * c.n_ff, 16, [&](int64_t b, int64_t e, int) {
        silu_mul_(w.gate.data() + b, w.gate.data() + b, w.up.data() + b, e - b);
      });
    }
    {
      const TraceSpan span(tr, "ffn_down", l, n);
      kernels::matmul(pool, L.w_down, w.gate.data(), n, w.proj.data(), w.act.data());
      kernels::add(w.x.data(), w.proj.data(), n * E);
    }
  }
  // Only the wanted rows need logits; pack them at the front of x.
  for (int64_t r = 0; r < n_out; ++r)
    if (w.out_rows[r] != r) std::copy_n(w.x.begin() + w.out_rows[r] * E, E, w.x.begin() + r * E);
  if (n_out > 0) {
    const TraceSpan span(tr, "output", -1, n_out);
    compute_logits(n_out, logits);
  }
}

void Model::compute_logits(int64_t n_out, float* logits) {
  const kernels::WeightMatrix* out[1] = {&weights_.output};
  float* ys[1] = {logits};
  kernels::norm_matmul_group(*pool_, out, 1, ws_.x.data(), weights_.output_norm.data(),
                             static_cast<float>(config_.norm_eps), n_out, ys, ws_.act.data(),
                             static_cast<int64_t>(ws_.act.size()));
}

}  // namespace osprey
