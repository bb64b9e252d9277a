// osprey's full logit vectors against a peer engine's (llama.cpp or
// ik_llama.cpp) on the same file: every family, plain random weights (synth
// --plain, so that every layer's attention, rope, norms, windows and experts
// show in the logits), over a 12-token prompt and 8 greedy steps the peer
// chooses. Requires the same top-10 ids (up to ties within the tolerance)
// and a largest difference under 1% of the peer's logit range at every step.
//
// The peer is built outside the repository; scripts/compare_logits.sh
// builds the probe (tools/peer/llama_logits.cpp) against it and runs this
// test with OSPREY_PEER_LOGITS set to the probe. Without it the test skips.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <sstream>

#include "models/model.h"
#include "test_util.h"

namespace osprey {
namespace {

struct PeerStep {
  int next = 0;
  std::vector<float> logits;
};

std::vector<PeerStep> run_peer(const std::string& probe, const std::string& model, const std::vector<int32_t>& prompt,
                               int steps) {
  std::string cmd = probe + " '" + model + "' " + std::to_string(steps) + " 2";
  for (int32_t t : prompt) cmd += " " + std::to_string(t);
  std::vector<PeerStep> out;
  FILE* f = popen(cmd.c_str(), "r");
  if (f == nullptr) return out;
  std::string text;
  std::array<char, 1 << 16> buf;
  size_t got;
  while ((got = fread(buf.data(), 1, buf.size(), f)) > 0) text.append(buf.data(), got);
  pclose(f);
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream in(line);
    std::string word;
    int step;
    PeerStep s;
    in >> word >> step >> word >> s.next >> word;
    float v;
    while (in >> v) s.logits.push_back(v);
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<int> top10(const float* l, size_t n) {
  std::vector<int> idx(n);
  for (size_t i = 0; i < n; ++i) idx[i] = static_cast<int>(i);
  std::partial_sort(idx.begin(), idx.begin() + 10, idx.end(), [&](int a, int b) { return l[a] > l[b]; });
  idx.resize(10);
  return idx;
}

// Ids in one engine's top 10 and not the other's. Two logits within `tol`
// of the 10th best are a tie that rounding may order either way, so such an
// id is not counted: the engines agree on the top 10 up to ties.
std::vector<int> top10_disagreements(const float* ours, const std::vector<float>& peer, double tol) {
  const std::vector<int> a = top10(ours, peer.size()), b = top10(peer.data(), peer.size());
  const std::set<int> sa(a.begin(), a.end()), sb(b.begin(), b.end());
  std::vector<int> bad;
  for (int id : a)
    if (!sb.count(id) && peer[id] < peer[b.back()] - tol) bad.push_back(id);
  for (int id : b)
    if (!sa.count(id) && ours[id] < ours[a.back()] - tol) bad.push_back(id);
  return bad;
}

struct PeerCase {
  const char* preset;
  const char* type;
};

class PeerLogits : public ::testing::TestWithParam<PeerCase> {};

TEST_P(PeerLogits, FullLogitsAgreeOverPromptAndSteps) {
  const char* probe = std::getenv("OSPREY_PEER_LOGITS");
  if (probe == nullptr) GTEST_SKIP() << "OSPREY_PEER_LOGITS is not set (scripts/compare_logits.sh sets it)";
  const PeerCase c = GetParam();
  // ik_llama.cpp 8337e4c builds Mixtral-style llama MoE layers with the
  // normalised input as the residual (x' = moe(norm(x)) + norm(x), its
  // build_llama passing add_input to llm_build_moe_ffn with the residual add
  // commented out): osprey matches it to 0.007% of the logit range when made
  // to do the same, and the independent reference agrees with osprey's
  // x' = x + moe(norm(x)). So Mixtral is compared with llama.cpp only.
  const char* kind = std::getenv("OSPREY_PEER_KIND");
  if (kind != nullptr && std::string(kind) == "ik" && std::string(c.preset) == "tiny-mixtral")
    GTEST_SKIP() << "ik_llama.cpp's Mixtral residual differs from the model's definition (see the comment)";
  const std::string path = test::synth_model(c.preset, c.type, 42, /*plain=*/true);
  ASSERT_FALSE(path.empty());
  const std::vector<int32_t> prompt = {1, 17, 300, 42, 99, 5, 250, 7, 120, 64, 3, 411};
  const int steps = 8;
  const auto peer = run_peer(probe, path, prompt, steps);
  ASSERT_EQ(peer.size(), static_cast<size_t>(steps + 1)) << "the peer probe failed on " << path;
  ModelOptions mo;
  mo.n_threads = 2;
  mo.n_ctx = 512;
  auto model = Model::load(path, mo);
  ASSERT_TRUE(model.ok()) << model.status().message();
  const int64_t V = (*model)->config().n_vocab;
  auto got = (*model)->eval(prompt.data(), static_cast<int64_t>(prompt.size()));
  for (int s = 0; s <= steps; ++s) {
    ASSERT_TRUE(got.ok()) << got.status().message();
    const std::vector<float>& want = peer[s].logits;
    ASSERT_EQ(static_cast<int64_t>(want.size()), V);
    const auto [lo, hi] = std::minmax_element(want.begin(), want.end());
    double worst = 0;
    int64_t at = 0;
    for (int64_t i = 0; i < V; ++i)
      if (std::fabs((*got)[i] - want[i]) > worst) worst = std::fabs((*got)[i] - want[i]), at = i;
    const double range = *hi - *lo;
    EXPECT_LT(worst, 0.01 * range) << c.preset << " " << c.type << " step " << s << ": logit " << at << " osprey "
                                   << (*got)[at] << " peer " << want[at] << " (range " << range << ")";
    EXPECT_TRUE(top10_disagreements(*got, want, 0.01 * range).empty())
        << c.preset << " " << c.type << " step " << s << ": the top 10 ids differ beyond ties";
    std::printf("%s %s step %d: largest difference %.3g%% of the range\n", c.preset, c.type, s, 100 * worst / range);
    const int32_t next = peer[s].next;  // the peer's choice, so one near-tie cannot derail the rest
    if (s < steps) got = (*model)->eval(&next, 1);
  }
}

// The families the peer knows (ik_llama.cpp has no olmoe). tiny-gemma2 has
// Gemma 2 2B's 26 layers: the peer recognises Gemma 2 sizes by layer count.
const PeerCase kPeerCases[] = {
    {"tiny", "q8_0"},         {"tiny", "f16"},         {"tiny-qwen2", "q8_0"},    {"tiny-qwen2", "f16"},
    {"tiny-qwen3", "q8_0"},   {"tiny-qwen3", "f16"},   {"tiny-gemma3", "q8_0"},   {"tiny-gemma3", "f16"},
    {"tiny-gemma2", "q8_0"},  {"tiny-gemma2", "f16"},  {"tiny-phi3", "q8_0"},     {"tiny-phi3", "f16"},
    {"tiny-qwen3moe", "q8_0"}, {"tiny-qwen3moe", "f16"}, {"tiny-mixtral", "q8_0"}, {"tiny-mixtral", "f16"},
    {"tiny-gpt-oss", "q8_0"}, {"tiny-gpt-oss", "f16"},   {"tiny-gpt-oss", "mxfp4"},
};

INSTANTIATE_TEST_SUITE_P(Families, PeerLogits, ::testing::ValuesIn(kPeerCases), [](const auto& info) {
  return test::test_name(std::string(info.param.preset) + "_" + info.param.type);
});

}  // namespace
}  // namespace osprey
