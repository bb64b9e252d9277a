// The continuous-batching scheduler, driven by a fake BatchModel whose
// logits depend only on a sequence's own history (as a real model's rows
// do), so a request's reply must not depend on what else is in the batch,
// on preemption, or on the order of arrival.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>

#include "engine/scheduler.h"
#include "tiny_tokenizer.h"

namespace osprey {
namespace {

uint64_t mix(uint64_t x) {  // splitmix64's finaliser
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// KV blocks of kBlock positions from a fixed pool; each row of logits is a
// hash of the sequence's last two tokens and its length, over `allowed`.
class FakeBatchModel : public BatchModel {
 public:
  static constexpr int64_t kBlock = 4;

  FakeBatchModel(int slots, int64_t ctx, int64_t pool_blocks, int32_t vocab, std::vector<int32_t> allowed)
      : ctx_(ctx), pool_(pool_blocks), vocab_(vocab), allowed_(std::move(allowed)), history_(slots) {}

  int n_seq_max() const override { return static_cast<int>(history_.size()); }
  int64_t n_ctx() const override { return ctx_; }
  int32_t n_vocab() const override { return vocab_; }
  int64_t seq_n_past(int seq) const override { return static_cast<int64_t>(history_.at(seq).size()); }
  void seq_clear(int seq) override { history_.at(seq).clear(); }
  void seq_truncate(int seq, int64_t n) override {
    auto& h = history_.at(seq);
    if (static_cast<int64_t>(h.size()) > n) h.resize(static_cast<size_t>(n));
  }
  int64_t seq_attach_prefix(int, const int32_t*, int64_t) override { return 0; }
  int64_t blocks_needed(int seq, int64_t n) const override {
    const int64_t past = seq_n_past(seq);
    return blocks_for(past + n) - blocks_for(past);
  }
  int64_t available_blocks() const override {
    int64_t used = 0;
    for (const auto& h : history_) used += blocks_for(static_cast<int64_t>(h.size()));
    return pool_ - used;
  }
  Expected<const float*> eval_batch(const BatchItem* items, size_t count) override {
    ++passes;
    if (on_pass) on_pass(passes);
    int64_t need = 0;
    for (size_t i = 0; i < count; ++i) {
      if (seq_n_past(items[i].seq) + items[i].n > ctx_) return OutOfRange("context full");
      need += blocks_needed(items[i].seq, items[i].n);
    }
    if (need > available_blocks()) return OutOfRange("KV pool dry");
    rows_.clear();
    for (size_t i = 0; i < count; ++i) {
      auto& h = history_[items[i].seq];
      h.insert(h.end(), items[i].tokens, items[i].tokens + items[i].n);
      if (!items[i].logits) continue;
      const size_t n = h.size();
      for (size_t len = items[i].all_logits ? n - static_cast<size_t>(items[i].n) + 1 : n; len <= n; ++len) add_row(h, len);
    }
    return static_cast<const float*>(rows_.data());
  }

  int passes = 0;
  std::function<void(int)> on_pass;  // runs at the start of every forward pass, on the scheduler's thread
  // Sharper logits that depend on the last token only, so that replies
  // fall into cycles that prompt lookup drafts.
  bool position_free = false;

 private:
  // The logits after the first `len` tokens of h.
  void add_row(const std::vector<int32_t>& h, size_t len) {
    const uint64_t before = len >= 2 && !position_free ? static_cast<uint64_t>(h[len - 2]) : 0;
    const uint64_t key = mix(static_cast<uint64_t>(h[len - 1]) * 131 + before +
                             (position_free ? 0 : static_cast<uint64_t>(len) << 32));
    const float scale = position_free ? 1.0e6f : 4.0e6f;
    const size_t base = rows_.size();
    rows_.resize(base + static_cast<size_t>(vocab_), -30.0f);
    for (int32_t t : allowed_) rows_[base + t] = static_cast<float>(mix(key ^ static_cast<uint64_t>(t)) >> 40) / scale;
  }

  static int64_t blocks_for(int64_t positions) { return (positions + kBlock - 1) / kBlock; }
  int64_t ctx_, pool_;
  int32_t vocab_;
  std::vector<int32_t> allowed_;
  std::vector<std::vector<int32_t>> history_;
  std::vector<float> rows_;
};

class CountingObserver : public SchedulerObserver {
 public:
  void preempted() override { ++preemptions; }
  void speculated(int64_t drafted_tokens, int64_t accepted_tokens) override {
    drafted += drafted_tokens;
    accepted += accepted_tokens;
  }
  std::atomic<int> preemptions{0};
  std::atomic<int64_t> drafted{0}, accepted{0};
};

struct Reply {
  std::vector<int32_t> tokens;
  std::string text;
  std::string finish;
  std::string error;
  bool done = false;
  bool operator==(const Reply& o) const { return tokens == o.tokens && text == o.text && finish == o.finish; }
};

Reply collect(GenerationRequest& r) {
  Reply out;
  while (!out.done) {
    auto e = r.next_event(std::chrono::milliseconds(20000));
    if (!e) {
      out.error = "no event within 20 s";
      break;
    }
    if (e->has_token) out.tokens.push_back(e->token);
    out.text += e->text;
    out.done = e->done;
    if (e->done) {
      out.finish = e->finish_reason;
      out.error = e->error;
    }
  }
  return out;
}

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tok_ = test::tiny_tokenizer();
    ASSERT_TRUE(tok_);
    // Printable ASCII pieces only, so texts compare and stop strings are plain.
    for (int32_t id = 0; id < tok_->vocab().size(); ++id) {
      if (tok_->vocab().types[id] != TokenType::kNormal) continue;
      const std::string s = tok_->token_bytes(id);
      if (s.empty() || s.size() > 6) continue;
      if (std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f; })) allowed_.push_back(id);
    }
    ASSERT_GT(allowed_.size(), 50u);
  }

  std::unique_ptr<FakeBatchModel> model(int slots, int64_t pool_blocks, int64_t ctx = 256) {
    return std::make_unique<FakeBatchModel>(slots, ctx, pool_blocks, tok_->vocab().size(), allowed_);
  }

  std::shared_ptr<GenerationRequest> request(std::vector<int32_t> prompt, int64_t max_tokens, float temperature,
                                             uint64_t seed) {
    auto r = std::make_shared<GenerationRequest>();
    r->prompt = std::move(prompt);
    r->reply.max_tokens = max_tokens;
    r->reply.sampling.temperature = temperature;
    r->reply.sampling.seed = seed;
    return r;
  }

  std::vector<int32_t> prompt(int n, int salt) const {
    std::vector<int32_t> p;
    for (int i = 0; i < n; ++i) p.push_back(allowed_[(i * 7 + salt * 13) % allowed_.size()]);
    return p;
  }

  // Runs the requests together (all submitted before any is read).
  std::vector<Reply> run_together(BatchModel& m, const std::vector<std::shared_ptr<GenerationRequest>>& reqs,
                                  SchedulerObserver* obs = nullptr, SchedulerOptions opt = {}) {
    Scheduler s(m, *tok_, obs, opt);
    for (auto& r : reqs) EXPECT_TRUE(s.submit(r));
    std::vector<Reply> out;
    for (auto& r : reqs) out.push_back(collect(*r));
    return out;
  }

  Reply run_alone(std::shared_ptr<GenerationRequest> r) {
    auto m = model(1, 1000);
    return run_together(*m, {r})[0];
  }

  std::shared_ptr<Tokenizer> tok_;
  std::vector<int32_t> allowed_;
};

TEST_F(SchedulerTest, PreemptionAndRecomputationGiveTheUnpreemptedReplies) {
  auto make = [&] {
    std::vector<std::shared_ptr<GenerationRequest>> reqs;
    for (int i = 0; i < 4; ++i) reqs.push_back(request(prompt(10 + i, i), 30, 0.9f, 100 + i));
    return reqs;
  };
  auto roomy = model(4, 1000);
  const auto expected = run_together(*roomy, make());

  // Each reply needs 10 or 11 blocks of 4 positions; 4 of them do not fit in
  // 24, so sequences are preempted and recomputed.
  auto tight = model(4, 24);
  CountingObserver obs;
  const auto got = run_together(*tight, make(), &obs);
  EXPECT_GT(obs.preemptions.load(), 0);
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].error, "") << i;
    EXPECT_EQ(got[i].tokens.size(), 30u) << i;
    EXPECT_EQ(got[i].finish, "length") << i;
    EXPECT_TRUE(got[i] == expected[i]) << "request " << i << ": '" << got[i].text << "' vs '" << expected[i].text << "'";
  }
}

TEST_F(SchedulerTest, BatchedRepliesEqualTheRequestRunAlone) {
  std::vector<std::shared_ptr<GenerationRequest>> reqs;
  for (int i = 0; i < 3; ++i) reqs.push_back(request(prompt(5 + 3 * i, i), 12 + i, i == 1 ? 0.0f : 1.0f, 7));
  auto m = model(3, 1000);
  // A small prefill chunk makes prompts of different lengths share passes
  // with sequences that are already decoding.
  const auto together = run_together(*m, reqs, nullptr, SchedulerOptions{64, 4});
  for (int i = 0; i < 3; ++i) {
    const Reply alone = run_alone(request(prompt(5 + 3 * i, i), 12 + i, i == 1 ? 0.0f : 1.0f, 7));
    EXPECT_TRUE(together[i] == alone) << i;
  }
}

TEST_F(SchedulerTest, SameSeedSameReplyAndChoicesWithSuccessiveSeedsDiffer) {
  // What the server does for n > 1: one request per choice, seeds seed + i.
  std::vector<std::shared_ptr<GenerationRequest>> reqs;
  for (int i = 0; i < 3; ++i) reqs.push_back(request(prompt(8, 1), 20, 1.0f, 42 + i));
  reqs.push_back(request(prompt(8, 1), 20, 1.0f, 42));  // the first choice again
  auto m = model(4, 1000);
  const auto got = run_together(*m, reqs);
  EXPECT_TRUE(got[0] == got[3]);
  EXPECT_FALSE(got[0] == got[1]);
  EXPECT_FALSE(got[1] == got[2]);
  // And again on a fresh scheduler, with the requests arriving in another order.
  std::vector<std::shared_ptr<GenerationRequest>> again;
  for (int i = 2; i >= 0; --i) again.push_back(request(prompt(8, 1), 20, 1.0f, 42 + i));
  auto m2 = model(2, 1000);
  const auto got2 = run_together(*m2, again);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(got2[2 - i] == got[i]) << i;
}

TEST_F(SchedulerTest, StopStringSpanningTokensEndsTheReplyBeforeIt) {
  const Reply free_run = run_alone(request(prompt(6, 3), 40, 0.0f, 0));
  ASSERT_EQ(free_run.tokens.size(), 40u);
  // A stop string made of the end of one token's text and the start of the
  // next's, at the first boundary where it does not occur earlier.
  std::string stop;
  size_t at = 0, boundary = 0;
  for (size_t k = 0; k + 1 < free_run.tokens.size() && stop.empty(); ++k) {
    boundary += tok_->token_bytes(free_run.tokens[k]).size();
    if (tok_->token_bytes(free_run.tokens[k]).size() < 2 || tok_->token_bytes(free_run.tokens[k + 1]).size() < 2) continue;
    const std::string s = free_run.text.substr(boundary - 2, 4);
    if (free_run.text.find(s) == boundary - 2) stop = s, at = boundary - 2;
  }
  ASSERT_FALSE(stop.empty()) << free_run.text;

  auto r = request(prompt(6, 3), 40, 0.0f, 0);
  r->reply.stop = {"\x01never", stop};
  auto m = model(1, 1000);
  Scheduler s(*m, *tok_, nullptr, {});
  ASSERT_TRUE(s.submit(r));
  std::string text;
  for (;;) {
    auto e = r->next_event(std::chrono::milliseconds(20000));
    ASSERT_TRUE(e.has_value());
    text += e->text;
    if (e->done) {
      EXPECT_EQ(e->finish_reason, "stop");
      break;
    }
  }
  EXPECT_EQ(text, free_run.text.substr(0, at)) << "stop '" << stop << "'";
}

TEST_F(SchedulerTest, CancellingMidStepEndsThatRequestAndFreesItsSlot) {
  auto m = model(2, 1000);
  auto victim = request(prompt(6, 4), 200, 1.0f, 9);
  auto other = request(prompt(7, 5), 30, 1.0f, 10);
  // Cancel while the fifth forward pass is running, as a connection closing
  // would.
  m->on_pass = [&](int pass) {
    if (pass == 5) victim->cancelled = true;
  };
  Scheduler s(*m, *tok_, nullptr, {});
  ASSERT_TRUE(s.submit(victim));
  ASSERT_TRUE(s.submit(other));
  const Reply v = collect(*victim);
  EXPECT_TRUE(v.done);
  EXPECT_EQ(v.finish, "");
  EXPECT_LT(v.tokens.size(), 5u);
  const Reply o = collect(*other);
  EXPECT_TRUE(o == run_alone(request(prompt(7, 5), 30, 1.0f, 10)));
  // The freed slot takes the next request.
  auto next = request(prompt(5, 6), 8, 0.0f, 0);
  ASSERT_TRUE(s.submit(next));
  const Reply n = collect(*next);
  EXPECT_EQ(n.tokens.size(), 8u);
  // running() is a gauge the loop updates after the step that delivered.
  for (int i = 0; i < 200 && s.running() != 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(s.running(), 0);
}

TEST_F(SchedulerTest, ARequestThatCanNeverFitFailsWithAClearError) {
  auto m = model(2, 3);  // 12 positions in all
  auto r = request(prompt(20, 0), 4, 0.0f, 0);
  const auto got = run_together(*m, {r});
  EXPECT_NE(got[0].error.find("more KV cache"), std::string::npos) << got[0].error;
}

TEST_F(SchedulerTest, ContextFullIsALengthFinish) {
  auto m = model(1, 1000, 16);
  const auto got = run_together(*m, {request(prompt(10, 2), -1, 0.0f, 0)});
  EXPECT_EQ(got[0].error, "");
  EXPECT_EQ(got[0].finish, "length");
  EXPECT_EQ(got[0].tokens.size(), 7u);  // 10 prompt + 6 fed back fill the 16 positions, and the last one sampled
}

TEST_F(SchedulerTest, DrainFinishesQueuedWorkAndRefusesNew) {
  auto m = model(1, 1000);
  Scheduler s(*m, *tok_, nullptr, {});
  auto a = request(prompt(5, 1), 10, 0.0f, 0);
  auto b = request(prompt(5, 2), 10, 0.0f, 0);
  ASSERT_TRUE(s.submit(a));
  ASSERT_TRUE(s.submit(b));
  s.shutdown(false);
  EXPECT_FALSE(s.accepting());
  EXPECT_FALSE(s.submit(request(prompt(5, 3), 10, 0.0f, 0)));
  EXPECT_EQ(collect(*a).tokens.size(), 10u);
  EXPECT_EQ(collect(*b).tokens.size(), 10u);
}

// Speculation inside the scheduler: greedy and sampled requests with
// prompt-lookup drafts, beside each other and beside requests without,
// reply exactly as they do with no drafts; in a tight pool too, where
// sequences are preempted and recomputed.
TEST_F(SchedulerTest, SpeculationLeavesEveryReplyUnchanged) {
  auto make = [&](bool speculate) {
    std::vector<std::shared_ptr<GenerationRequest>> reqs;
    for (int i = 0; i < 5; ++i) {
      auto r = request(prompt(6 + i, i), 60, i % 2 == 0 ? 0.0f : 0.7f, 40 + i);
      r->reply.speculation.ngram = speculate && i != 4;  // the last never speculates
      reqs.push_back(r);
    }
    return reqs;
  };
  for (int64_t pool : {1000, 40}) {
    auto plain_model = model(5, 1000);
    plain_model->position_free = true;
    const auto expected = run_together(*plain_model, make(false));
    auto spec_model = model(5, pool);
    spec_model->position_free = true;
    CountingObserver obs;
    const auto got = run_together(*spec_model, make(true), &obs, SchedulerOptions{64, 8});
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].error, "") << i;
      EXPECT_TRUE(got[i] == expected[i]) << "pool " << pool << ", request " << i << ": '" << got[i].text << "' vs '"
                                         << expected[i].text << "'";
    }
    EXPECT_GT(obs.accepted.load(), 20) << "pool " << pool << ": drafts hardly accepted; the test proved little";
    EXPECT_LT(obs.accepted.load(), obs.drafted.load() + 1);
    if (pool == 40) {
      EXPECT_GT(obs.preemptions.load(), 0);
    }
  }
}

}  // namespace
}  // namespace osprey
