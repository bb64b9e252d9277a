#include "models/blocks.h"

#include <algorithm>
#include <cmath>

#include "core/fp16.h"
#include "kernels/kv_row.h"
#include "kernels/ops.h"

namespace osprey {

namespace {

// osprey imatrix: what each matrix reads, recorded just before it reads it.
void observe(Pass& p, const kernels::WeightMatrix& m, const float* rows, int64_t n) {
  if (p.stats != nullptr) p.stats->add(m.tensor, rows, n, m.n_in);
}

// The inputs a fused norm makes on the way into its matrices, rebuilt as
// kernels::rmsnorm gives them; matrices cut from one tensor count once.
void observe_normed(Pass& p, const kernels::WeightMatrix* const* ms, int count, const float* x,
                    const std::vector<float>& norm, float eps, int64_t n) {
  if (p.stats == nullptr) return;
  const int64_t E = ms[0]->n_in;
  std::vector<float> normed(static_cast<size_t>(n * E));
  for (int64_t t = 0; t < n; ++t) kernels::rmsnorm(&normed[t * E], x + t * E, norm.data(), E, eps);
  for (int i = 0; i < count; ++i) {
    bool seen = false;
    for (int k = 0; k < i; ++k) seen = seen || ms[k]->tensor == ms[i]->tensor;
    if (!seen) p.stats->add(ms[i]->tensor, normed.data(), n, E);
  }
}

// x[t] = rmsnorm(x[t]) * weight for each of n rows of `dim`, split over the threads.
void norm_rows(ThreadPool& pool, float* x, const std::vector<float>& weight, int64_t n, int64_t dim, float eps) {
  pool.parallel_for(n, 1, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) kernels::rmsnorm(x + t * dim, x + t * dim, weight.data(), dim, eps);
  });
}

}  // namespace

void decoder_forward(Pass& p) {
  embed(p);
  for (int64_t l = 0; l < p.c.n_layer; ++l) {
    attention(p, l);
    if (p.c.layers[l].moe) moe_feed_forward(p, l);
    else feed_forward(p, l);
  }
  output_head(p);
}

void embed(Pass& p) {
  const TraceSpan span(p.tracer, "embed", -1, p.n);
  const auto& emb = p.w.tok_embd;
  const int64_t E = p.c.n_embd;
  Workspace& w = p.ws;
  for (int64_t t = 0; t < p.n; ++t) {
    const int32_t token = w.tokens[t];
    const uint8_t* row = emb.data + token * emb.row_bytes;
    if (emb.kernel.unpack != nullptr) {  // repacked as the output matrix
      const int64_t g = emb.kernel.row_group;
      emb.kernel.unpack(emb.data + token / g * g * emb.row_bytes, token % g, w.embd_row.data(), E);
      row = w.embd_row.data();
    }
    emb.ops->dequantize(row, w.x.data() + t * E, E);
  }
  if (p.c.embd_scale != 1.0) {
    // Rounded to float first, as the reference engines multiply by a float.
    const float scale = static_cast<float>(p.c.embd_scale);
    for (int64_t i = 0; i < p.n * E; ++i) w.x[i] *= scale;
  }
}

void attention(Pass& p, int64_t l) {
  attention_output(p, l);
  kernels::add(p.ws.x.data(), p.ws.proj.data(), p.n * p.c.n_embd);
}

void attention_output(Pass& p, int64_t l) {
  const ModelConfig& c = p.c;
  const AttentionWeights& A = p.w.layers[l].attn;
  const LayerConfig& lc = c.layers[l];
  const int64_t n = p.n, E = c.n_embd, hd = c.head_dim, q_dim = c.n_head * hd, kv_dim = c.n_head_kv * hd;
  const int64_t bs = KvCache::kBlockSize;
  const float eps = static_cast<float>(c.norm_eps);
  Workspace& w = p.ws;
  ThreadPool& pool = p.pool;
  // Where this layer's keys and values live.
  const bool own_pool = lc.window > 0 && p.window_cache.n_blocks() > 0;
  KvCache& cache = own_pool ? p.window_cache : p.cache;
  const std::vector<const int32_t*>& tables = own_pool ? p.window_tables : p.block_tables;
  const int64_t slot = p.layer_slot[l];
  {
    // The attention norm is fused into the encoding of the Q/K/V input.
    const TraceSpan span(p.tracer, "norm_qkv", l, n);
    const kernels::WeightMatrix* qkv[3] = {&A.wq, &A.wk, &A.wv};
    float* qkv_out[3] = {w.q.data(), w.k.data(), w.v.data()};
    if (A.norm.empty()) {  // a post-norm encoder: x is already normalised
      for (const kernels::WeightMatrix* m : qkv) observe(p, *m, w.x.data(), n);
      kernels::matmul_group(pool, qkv, 3, w.x.data(), n, qkv_out, w.act.data());
    } else {
      observe_normed(p, qkv, 3, w.x.data(), A.norm, eps, n);
      kernels::norm_matmul_group(pool, qkv, 3, w.x.data(), A.norm.data(), eps, n, qkv_out, w.act.data(),
                                 static_cast<int64_t>(w.act.size()));
    }
    for (int i = 0; i < 3; ++i) apply_adapters(p, *qkv[i], w.x.data(), A.norm.empty() ? nullptr : &A.norm, n, qkv_out[i]);
    if (!A.bq.empty()) kernels::add_bias(w.q.data(), A.bq.data(), n, q_dim);
    if (!A.bk.empty()) kernels::add_bias(w.k.data(), A.bk.data(), n, kv_dim);
    if (!A.bv.empty()) kernels::add_bias(w.v.data(), A.bv.data(), n, kv_dim);
  }
  kernels::RopeParams rope;
  rope.style = c.rope_style;
  rope.rope_dim = static_cast<int>(c.rope_dim);
  rope.freq_base = static_cast<float>(lc.rope_base);
  rope.linear_scale = static_cast<float>(lc.rope_scale);
  rope.freq_factors = p.rope_factors;
  rope.attn_factor = static_cast<float>(c.rope_attn_factor);
  rope.yarn_ext = static_cast<float>(c.yarn.ext_factor);
  rope.yarn_low = static_cast<float>(c.yarn.low);
  rope.yarn_high = static_cast<float>(c.yarn.high);
  {
    // Tokens are independent here (each writes its own cache row), so a
    // prompt's tokens are split over the threads.
    const TraceSpan span(p.tracer, "rope_kv_write", l, n);
    pool.parallel_for(n, 1, [&](int64_t t0, int64_t t1, int) {
      for (int64_t t = t0; t < t1; ++t) {
        float* q = w.q.data() + t * q_dim;
        float* k = w.k.data() + t * kv_dim;
        // Q/K norms per head, or over the whole row when the weight is that long (olmoe).
        if (!A.q_norm.empty()) {
          const int64_t span = static_cast<int64_t>(A.q_norm.size());
          for (int64_t h = 0; h < q_dim; h += span) kernels::rmsnorm(q + h, q + h, A.q_norm.data(), span, eps);
        }
        if (!A.k_norm.empty()) {
          const int64_t span = static_cast<int64_t>(A.k_norm.size());
          for (int64_t h = 0; h < kv_dim; h += span) kernels::rmsnorm(k + h, k + h, A.k_norm.data(), span, eps);
        }
        const int64_t pos = w.tok_pos[t];
        kernels::rope(q, static_cast<int>(c.n_head), static_cast<int>(hd), pos, rope);
        kernels::rope(k, static_cast<int>(c.n_head_kv), static_cast<int>(hd), pos, rope);
        const int64_t row = int64_t{tables[w.tok_seq[t]][pos / bs]} * bs + pos % bs;
        kernels::encode_kv_row(cache.k_type(), k, cache.k(slot, row), kv_dim);
        kernels::encode_kv_row(cache.v_type(), w.v.data() + t * kv_dim, cache.v(slot, row), kv_dim);
      }
    });
  }
  {
    // One task per (run of up to att_tokens rows of one sequence, KV heads):
    // the queries of a grouped-query group for those tokens share each K
    // and V row. A token sees its sequence's positions up to its own, or the
    // last `window` of them.
    const TraceSpan span(p.tracer, "attention", l, n);
    const int64_t group = c.n_head / c.n_head_kv;
    int64_t n_runs = 0, longest = 0;
    for (int64_t t = 0; t < n; ++t)
      if (t == 0 || w.tok_seq[t] != w.tok_seq[t - 1] || t - w.att_runs[n_runs - 1] == p.att_tokens) w.att_runs[n_runs++] = t;
    w.att_runs[n_runs] = n;
    for (int64_t r = 0; r < n_runs; ++r) longest = std::max(longest, w.att_runs[r + 1] - w.att_runs[r]);
    // Where the level packs several KV heads into one vector of queries
    // (decode: one token's group fills a fraction of it), a task takes as
    // many heads as fill it, while every thread still has a task.
    int64_t heads = 1;
    if (p.attend_heads.fn != nullptr)
      while (heads * 2 <= c.n_head_kv && heads * 2 * longest * group <= p.attend_heads.lanes &&
             n_runs * ((c.n_head_kv + heads * 2 - 1) / (heads * 2)) >= pool.size())
        heads *= 2;
    const int64_t n_chunks = (c.n_head_kv + heads - 1) / heads;
    kernels::AttendParams ap;
    ap.scale = static_cast<float>(c.attn_scale);
    ap.softcap = static_cast<float>(c.attn_softcap);
    pool.parallel_for(n_runs * n_chunks, 1, [&](int64_t i0, int64_t i1, int thread) {
      float* scores = w.scores.data() + thread * p.att_tokens * group * p.n_ctx;
      const float* q[kernels::kMaxGroupQueries];
      float* out[kernels::kMaxGroupQueries];
      kernels::KvSpan spans[kernels::kMaxGroupQueries];
      float sinks[kernels::kMaxGroupQueries];  // each query's head's sink, when the model has them
      kernels::AttendParams tp = ap;
      if (!A.sinks.empty()) tp.sinks = sinks;
      int nq = 0;
      // Query head h of token t, appended to the call's queries.
      auto add = [&](int64_t t, int64_t h) {
        // Causal: up to the token itself; an encoder: its whole input.
        const int64_t end = c.causal ? w.tok_pos[t] + 1 : w.tok_end[t];
        q[nq] = w.q.data() + t * q_dim + h * hd;
        out[nq] = w.att.data() + t * q_dim + h * hd;
        if (!A.sinks.empty()) sinks[nq] = A.sinks[h];
        spans[nq++] = {lc.window > 0 ? std::max<int64_t>(0, end - lc.window) : 0, end};
      };
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t run = i / n_chunks, kvh0 = i % n_chunks * heads, kvh1 = std::min(c.n_head_kv, kvh0 + heads);
        const int64_t t0 = w.att_runs[run], t1 = w.att_runs[run + 1];
        // Heads start on block boundaries: head kvh is the row's first kvh * hd values.
        const kernels::KvView kv{cache.k(slot, 0) + kernels::kv_row_bytes(cache.k_type(), kvh0 * hd),
                                 cache.v(slot, 0) + kernels::kv_row_bytes(cache.v_type(), kvh0 * hd),
                                 cache.k_row_bytes(), cache.v_row_bytes(), cache.k_type(), cache.v_type(),
                                 tables[w.tok_seq[t0]], bs};
        if (kvh1 - kvh0 > 1) {
          // Head-major: every query of head kvh0, then of the next.
          nq = 0;
          for (int64_t kvh = kvh0; kvh < kvh1; ++kvh)
            for (int64_t t = t0; t < t1; ++t)
              for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) add(t, h);
          p.attend_heads.fn(q, nq, static_cast<int>(kvh1 - kvh0), spans, kv, static_cast<int>(hd), tp, scores, out);
          continue;
        }
        // att_tokens x min(group, kMaxGroupQueries) queries fit one call.
        const int64_t h_end = (kvh0 + 1) * group, h_step = std::min<int64_t>(group, kernels::kMaxGroupQueries);
        for (int64_t h0 = kvh0 * group; h0 < h_end; h0 += h_step) {
          nq = 0;
          for (int64_t t = t0; t < t1; ++t)
            for (int64_t h = h0; h < std::min(h_end, h0 + h_step); ++h) add(t, h);
          p.attend_group(q, nq, spans, kv, static_cast<int>(hd), tp, scores, out);
        }
      }
    });
  }
  {
    const TraceSpan span(p.tracer, "attn_output", l, n);
    observe(p, A.wo, w.att.data(), n);
    kernels::matmul(pool, A.wo, w.att.data(), n, w.proj.data(), w.act.data());
    apply_adapters(p, A.wo, w.att.data(), nullptr, n, w.proj.data());
    if (!A.bo.empty()) kernels::add_bias(w.proj.data(), A.bo.data(), n, E);
    if (!A.post_norm.empty()) norm_rows(pool, w.proj.data(), A.post_norm, n, E, eps);
  }
}

void feed_forward(Pass& p, int64_t l) {
  const ModelConfig& c = p.c;
  const FfnWeights& F = p.w.layers[l].ffn;
  const int64_t n = p.n, E = c.n_embd, n_ff = F.gate.n_out;
  const float eps = static_cast<float>(c.norm_eps);
  Workspace& w = p.ws;
  ThreadPool& pool = p.pool;
  {
    // Likewise the FFN norm, into the gate/up input.
    const TraceSpan span(p.tracer, "norm_ffn_gate_up", l, n);
    const kernels::WeightMatrix* gate_up[2] = {&F.gate, &F.up};
    float* gate_up_out[2] = {w.gate.data(), w.up.data()};
    observe_normed(p, gate_up, 2, w.x.data(), F.norm, eps, n);
    kernels::norm_matmul_group(pool, gate_up, 2, w.x.data(), F.norm.data(), eps, n, gate_up_out, w.act.data(),
                               static_cast<int64_t>(w.act.size()));
    for (int i = 0; i < 2; ++i) apply_adapters(p, *gate_up[i], w.x.data(), &F.norm, n, gate_up_out[i]);
  }
  {
    const TraceSpan span(p.tracer, "gate_act", l, n);
    // Elementwise: ranges of 16 floats (one cache line) and up split over the threads.
    pool.parallel_for(n * n_ff, 16, [&](int64_t b, int64_t e, int) {
      p.gated(w.gate.data() + b, w.gate.data() + b, w.up.data() + b, e - b);
    });
  }
  {
    const TraceSpan span(p.tracer, "ffn_down", l, n);
    observe(p, F.down, w.gate.data(), n);
    kernels::matmul(pool, F.down, w.gate.data(), n, w.proj.data(), w.act.data());
    apply_adapters(p, F.down, w.gate.data(), nullptr, n, w.proj.data());
    if (!F.post_norm.empty()) norm_rows(pool, w.proj.data(), F.post_norm, n, E, eps);
    kernels::add(w.x.data(), w.proj.data(), n * E);
  }
}

void moe_feed_forward(Pass& p, int64_t l) {
  const ModelConfig& c = p.c;
  const FfnWeights& F = p.w.layers[l].ffn;
  const MoeWeights& M = p.w.layers[l].moe;
  const int64_t n = p.n, E = c.n_embd, n_exp = c.n_expert, k = c.n_expert_used, n_ff = c.n_ff_exp;
  const float eps = static_cast<float>(c.norm_eps);
  Workspace::Moe& m = p.ws.moe;
  ThreadPool& pool = p.pool;
  {
    const TraceSpan span(p.tracer, "moe_route", l, n);
    pool.parallel_for(n, 1, [&](int64_t t0, int64_t t1, int) {
      for (int64_t t = t0; t < t1; ++t) kernels::rmsnorm(&m.h[t * E], &p.ws.x[t * E], F.norm.data(), E, eps);
    });
    kernels::matmul(pool, M.router, m.h.data(), n, m.router.data(), p.ws.act.data());
    if (!M.router_bias.empty()) kernels::add_bias(m.router.data(), M.router_bias.data(), n, n_exp);
    // Each token's top k experts, best first (ties to the lower index), and their weights.
    for (int64_t t = 0; t < n; ++t) {
      float* r = &m.router[t * n_exp];
      if (c.gating == Gating::kSoftmax) kernels::softmax(r, n_exp);
      int32_t* chosen = &m.expert[t * k];
      for (int64_t j = 0; j < k; ++j) {
        int32_t best = -1;
        for (int32_t e = 0; e < n_exp; ++e) {
          bool taken = false;
          for (int64_t i = 0; i < j; ++i) taken = taken || chosen[i] == e;
          if (!taken && (best < 0 || r[e] > r[best])) best = e;
        }
        chosen[j] = best;
        m.weight[t * k + j] = r[best];
      }
      float* w = &m.weight[t * k];
      if (c.gating == Gating::kSoftmaxOfTopK) kernels::softmax(w, k);
      if (c.renormalize_experts) {
        float sum = 0;
        for (int64_t j = 0; j < k; ++j) sum += w[j];
        for (int64_t j = 0; j < k; ++j) w[j] /= sum;
      }
    }
    // Slots grouped by expert, tokens in order within each.
    std::fill(m.first_slot.begin(), m.first_slot.end(), 0);
    for (int64_t i = 0; i < n * k; ++i) ++m.first_slot[m.expert[i] + 1];
    for (int64_t e = 0; e < n_exp; ++e) m.first_slot[e + 1] += m.first_slot[e];
    std::vector<int64_t>& next = m.first_slot;  // advanced while filling, then restored below
    for (int64_t i = 0; i < n * k; ++i) {
      const int64_t s = next[m.expert[i]]++;
      m.slot[i] = static_cast<int32_t>(s);
      m.slot_token[s] = static_cast<int32_t>(i / k);
      m.slot_expert[s] = m.expert[i];
    }
    for (int64_t e = n_exp; e > 0; --e) next[e] = next[e - 1];
    next[0] = 0;
  }
  const kernels::WeightMatrix& g0 = M.gate[0];
  const kernels::WeightMatrix& u0 = M.up[0];
  const kernels::WeightMatrix& d0 = M.down[0];
  const bool shared_encoding = g0.kernel.encode == u0.kernel.encode && g0.kernel.act_bytes == u0.kernel.act_bytes &&
                               g0.kernel.act_ops == u0.kernel.act_ops;
  const int64_t s_gate = kernels::act_row_stride(g0), s_up = kernels::act_row_stride(u0);
  const int64_t s_down = kernels::act_row_stride(d0);
  const uint8_t* act_up = shared_encoding ? m.act_gate.data() : m.act_up.data();
  const int64_t stride_up = shared_encoding ? s_gate : s_up;
  {
    // Every selected expert's gate and up rows in one parallel region.
    const TraceSpan span(p.tracer, "moe_gate_up", l, n);
    pool.parallel_for(n * k, 1, [&](int64_t s0, int64_t s1, int) {
      for (int64_t s = s0; s < s1; ++s) {
        const float* row = &m.h[m.slot_token[s] * E];
        g0.kernel.encode_row(row, m.act_gate.data() + s * s_gate, E);
        if (!shared_encoding) u0.kernel.encode_row(row, m.act_up.data() + s * s_up, E);
      }
    });
    if (p.stats != nullptr)
      for (int64_t e = 0; e < n_exp; ++e)
        for (int64_t s = m.first_slot[e]; s < m.first_slot[e + 1]; ++s) {
          p.stats->add_row(M.gate[e].tensor, &m.h[m.slot_token[s] * E], E, e, n_exp);
          p.stats->add_row(M.up[e].tensor, &m.h[m.slot_token[s] * E], E, e, n_exp);
        }
    int64_t n_jobs = 0;
    for (int64_t e = 0; e < n_exp; ++e) {
      const int64_t first = m.first_slot[e], count = m.first_slot[e + 1] - first;
      if (count == 0) continue;
      m.jobs[n_jobs++] = {&M.gate[e], m.act_gate.data() + first * s_gate, s_gate, count, &m.gate[first * n_ff], n_ff};
      m.jobs[n_jobs++] = {&M.up[e], act_up + first * stride_up, stride_up, count, &m.up[first * n_ff], n_ff};
    }
    kernels::matmul_jobs(pool, m.jobs.data(), n_jobs);
  }
  {
    const TraceSpan span(p.tracer, "moe_down", l, n);
    pool.parallel_for(n * k, 1, [&](int64_t s0, int64_t s1, int) {
      for (int64_t s = s0; s < s1; ++s) {
        if (!M.gate_bias.empty()) {
          const int64_t e = m.slot_expert[s];
          kernels::add(&m.gate[s * n_ff], &M.gate_bias[e * n_ff], n_ff);
          kernels::add(&m.up[s * n_ff], &M.up_bias[e * n_ff], n_ff);
        }
        p.gated(&m.gate[s * n_ff], &m.gate[s * n_ff], &m.up[s * n_ff], n_ff);
        d0.kernel.encode_row(&m.gate[s * n_ff], m.act_down.data() + s * s_down, n_ff);
      }
    });
    if (p.stats != nullptr)
      for (int64_t e = 0; e < n_exp; ++e)
        for (int64_t s = m.first_slot[e]; s < m.first_slot[e + 1]; ++s)
          p.stats->add_row(M.down[e].tensor, &m.gate[s * n_ff], n_ff, e, n_exp);
    int64_t n_jobs = 0;
    for (int64_t e = 0; e < n_exp; ++e) {
      const int64_t first = m.first_slot[e], count = m.first_slot[e + 1] - first;
      if (count > 0) m.jobs[n_jobs++] = {&M.down[e], m.act_down.data() + first * s_down, s_down, count, &m.out[first * E], E};
    }
    kernels::matmul_jobs(pool, m.jobs.data(), n_jobs);
  }
  {
    // Each token's experts weighed and summed in its own order (best
    // first), whatever else the batch routed where: the same bits alone or
    // in any batch.
    const TraceSpan span(p.tracer, "moe_combine", l, n);
    pool.parallel_for(n, 1, [&](int64_t t0, int64_t t1, int) {
      for (int64_t t = t0; t < t1; ++t) {
        float* proj = &p.ws.proj[t * E];
        std::fill(proj, proj + E, 0.0f);
        for (int64_t j = 0; j < k; ++j) {
          const float w = m.weight[t * k + j];
          const float* o = &m.out[int64_t{m.slot[t * k + j]} * E];
          if (M.down_bias.empty()) {
            for (int64_t i = 0; i < E; ++i) proj[i] += w * o[i];
          } else {
            const float* b = &M.down_bias[int64_t{m.expert[t * k + j]} * E];
            for (int64_t i = 0; i < E; ++i) proj[i] += w * (o[i] + b[i]);
          }
        }
        kernels::add(&p.ws.x[t * E], proj, E);
      }
    });
  }
}

void pool_embeddings(Pass& p, const std::vector<float>* rms_norm) {
  const int64_t E = p.c.n_embd;
  Workspace& w = p.ws;
  if (w.pool_rows.empty()) return;
  const TraceSpan span(p.tracer, "pool", -1, static_cast<int64_t>(w.pool_rows.size()));
  // Few rows, in order: each adds into its input's row, so the sums do not
  // depend on how the threads would have split them.
  std::vector<float>& h = w.proj;  // free here: holds one normalised row at a time
  for (const Workspace::PoolRow& r : w.pool_rows) {
    const float* x = w.x.data() + r.row * E;
    if (rms_norm != nullptr) {
      kernels::rmsnorm(h.data(), x, rms_norm->data(), E, static_cast<float>(p.c.norm_eps));
      x = h.data();
    }
    float* dst = w.embd.data() + r.dest * E;
    for (int64_t i = 0; i < E; ++i) dst[i] += r.weight * x[i];
  }
}

void layer_norm_rows(Pass& p, const LayerNormWeights& norm) {
  const int64_t E = p.c.n_embd;
  const float eps = static_cast<float>(p.c.ln_eps);
  float* x = p.ws.x.data();
  p.pool.parallel_for(p.n, 1, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t)
      kernels::layernorm(x + t * E, x + t * E, norm.weight.data(), norm.bias.data(), E, eps);
  });
}

void output_head(Pass& p) {
  const int64_t E = p.c.n_embd, V = p.c.n_vocab;
  Workspace& w = p.ws;
  pool_embeddings(p, &p.w.output_norm);
  // Only the wanted rows need logits; pack them at the front of x.
  for (int64_t r = 0; r < p.n_out; ++r)
    if (w.out_rows[r] != r) std::copy_n(w.x.begin() + w.out_rows[r] * E, E, w.x.begin() + r * E);
  if (p.n_out == 0) return;
  const TraceSpan span(p.tracer, "output", -1, p.n_out);
  const kernels::WeightMatrix* out[1] = {&p.w.output};
  float* ys[1] = {p.logits};
  kernels::norm_matmul_group(p.pool, out, 1, w.x.data(), p.w.output_norm.data(), static_cast<float>(p.c.norm_eps),
                             p.n_out, ys, w.act.data(), static_cast<int64_t>(w.act.size()));
  apply_adapters(p, p.w.output, w.x.data(), &p.w.output_norm, p.n_out, p.logits, w.out_rows.data());
  if (p.c.final_softcap > 0) {
    const float cap = static_cast<float>(p.c.final_softcap);
    p.pool.parallel_for(p.n_out * V, 256, [&](int64_t b, int64_t e, int) {
      for (int64_t i = b; i < e; ++i) p.logits[i] = cap * std::tanh(p.logits[i] / cap);
    });
  }
}

void apply_adapters(Pass& p, const kernels::WeightMatrix& m, const float* x, const std::vector<float>* norm,
                    int64_t n, float* y, const int64_t* row_of) {
  if (p.adapters == nullptr || p.adapters->empty() || n == 0) return;
  const int64_t n_adapters = static_cast<int64_t>(p.adapters->size()), n_in = m.n_in, n_out = m.n_out;
  Workspace::Lora& L = p.ws.lora;
  for (int64_t a = 0; a < n_adapters; ++a) {
    const LoraDelta* d = (*p.adapters)[a].find(&m);
    if (d == nullptr) continue;
    int64_t k = 0;
    for (int64_t t = 0; t < n; ++t) {
      const float s = p.lora_scales[p.ws.tok_seq[row_of != nullptr ? row_of[t] : t] * n_adapters + a];
      if (s == 0.0f) continue;
      L.rows[k] = t;
      L.scale[k++] = s * d->alpha_scale;
    }
    if (k == 0) continue;
    const TraceSpan span(p.tracer, "lora", -1, k);
    // Rows are independent: each is computed whole by one thread, the same
    // way whatever else is in the pass.
    p.pool.parallel_for(k, 1, [&](int64_t i0, int64_t i1, int) {
      for (int64_t i = i0; i < i1; ++i) {
        const float* in = x + L.rows[i] * n_in;
        if (norm != nullptr) {
          kernels::rmsnorm(&L.in[i * n_in], in, norm->data(), n_in, static_cast<float>(p.c.norm_eps));
          in = &L.in[i * n_in];
        }
        p.low_rank(y + L.rows[i] * n_out, in, d->a.data(), d->bt.data(), d->r, n_in, n_out, L.scale[i],
                                 &L.mid[i * d->r]);
      }
    });
  }
}

void size_lora_workspace(Workspace& ws, const std::vector<LoraAdapter>& adapters, int64_t nb) {
  int64_t in = 0, mid = 0;
  for (const LoraAdapter& ad : adapters)
    for (const auto& [m, d] : ad.deltas) {
      in = std::max(in, d.n_in);
      mid = std::max(mid, d.r);
    }
  Workspace::Lora& L = ws.lora;
  L.rows.resize(nb);
  L.scale.resize(nb);
  L.in.resize(nb * in);
  L.mid.resize(nb * mid);
}

int64_t blocks_scratch_bytes(const ModelWeights& w, int64_t nb, int n_seq_max, int threads) {
  const kernels::WeightMatrix* output[1] = {&w.output};
  // An encoder has no output matrix.
  int64_t act = w.output.data != nullptr ? kernels::norm_matmul_group_scratch_bytes(output, 1, n_seq_max, threads) : 0;
  for (const LayerWeights& L : w.layers) {
    const kernels::WeightMatrix* qkv[3] = {&L.attn.wq, &L.attn.wk, &L.attn.wv};
    const kernels::WeightMatrix* gate_up[2] = {&L.ffn.gate, &L.ffn.up};
    act = std::max({act, kernels::norm_matmul_group_scratch_bytes(qkv, 3, nb, threads),
                    kernels::matmul_group_scratch_bytes(qkv, 3, nb), kernels::matmul_scratch_bytes(L.attn.wo, nb)});
    if (w.cls.data != nullptr) act = std::max(act, kernels::matmul_scratch_bytes(w.cls, nb));
    if (w.cls_out.data != nullptr) act = std::max(act, kernels::matmul_scratch_bytes(w.cls_out, nb));
    if (L.ffn.gate.data == nullptr && L.ffn.up.data != nullptr)  // an encoder's ungated FFN
      act = std::max({act, kernels::matmul_scratch_bytes(L.ffn.up, nb), kernels::matmul_scratch_bytes(L.ffn.down, nb)});
    if (L.ffn.gate.data != nullptr)
      act = std::max({act, kernels::norm_matmul_group_scratch_bytes(gate_up, 2, nb, threads),
                      kernels::matmul_scratch_bytes(L.ffn.down, nb)});
    if (L.moe.router.data != nullptr) act = std::max(act, kernels::matmul_scratch_bytes(L.moe.router, nb));
  }
  return act;
}

void size_moe_workspace(Workspace& ws, const ModelConfig& c, const ModelWeights& w, int64_t nb) {
  if (c.n_expert == 0) return;
  const int64_t k = c.n_expert_used, slots = nb * k, E = c.n_embd;
  Workspace::Moe& m = ws.moe;
  m.h.resize(nb * E);
  m.router.resize(nb * c.n_expert);
  m.expert.resize(slots);
  m.weight.resize(slots);
  m.slot.resize(slots);
  m.slot_token.resize(slots);
  m.slot_expert.resize(slots);
  m.first_slot.resize(c.n_expert + 1);
  int64_t s_gate = 0, s_up = 0, s_down = 0;
  for (const LayerWeights& L : w.layers) {
    if (L.moe.gate.empty()) continue;
    s_gate = std::max(s_gate, kernels::act_row_stride(L.moe.gate[0]));
    s_up = std::max(s_up, kernels::act_row_stride(L.moe.up[0]));
    s_down = std::max(s_down, kernels::act_row_stride(L.moe.down[0]));
  }
  m.act_gate.resize(slots * s_gate);
  m.act_up.resize(slots * s_up);
  m.act_down.resize(slots * s_down);
  m.gate.resize(slots * c.n_ff_exp);
  m.up.resize(slots * c.n_ff_exp);
  m.out.resize(slots * E);
  m.jobs.resize(2 * c.n_expert);
}

}  // namespace osprey
