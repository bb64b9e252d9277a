// Continuous batching must not change what a sequence computes: its logits
// are bit-identical whether it runs alone or beside others, whatever the
// pass boundaries, and whether its prefix came from the prefix cache.
#include <gtest/gtest.h>

#include <cstring>

#include "models/model.h"
#include "test_util.h"

namespace osprey {
namespace {

// `spec`: "type" for the tiny llama, "preset:type", or "preset:type:cache"
// with keys and values stored as `cache`.
std::unique_ptr<Model> load(const std::string& spec, int n_seq, bool prefix_cache, int64_t n_batch = 64,
                            int64_t kv_blocks = 0, int threads = 2) {
  const size_t colon = spec.find(':');
  const std::string preset = colon == std::string::npos ? "tiny" : spec.substr(0, colon);
  std::string type = colon == std::string::npos ? spec : spec.substr(colon + 1);
  ModelOptions o;
  if (const size_t cache = type.find(':'); cache != std::string::npos) {
    const auto t = parse_kv_cache_type(type.substr(cache + 1), "cache");
    EXPECT_TRUE(t.ok()) << t.status().message();
    o.cache_type_k = o.cache_type_v = *t;
    type.resize(cache);
  }
  o.n_threads = threads;
  o.n_ctx = 256;
  o.n_batch = n_batch;
  o.n_seq_max = n_seq;
  o.prefix_cache = prefix_cache;
  // A prefix cache reuses window layers' blocks too, so they must keep them all.
  o.full_window_cache = prefix_cache;
  o.kv_blocks = kv_blocks;
  auto m = Model::load(test::synth_model(preset, type), o);
  EXPECT_TRUE(m.ok()) << m.status().message();
  return std::move(m).value();
}

std::vector<int32_t> tokens(int n, int seed) {
  std::vector<int32_t> t(n);
  for (int i = 0; i < n; ++i) t[i] = 3 + (i * 37 + seed * 101) % 200;
  return t;
}

int32_t argmax(const float* l, int64_t n) { return static_cast<int32_t>(std::max_element(l, l + n) - l); }

// Logits after the prompt and after each of `steps` greedy tokens, alone.
std::vector<std::vector<float>> solo_run(Model& m, const std::vector<int32_t>& prompt, int steps) {
  const int64_t V = m.config().n_vocab;
  std::vector<std::vector<float>> out;
  auto l = m.eval(prompt.data(), static_cast<int64_t>(prompt.size()));
  EXPECT_TRUE(l.ok());
  out.emplace_back(*l, *l + V);
  for (int s = 0; s < steps; ++s) {
    int32_t t = argmax(out.back().data(), V);
    l = m.eval(&t, 1);
    out.emplace_back(*l, *l + V);
  }
  return out;
}

class Batching : public ::testing::TestWithParam<std::string> {};

TEST_P(Batching, NeighboursDoNotChangeASequencesLogits) {
  const std::vector<int32_t> a = tokens(41, 1), b = tokens(70, 2), c = tokens(5, 3);
  auto solo = load(GetParam(), 1, false);
  const auto want = solo_run(*solo, a, 6);

  // n_batch 16 splits prompts across passes at different offsets.
  auto m = load(GetParam(), 3, false, 16);
  const int64_t V = m->config().n_vocab;
  BatchItem items[3] = {{1, b.data(), 70, true}, {0, a.data(), 41, true}, {2, c.data(), 5, true}};
  auto l = m->eval_batch(items, 3);
  ASSERT_TRUE(l.ok()) << l.status().message();
  ASSERT_EQ(0, std::memcmp(*l + V, want[0].data(), V * sizeof(float))) << "prompt logits differ in a batch";
  int32_t next[3] = {argmax(*l, V), argmax(*l + V, V), argmax(*l + 2 * V, V)};
  for (int s = 1; s <= 6; ++s) {
    // Sequence 2 leaves after two steps, as a finished request would.
    const size_t n = s <= 2 ? 3 : 2;
    BatchItem step[3] = {{1, &next[0], 1, true}, {0, &next[1], 1, true}, {2, &next[2], 1, true}};
    l = m->eval_batch(step, n);
    ASSERT_TRUE(l.ok()) << l.status().message();
    ASSERT_EQ(0, std::memcmp(*l + V, want[s].data(), V * sizeof(float))) << "decode step " << s;
    for (size_t i = 0; i < n; ++i) next[i] = argmax(*l + i * V, V);
    if (s == 2) m->seq_clear(2);
  }
}

TEST_P(Batching, PrefixCacheGivesTheSameLogitsAsComputing) {
  const std::vector<int32_t> system = tokens(40, 7);
  std::vector<int32_t> first = system, second = system;
  for (int32_t t : tokens(9, 8)) first.push_back(t);
  for (int32_t t : tokens(13, 9)) second.push_back(t);

  auto plain = load(GetParam(), 1, false);
  const auto want = solo_run(*plain, second, 3);

  auto m = load(GetParam(), 2, true);
  const int64_t V = m->config().n_vocab;
  BatchItem one{0, first.data(), static_cast<int64_t>(first.size()), true};
  ASSERT_TRUE(m->eval_batch(&one, 1).ok());
  m->seq_clear(0);  // the first request finished; its full blocks stay cached

  const int64_t reused = m->seq_attach_prefix(1, second.data(), static_cast<int64_t>(second.size()));
  EXPECT_EQ(reused, 32);  // two full blocks of the shared 40-token system prompt
  BatchItem rest{1, second.data() + reused, static_cast<int64_t>(second.size()) - reused, true};
  auto l = m->eval_batch(&rest, 1);
  ASSERT_TRUE(l.ok());
  ASSERT_EQ(0, std::memcmp(*l, want[0].data(), V * sizeof(float)));
  for (int s = 1; s <= 3; ++s) {
    int32_t t = argmax(*l, V);
    BatchItem step{1, &t, 1, true};
    l = m->eval_batch(&step, 1);
    ASSERT_TRUE(l.ok());
    ASSERT_EQ(0, std::memcmp(*l, want[s].data(), V * sizeof(float))) << "step " << s;
  }
}

// Every family, so that windows (gemma's 8 positions, phi3's 16, all slid
// past here), Q/K norms, post-norms and fused matrices keep the guarantee;
// and quantized caches, whose rows are encoded once and read by every pass.
INSTANTIATE_TEST_SUITE_P(Types, Batching,
                         ::testing::Values("q4_0", "q8_0", "q4_k", "f16", "tiny-qwen3:q8_0", "tiny-gemma3:q4_0",
                                           "tiny-gemma2:q8_0", "tiny-phi3:q4_k", "tiny-qwen2:q8_0",
                                           "tiny-qwen3moe:q8_0", "tiny-olmoe:q4_0", "tiny-mixtral:q4_k",
                                           "tiny-gpt-oss:mxfp4", "tiny:q8_0:q8_0", "tiny-gemma3:q4_0:q4_0",
                                           "tiny-qwen3moe:q8_0:q5_1", "tiny-phi3:q4_k:bf16"),
                         [](const auto& info) { return test::test_name(info.param); });

// Sliding-window layers keep only their window in a pool of their own, and
// give the same bits as keeping every position: over a prompt split into
// passes, and generation well past the window.
TEST(WindowCache, KeepsOnlyTheWindowAndGivesTheSameLogits) {
  for (const char* preset : {"tiny-gemma3", "tiny-gemma2", "tiny-phi3", "tiny-gpt-oss"}) {
    const std::string path = test::synth_model(preset, "q8_0");
    auto load_with = [&](bool full, int64_t n_batch) {
      ModelOptions o;
      o.n_threads = 2;
      o.n_ctx = 256;
      o.n_batch = n_batch;
      o.full_window_cache = full;
      auto m = Model::load(path, o);
      EXPECT_TRUE(m.ok()) << m.status().message();
      return std::move(m).value();
    };
    const std::vector<int32_t> prompt = tokens(90, 11);
    auto full = load_with(true, 64);
    const auto want = solo_run(*full, prompt, 24);
    for (int64_t n_batch : {7, 64}) {
      auto m = load_with(false, n_batch);
      ASSERT_GT(m->window_kv().n_blocks(), 0) << preset;
      const auto got = solo_run(*m, prompt, 24);
      for (size_t s = 0; s < want.size(); ++s) ASSERT_EQ(want[s], got[s]) << preset << " n_batch " << n_batch << " step " << s;
      // What the window layers hold: their window and the blocks around it.
      const int64_t window = m->config().n_swa;
      EXPECT_LE(m->window_kv().used_blocks(), (window + KvCache::kBlockSize - 1) / KvCache::kBlockSize + 1) << preset;
      EXPECT_LT(m->kv_bytes(), full->kv_bytes()) << preset;
    }
  }
}

// Rewinding into positions the window layers have dropped cannot keep the
// sequence: it is cleared, and the caller sees it in seq_n_past().
TEST(WindowCache, TruncatingIntoDroppedPositionsClears) {
  ModelOptions o;
  o.n_threads = 2;
  o.n_ctx = 256;
  auto m = Model::load(test::synth_model("tiny-gemma3", "q8_0"), o);
  ASSERT_TRUE(m.ok());
  const std::vector<int32_t> prompt = tokens(100, 12);
  ASSERT_TRUE((*m)->eval(prompt.data(), 100).ok());
  (*m)->truncate(96);  // still within the window of 8 behind position 100
  EXPECT_EQ((*m)->n_past(), 96);
  (*m)->truncate(40);  // needs positions 33..39, long dropped
  EXPECT_EQ((*m)->n_past(), 0);
  EXPECT_EQ((*m)->window_kv().used_blocks(), 0);
  // And it runs again from scratch with the same result.
  auto again = Model::load(test::synth_model("tiny-gemma3", "q8_0"), o);
  auto a = (*m)->eval(prompt.data(), 40);
  ASSERT_TRUE(a.ok());
  const std::vector<float> got(*a, *a + (*m)->config().n_vocab);
  auto b = (*again)->eval(prompt.data(), 40);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(0, std::memcmp(got.data(), *b, got.size() * sizeof(float)));
}

// A sequence's logits are the same bits at 1, 2 and 3 threads, and as one
// of 8 sequences in a batch.
TEST_P(Batching, ThreadCountAndABatchOfEightDoNotChangeLogits) {
  const std::vector<int32_t> a = tokens(29, 4);
  auto solo = load(GetParam(), 1, false, 64, 0, 1);
  const auto want = solo_run(*solo, a, 3);
  for (int threads : {2, 3}) {
    auto m = load(GetParam(), 1, false, 64, 0, threads);
    const auto got = solo_run(*m, a, 3);
    for (size_t s = 0; s < want.size(); ++s)
      ASSERT_EQ(want[s], got[s]) << threads << " threads, step " << s;
  }
  auto m = load(GetParam(), 8, false, 32, 0, 3);
  const int64_t V = m->config().n_vocab;
  std::vector<std::vector<int32_t>> others;
  for (int i = 0; i < 7; ++i) others.push_back(tokens(7 + 9 * i, 20 + i));
  std::vector<BatchItem> items;
  for (int i = 0; i < 7; ++i) items.push_back({i == 3 ? 7 : i, others[i].data(), static_cast<int64_t>(others[i].size()), true});
  items.insert(items.begin() + 3, BatchItem{3, a.data(), static_cast<int64_t>(a.size()), true});
  auto l = m->eval_batch(items.data(), items.size());
  ASSERT_TRUE(l.ok()) << l.status().message();
  ASSERT_EQ(0, std::memcmp(*l + 3 * V, want[0].data(), V * sizeof(float))) << "prompt logits in a batch of 8";
}

TEST(BatchingLimits, FullPoolFailsCleanlyAndRecovers) {
  auto m = load("q8_0", 2, false, 64, /*kv_blocks=*/4);  // 64 positions in all
  const auto p = tokens(40, 1);
  BatchItem a{0, p.data(), 40, true};
  ASSERT_TRUE(m->eval_batch(&a, 1).ok());
  BatchItem b{1, p.data(), 40, true};
  auto r = m->eval_batch(&b, 1);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("KV cache is full"), std::string::npos) << r.status().message();
  EXPECT_EQ(m->seq_n_past(1), 0);
  EXPECT_EQ(m->kv().used_blocks(), 3);
  m->seq_clear(0);
  EXPECT_EQ(m->kv().used_blocks(), 0);
  EXPECT_TRUE(m->eval_batch(&b, 1).ok());
}

TEST(BatchingLimits, BadBatchesAreRejectedWithoutChanges) {
  auto m = load("q8_0", 2, false);
  const auto p = tokens(4, 1);
  BatchItem twice[2] = {{0, p.data(), 4, true}, {0, p.data(), 4, true}};
  EXPECT_FALSE(m->eval_batch(twice, 2).ok());
  BatchItem bad_seq{5, p.data(), 4, true};
  EXPECT_FALSE(m->eval_batch(&bad_seq, 1).ok());
  const int32_t bad_token = 1 << 30;
  BatchItem bad[2] = {{0, p.data(), 4, true}, {1, &bad_token, 1, true}};
  EXPECT_FALSE(m->eval_batch(bad, 2).ok());
  EXPECT_EQ(m->seq_n_past(0), 0);
  EXPECT_EQ(m->kv().used_blocks(), 0);
}

TEST(BatchingLimits, TruncatingIntoASharedBlockCopiesIt) {
  auto m = load("q8_0", 2, true);
  const auto p = tokens(40, 3);
  BatchItem a{0, p.data(), 40, true};
  ASSERT_TRUE(m->eval_batch(&a, 1).ok());
  EXPECT_EQ(m->seq_attach_prefix(1, p.data(), 40), 32);
  // Sequence 0 rewinds into its second block, which sequence 1 shares.
  m->truncate(20);
  const auto other = tokens(5, 4);
  ASSERT_TRUE(m->eval(other.data(), 5).ok());
  // Sequence 1 still computes what a fresh model computes for the same prompt.
  auto fresh = load("q8_0", 1, false);
  const auto want = solo_run(*fresh, p, 0);
  BatchItem rest{1, p.data() + 32, 8, true};
  auto l = m->eval_batch(&rest, 1);
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(0, std::memcmp(*l, want[0].data(), m->config().n_vocab * sizeof(float)));
}

}  // namespace
}  // namespace osprey
