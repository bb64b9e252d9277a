#include "models/model.h"

#include "core/log.h"
#include "kernels/kv_row.h"
#include "models/family.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace osprey {

Expected<std::unique_ptr<Model>> Model::load(const std::string& path, const ModelOptions& options) {
  OSPREY_ASSIGN_OR_RETURN(GgufFile file, GgufFile::open(path));
  return from_file(std::move(file), options);
}

Expected<std::unique_ptr<Model>> Model::from_file(GgufFile file, const ModelOptions& options) {
  std::unique_ptr<Model> m(new Model());
  m->file_ = std::move(file);
  OSPREY_ASSIGN_OR_RETURN(m->config_, ModelConfig::from_gguf(m->file_));
  const kernels::Isa isa = options.isa.value_or(kernels::active_isa());

  if (options.n_ctx < 0 || options.n_ctx > (1 << 20))
    return InvalidArgument("context size " + std::to_string(options.n_ctx) + " is out of range (1..1048576)");
  if (options.n_batch < 1 || options.n_batch > 4096)
    return InvalidArgument("batch size " + std::to_string(options.n_batch) + " is out of range (1..4096)");
  if (options.n_threads < 0 || options.n_threads > 1024)
    return InvalidArgument("thread count " + std::to_string(options.n_threads) + " is out of range");
  if (options.n_seq_max < 1 || options.n_seq_max > 256)
    return InvalidArgument("parallel sequence count " + std::to_string(options.n_seq_max) + " is out of range (1..256)");
  if (options.kv_blocks < 0 || options.kv_blocks > (int64_t{1} << 24))
    return InvalidArgument("KV block count " + std::to_string(options.kv_blocks) + " is out of range");
  m->n_ctx_ = options.n_ctx > 0 ? options.n_ctx : std::min<int64_t>(m->config_.n_ctx_train, 4096);
  m->n_batch_ = options.n_batch;
  // An encoder reads each input whole in one pass.
  if (!m->config_.causal) m->n_batch_ = std::max(m->n_batch_, m->n_ctx_);
  if (m->config_.post_layer_norm && m->n_ctx_ > m->config_.n_ctx_train)
    return InvalidArgument("this model has learned positions for " + std::to_string(m->config_.n_ctx_train) +
                           " tokens; a context of " + std::to_string(m->n_ctx_) + " is beyond them");
  const int threads = options.n_threads > 0 ? options.n_threads : default_thread_count();
  m->pool_ = std::make_unique<ThreadPool>(threads);
  // On a GPU device the host keeps the mapped file only: no repacked copy.
  OSPREY_ASSIGN_OR_RETURN(m->weights_,
                          ModelWeights::bind(m->file_, m->config_, isa, *m->pool_, /*repack_matrices=*/options.device == "cpu",
                                                             options.f16_as_bf16));
  if (options.f16_as_bf16)
    log::info("--f16-as-bf16: " + std::to_string(m->weights_.n_f16_as_bf16) +
              " F16 matrices rounded to BF16 at load" +
              (options.device != "cpu" ? std::string(" (none: it applies to the CPU kernels only)") : std::string()));
  m->attend_group_ = kernels::attend_group_kernel(isa);
  m->attend_heads_ = kernels::attend_heads_kernel(isa);
  m->gated_ = kernels::gated_kernel(m->config_.activation, isa);
  m->gelu_erf_ = kernels::gelu_erf_kernel(isa);
  m->low_rank_ = kernels::low_rank_kernel(isa);
  const ModelWeights& mw = m->weights_;
  // LongRoPE: the long factors once the context passes the original one.
  if (!mw.rope_freq_factors.empty()) m->rope_factors_ = mw.rope_freq_factors.data();
  else if (!mw.rope_factors_long.empty() && m->config_.n_ctx_orig > 0 && m->n_ctx_ > m->config_.n_ctx_orig)
    m->rope_factors_ = mw.rope_factors_long.data();
  else if (!mw.rope_factors_short.empty()) m->rope_factors_ = mw.rope_factors_short.data();

  const ModelConfig& c = m->config_;
  const int64_t q_dim = c.n_head * c.head_dim, kv_dim = c.n_head_kv * c.head_dim, nb = m->n_batch_;
  const int64_t blocks_per_seq = (m->n_ctx_ + KvCache::kBlockSize - 1) / KvCache::kBlockSize;
  for (const auto& [type, option] : {std::pair{options.cache_type_k, "--cache-type-k"}, {options.cache_type_v, "--cache-type-v"}})
    if (!kernels::kv_type_fits(type, c.head_dim))
      return InvalidArgument(std::string(option) + " " + dtype_name(type) + " cannot store this model's heads of " +
                             std::to_string(c.head_dim) + " values" +
                             (kernels::is_kv_type(type) ? " (its blocks are 32 values)" : " (not a KV cache type)"));
  // Window layers get a pool of their own that holds, per sequence, their
  // window plus one pass of new positions, unless the caller wants every
  // position kept (a window as wide as the context keeps everything anyway).
  // A GPU back end attends through the window over the one pool, so there
  // they keep every position.
  int64_t n_global = 0, n_windowed = 0;
  m->layer_slot_.resize(c.n_layer);
  const bool keep_every_position = options.full_window_cache || options.device != "cpu";
  for (const LayerConfig& l : c.layers)
    if (l.window > 0 && l.window < m->n_ctx_ && !keep_every_position) m->max_window_ = std::max(m->max_window_, l.window);
  for (int64_t l = 0; l < c.n_layer; ++l)
    m->layer_slot_[l] = static_cast<int32_t>(m->max_window_ > 0 && c.layers[l].window > 0 ? n_windowed++ : n_global++);
  if (m->max_window_ == 0) n_global = c.n_layer;
  const DType kt = options.cache_type_k, vt = options.cache_type_v;
  const int64_t window_blocks_per_seq = (m->max_window_ + m->n_batch_ + KvCache::kBlockSize - 1) / KvCache::kBlockSize + 1;
  const int64_t window_blocks = m->max_window_ > 0 ? window_blocks_per_seq * options.n_seq_max : 0;
  int64_t kv_blocks = options.kv_blocks > 0 ? options.kv_blocks : blocks_per_seq * options.n_seq_max;
  if (options.kv_blocks == 0 && options.kv_bytes_budget > 0) {
    // The window layers' fixed pool comes out of the budget first.
    const int64_t left = options.kv_bytes_budget - window_blocks * KvCache::block_bytes(n_windowed, kv_dim, kt, vt);
    kv_blocks = left / std::max<int64_t>(1, KvCache::block_bytes(n_global, kv_dim, kt, vt));
    if (kv_blocks < 1)
      return InvalidArgument("a KV cache of " + std::to_string(options.kv_bytes_budget) +
                             " bytes holds no block of " + std::to_string(KvCache::kBlockSize) +
                             " positions of this model (" +
                             std::to_string(KvCache::block_bytes(n_global, kv_dim, kt, vt)) + " bytes each)");
  }
  if (options.device != "cpu") {
    // A GPU back end keeps keys and values itself; the host pool only hands
    // out block numbers (n_layer 0: no storage).
    if (!options.lora.empty()) return Unsupported("--lora runs on --device cpu only");
    if (kt != DType::kF16 || vt != DType::kF16)
      return Unsupported("--device " + options.device + " stores keys and values as f16 only");
    OSPREY_ASSIGN_OR_RETURN(auto device, backends::open_device(options.device));
    if (const std::string missing = DevicePass::check(m->file_, m->config_, m->weights_); !missing.empty())
      return Unsupported(std::string(device->kind()) + " cannot run this model; it lacks: " + missing +
                         " (--device cpu runs it)");
    DevicePassSize size{m->n_batch_, options.n_seq_max, kv_blocks, blocks_per_seq};
    OSPREY_ASSIGN_OR_RETURN(m->device_, DevicePass::create(std::move(device), m->file_, m->config_, m->weights_,
                                                           m->rope_factors_, size));
    n_global = 0;
  }
  m->cache_ = KvCache(n_global, kv_blocks, kv_dim, kt, vt);
  if (m->max_window_ > 0) m->window_cache_ = KvCache(n_windowed, window_blocks, kv_dim, kt, vt);
  // Blocks of global layers alone cannot be reused when window layers have
  // dropped theirs: the prefix cache needs full_window_cache for such models.
  m->prefix_cache_ = options.prefix_cache && m->max_window_ == 0;
  m->seqs_.resize(options.n_seq_max);
  m->block_tables_.resize(options.n_seq_max);
  m->window_tables_.resize(options.n_seq_max);
  for (Sequence& s : m->seqs_) {
    // Reserved up front so that decoding never allocates.
    s.blocks.reserve(blocks_per_seq);
    if (m->max_window_ > 0) s.window_blocks.reserve(blocks_per_seq);
    if (m->prefix_cache_) s.tokens.reserve(m->n_ctx_);
  }
  Workspace& w = m->ws_;
  w.x.resize(nb * c.n_embd);
  w.q.resize(nb * q_dim);
  w.k.resize(nb * kv_dim);
  w.v.resize(nb * kv_dim);
  w.att.resize(nb * q_dim);
  int64_t n_ff = 0;
  for (const LayerWeights& L : m->weights_.layers) n_ff = std::max({n_ff, L.ffn.gate.n_out, L.ffn.up.n_out});
  w.gate.resize(nb * n_ff);
  w.up.resize(nb * n_ff);
  w.proj.resize(nb * c.n_embd);
  w.logits.resize(options.n_seq_max * c.n_vocab);
  w.tokens.resize(nb);
  w.tok_seq.resize(nb);
  w.tok_pos.resize(nb);
  w.tok_end.resize(nb);
  w.out_rows.reserve(nb);
  w.pool_rows.reserve(nb);
  w.embd.resize(options.n_seq_max * c.n_embd);
  // Up to 4 tokens per attention task, as long as their queries fit one call.
  const int64_t group = c.n_head / c.n_head_kv;
  m->att_tokens_ = std::clamp<int64_t>(kernels::kMaxGroupQueries / group, 1, 4);
  w.scores.resize(threads * m->att_tokens_ * std::min<int64_t>(group, kernels::kMaxGroupQueries) * m->n_ctx_);
  w.att_runs.resize(nb + 1);
  w.embd_row.resize(m->weights_.tok_embd.row_bytes);
  const int64_t act = blocks_scratch_bytes(m->weights_, nb, options.n_seq_max, threads);
  size_moe_workspace(w, c, m->weights_, nb);
  w.act.resize(act);
  for (const LoraSpec& spec : options.lora) {
    OSPREY_ASSIGN_OR_RETURN(LoraAdapter ad, LoraAdapter::load(spec.path, spec.scale, c, m->weights_));
    m->adapters_.push_back(std::move(ad));
  }
  if (!m->adapters_.empty()) {
    size_lora_workspace(w, m->adapters_, nb);
    std::vector<float> defaults;
    for (const LoraAdapter& ad : m->adapters_) defaults.push_back(ad.scale);
    m->lora_scales_.resize(m->adapters_.size() * options.n_seq_max);
    for (int s = 0; s < options.n_seq_max; ++s) OSPREY_TRY(m->seq_set_lora(s, defaults.data()));
  }
  return m;
}

Expected<const float*> Model::eval(const int32_t* tokens, int64_t n) {
  BatchItem item{0, tokens, n, true};
  return eval_batch(&item, 1);
}

Expected<const float*> Model::eval_batch(const BatchItem* items, size_t count) {
  if (count == 0) return InvalidArgument("empty batch");
  int64_t blocks = 0, n_out = 0, n_embed = 0;
  for (size_t i = 0; i < count; ++i) {
    const BatchItem& it = items[i];
    if (it.seq < 0 || it.seq >= n_seq_max())
      return InvalidArgument("sequence " + std::to_string(it.seq) + " is out of range (0.." +
                             std::to_string(n_seq_max() - 1) + ")");
    for (size_t j = 0; j < i; ++j)
      if (items[j].seq == it.seq) return InvalidArgument("sequence " + std::to_string(it.seq) + " appears twice in a batch");
    if (it.n <= 0) return InvalidArgument("no tokens to evaluate");
    const int64_t past = seqs_[it.seq].n_past;
    if (past + it.n > n_ctx_)
      return OutOfRange("context is full: " + std::to_string(past) + " tokens held + " + std::to_string(it.n) +
                        " new exceed the context size of " + std::to_string(n_ctx_));
    for (int64_t k = 0; k < it.n; ++k)
      if (it.tokens[k] < 0 || it.tokens[k] >= config_.n_vocab)
        return InvalidArgument("token id " + std::to_string(it.tokens[k]) + " is outside the vocabulary (0.." +
                               std::to_string(config_.n_vocab - 1) + ")");
    if ((it.logits || it.all_logits) && !it.embed && !can_generate())
      return InvalidArgument("this " + config_.arch + " model is an encoder: it gives embeddings (osprey embed, or POST /v1/embeddings on osprey serve), not next-token logits");
    if (it.embed) {
      if (++n_embed > n_seq_max()) return InvalidArgument("more inputs to embed than sequences");
      if (past != 0 && config_.pooling != Pooling::kLast && config_.pooling != Pooling::kNone)
        return InvalidArgument("mean and first-token pooling need the whole input in one item");
    }
    if (!config_.causal && (past != 0 || it.n > n_batch_))
      return InvalidArgument("an encoder reads each input whole in one pass: " + std::to_string(past + it.n) +
                             " tokens do not fit its batch of " + std::to_string(n_batch_) +
                             (past != 0 ? " (or the sequence was not empty)" : ""));
    blocks += blocks_needed(it.seq, it.n);
    n_out += it.embed ? 0 : it.all_logits ? it.n : it.logits;
  }
  // Room for every row asked for (perplexity asks for a whole pass's worth).
  if (static_cast<size_t>(n_out * config_.n_vocab) > ws_.logits.size())
    ws_.logits.resize(static_cast<size_t>(n_out * config_.n_vocab));
  if (blocks > cache_.available_blocks())
    return OutOfRange("the KV cache is full: " + std::to_string(blocks) + " more blocks needed, " +
                      std::to_string(cache_.available_blocks()) + " available");
  // The window pool is sized for every sequence's window plus one pass, and
  // blocks that fall out of the window are dropped pass by pass.
  for (size_t i = 0; i < count; ++i) {
    Sequence& s = seqs_[items[i].seq];
    OSPREY_TRY(grow_blocks(s, s.n_past + items[i].n));
  }

  // Rows are packed item after item into passes of at most n_batch tokens.
  Workspace& w = ws_;
  float* logits = w.logits.data();
  std::fill_n(w.embd.begin(), n_embed * config_.n_embd, 0.0f);
  size_t item = 0;
  int64_t offset = 0;     // tokens of items[item] already placed
  int64_t embed_row = 0;  // the embedding row of the next item that wants one
  while (item < count) {
    int64_t rows = 0, outs = 0;
    // Tokens of one pass must be contiguous in memory for the embedding
    // lookup; gather them into the workspace's token buffer.
    while (item < count && rows < n_batch_) {
      const BatchItem& it = items[item];
      // An encoder's input is never split between passes.
      if (!config_.causal && offset == 0 && rows + it.n > n_batch_) break;
      const int64_t take = std::min(n_batch_ - rows, it.n - offset);
      Sequence& s = seqs_[it.seq];
      for (int64_t k = 0; k < take; ++k) {
        w.tok_seq[rows + k] = it.seq;
        w.tok_pos[rows + k] = s.n_past + offset + k;
        w.tok_end[rows + k] = s.n_past + it.n;
        w.tokens[rows + k] = it.tokens[offset + k];
        if (it.all_logits && !it.embed) w.out_rows.push_back(rows + k), ++outs;
      }
      if (it.embed) {
        // Mean: every token weighs 1/n; first-token pooling: the item's first row; else its last.
        const Pooling pooling = config_.pooling;
        if (pooling == Pooling::kMean) {
          for (int64_t k = 0; k < take; ++k)
            w.pool_rows.push_back({rows + k, embed_row, 1.0f / static_cast<float>(it.n)});
        } else if (pooling == Pooling::kCls || pooling == Pooling::kRank) {
          if (offset == 0) w.pool_rows.push_back({rows, embed_row, 1.0f});
        } else if (offset + take == it.n) {
          w.pool_rows.push_back({rows + take - 1, embed_row, 1.0f});
        }
      }
      rows += take;
      offset += take;
      if (offset == it.n) {
        if (it.logits && !it.all_logits && !it.embed) w.out_rows.push_back(rows - 1), ++outs;
        if (it.embed) ++embed_row;
        ++item;
        offset = 0;
      }
    }
    if (max_window_ > 0) {
      // The window pool's blocks for this pass's rows (freed ones are reused).
      for (int64_t r = 0; r < rows; ++r) {
        int32_t& b = seqs_[w.tok_seq[r]].window_blocks[w.tok_pos[r] / KvCache::kBlockSize];
        if (b < 0) b = window_cache_.allocate();
        OSPREY_CHECK(b >= 0);  // the pool holds every sequence's window plus one pass
      }
    }
    OSPREY_TRY(forward_batch(rows, outs, logits));
    logits += outs * config_.n_vocab;
    w.out_rows.clear();
    w.pool_rows.clear();
    if (max_window_ > 0) {
      // The next pass starts each sequence just past its last row here.
      for (int64_t r = 0; r < rows; ++r)
        if (r + 1 == rows || w.tok_seq[r + 1] != w.tok_seq[r]) drop_out_of_window(seqs_[w.tok_seq[r]], w.tok_pos[r] + 1);
    }
  }
  for (size_t i = 0; i < count; ++i) {
    Sequence& s = seqs_[items[i].seq];
    if (prefix_cache_) s.tokens.insert(s.tokens.end(), items[i].tokens, items[i].tokens + items[i].n);
    s.n_past += items[i].n;
    if (prefix_cache_) publish_full_blocks(s);
  }
  return static_cast<const float*>(w.logits.data());
}

Status Model::forward_batch(int64_t n, int64_t n_out, float* logits) {
  for (size_t s = 0; s < seqs_.size(); ++s) {
    block_tables_[s] = seqs_[s].blocks.data();
    window_tables_[s] = seqs_[s].window_blocks.data();
  }
  Pass pass{config_,     weights_,      ws_,    *pool_,        cache_,      block_tables_, window_cache_,
            window_tables_, layer_slot_, attend_group_, attend_heads_, gated_, gelu_erf_, low_rank_, rope_factors_, att_tokens_, n_ctx_,
            tracer_,     stats_,        &adapters_, lora_scales_.data(), n, n_out, logits};
  const TraceSpan span(tracer_, "forward", -1, n);
  if (device_) return device_->forward(pass);
  config_.family->forward(pass);
  return Status::Ok();
}

int64_t Model::kv_bytes() const {
  return cache_.bytes() + window_cache_.bytes() + (device_ ? device_->kv_bytes() : 0);
}

int64_t Model::blocks_needed(int seq, int64_t n) const {
  const Sequence& s = seqs_[seq];
  const int64_t have = static_cast<int64_t>(s.blocks.size());
  const int64_t need = (s.n_past + n + KvCache::kBlockSize - 1) / KvCache::kBlockSize;
  return std::max<int64_t>(0, need - have);
}

Status Model::grow_blocks(Sequence& s, int64_t n_positions) {
  while (static_cast<int64_t>(s.blocks.size()) * KvCache::kBlockSize < n_positions) {
    const int32_t b = cache_.allocate();
    if (b < 0) return OutOfRange("the KV cache is full");
    s.blocks.push_back(b);
  }
  // Window-layer blocks are only reserved here (-1): eval_batch allocates
  // each just before the pass that first writes it, after the previous pass
  // dropped what fell out of the window, so a long prompt never holds more
  // than its window plus one pass.
  while (max_window_ > 0 && static_cast<int64_t>(s.window_blocks.size()) * KvCache::kBlockSize < n_positions)
    s.window_blocks.push_back(-1);
  return Status::Ok();
}

void Model::drop_out_of_window(Sequence& s, int64_t next) {
  // A query at `next` or later sees positions from next - window + 1 on.
  const int64_t keep = std::max<int64_t>(0, next - max_window_ + 1);
  for (int64_t b = s.window_kept / KvCache::kBlockSize; (b + 1) * KvCache::kBlockSize <= keep; ++b) {
    if (s.window_blocks[b] >= 0) window_cache_.release(s.window_blocks[b]);
    s.window_blocks[b] = -1;
  }
  s.window_kept = std::max(s.window_kept, keep / KvCache::kBlockSize * KvCache::kBlockSize);
}

void Model::publish_full_blocks(Sequence& s) {
  while (s.n_hashed + KvCache::kBlockSize <= s.n_past) {
    s.prefix_hash = KvCache::chain_hash(s.prefix_hash, s.tokens.data() + s.n_hashed, KvCache::kBlockSize);
    cache_.publish(s.blocks[s.n_hashed / KvCache::kBlockSize], s.prefix_hash);
    s.n_hashed += KvCache::kBlockSize;
  }
}

void Model::seq_clear(int seq) {
  Sequence& s = seqs_[seq];
  for (int32_t b : s.blocks) cache_.release(b);
  s.blocks.clear();
  for (int32_t b : s.window_blocks)
    if (b >= 0) window_cache_.release(b);
  s.window_blocks.clear();
  s.window_kept = 0;
  s.tokens.clear();
  s.n_past = 0;
  s.prefix_hash = s.hash_seed;
  s.n_hashed = 0;
}

void Model::seq_truncate(int seq, int64_t n) {
  Sequence& s = seqs_[seq];
  n = std::clamp<int64_t>(n, 0, s.n_past);
  // Window layers must still hold what a query at position n sees.
  if (n == 0 || (max_window_ > 0 && n < s.n_past && n - max_window_ + 1 < s.window_kept)) {
    seq_clear(seq);
    return;
  }
  const int64_t keep = (n + KvCache::kBlockSize - 1) / KvCache::kBlockSize;
  while (static_cast<int64_t>(s.blocks.size()) > keep) {
    cache_.release(s.blocks.back());
    s.blocks.pop_back();
  }
  while (static_cast<int64_t>(s.window_blocks.size()) > keep) {
    if (s.window_blocks.back() >= 0) window_cache_.release(s.window_blocks.back());
    s.window_blocks.pop_back();
  }
  s.n_past = n;
  if (prefix_cache_) s.tokens.resize(n);
  if (s.n_hashed > n) {
    // The hash chain must be rebuilt from the start for what remains.
    s.prefix_hash = s.hash_seed;
    s.n_hashed = 0;
    for (int64_t p = 0; p + KvCache::kBlockSize <= n && prefix_cache_; p += KvCache::kBlockSize) {
      s.prefix_hash = KvCache::chain_hash(s.prefix_hash, s.tokens.data() + p, KvCache::kBlockSize);
      s.n_hashed = p + KvCache::kBlockSize;
    }
  }
  // The last block will be written again; if another sequence or the prefix
  // cache may read it, write into a private copy instead.
  if (n % KvCache::kBlockSize != 0 && !cache_.is_private(s.blocks.back())) {
    const int32_t shared = s.blocks.back();
    const int32_t copy = cache_.allocate();
    if (copy >= 0) {
      const int64_t k_bytes = KvCache::kBlockSize * cache_.k_row_bytes(), v_bytes = KvCache::kBlockSize * cache_.v_row_bytes();
      for (int64_t l = 0; l < cache_.n_layer(); ++l) {
        std::copy_n(cache_.k(l, int64_t{shared} * KvCache::kBlockSize), k_bytes, cache_.k(l, int64_t{copy} * KvCache::kBlockSize));
        std::copy_n(cache_.v(l, int64_t{shared} * KvCache::kBlockSize), v_bytes, cache_.v(l, int64_t{copy} * KvCache::kBlockSize));
      }
      cache_.release(shared);
      s.blocks.back() = copy;
    } else {
      // No room for a copy: drop the partial block rather than corrupt a shared one.
      cache_.release(shared);
      s.blocks.pop_back();
      s.n_past = (n / KvCache::kBlockSize) * KvCache::kBlockSize;
      s.tokens.resize(s.n_past);
    }
  }
}

Status Model::seq_set_lora(int seq, const float* scales) {
  if (seq < 0 || seq >= n_seq_max()) return InvalidArgument("sequence " + std::to_string(seq) + " is out of range");
  Sequence& s = seqs_[seq];
  if (s.n_past != 0) return InvalidArgument("adapters can change only on an empty sequence");
  const size_t n = adapters_.size();
  uint64_t seed = 0;
  for (size_t a = 0; a < n; ++a) {
    if (!std::isfinite(scales[a])) return InvalidArgument("adapter " + std::to_string(a) + "'s scale is not finite");
    lora_scales_[seq * n + a] = scales[a];
    // Only adapters in use change the model: all-zero scales share the base model's blocks.
    if (scales[a] != 0.0f) {
      uint32_t bits;
      std::memcpy(&bits, &scales[a], sizeof bits);
      seed = KvCache::chain_hash(seed ^ (0x9e3779b97f4a7c15ull * (a + 1)), reinterpret_cast<const int32_t*>(&bits), 1);
    }
  }
  s.hash_seed = seed;
  s.prefix_hash = seed;
  return Status::Ok();
}

int64_t Model::seq_attach_prefix(int seq, const int32_t* tokens, int64_t n) {
  Sequence& s = seqs_[seq];
  if (!prefix_cache_ || s.n_past != 0) return s.n_past;
  while ((s.n_past + KvCache::kBlockSize) < n) {  // strictly less: the last token is always evaluated
    const uint64_t h = KvCache::chain_hash(s.prefix_hash, tokens + s.n_past, KvCache::kBlockSize);
    const int32_t b = cache_.find_published(h);
    if (b < 0) break;
    s.blocks.push_back(b);
    s.tokens.insert(s.tokens.end(), tokens + s.n_past, tokens + s.n_past + KvCache::kBlockSize);
    s.prefix_hash = h;
    s.n_past += KvCache::kBlockSize;
    s.n_hashed = s.n_past;
  }
  return s.n_past;
}

}  // namespace osprey
