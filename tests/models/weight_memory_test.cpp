// Repacking weights at load must not double memory: the packed copy replaces
// the file's pages for those matrices.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "models/model.h"
#include "test_util.h"

namespace osprey {
namespace {

// Resident bytes of this process now (not the peak), from /proc.
int64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * 4096;
}

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

TEST(WeightMemory, RepackedModelHoldsEachWeightOnce) {
  if (!std::filesystem::exists("/proc/self/statm")) GTEST_SKIP() << "no /proc/self/statm on this system";
  if (kSanitized) GTEST_SKIP() << "a sanitizer's shadow memory and quarantine make resident size meaningless";
  for (const char* type : {"q4_0", "q8_0"}) {
    const std::string path = test::synth_model("smollm2-135m", type);
    const auto file_bytes = static_cast<int64_t>(std::filesystem::file_size(path));
    const int64_t before = resident_bytes();
    ModelOptions o;
    o.n_ctx = 64;
    auto m = Model::load(path, o);
    ASSERT_TRUE(m.ok()) << m.status().message();
    // Touch everything once, as a first pass does.
    const int32_t tok = 1;
    ASSERT_TRUE((*m)->eval(&tok, 1).ok());
    const int64_t grown = resident_bytes() - before;
    const auto& w = (*m)->weights();
    RecordProperty(std::string("packed_") + type, static_cast<int>(w.n_packed));
    // Each weight once, plus the KV cache and activations (small at n_ctx 64);
    // a doubled copy would be near 2x the file.
    EXPECT_LT(grown, file_bytes * 13 / 10) << type << ": " << (grown >> 20) << " MiB resident after loading a "
                                           << (file_bytes >> 20) << " MiB file (" << w.n_packed << " matrices repacked)";
  }
}

// Bench's bytes per token: every matrix once, the embedding's one row (or
// all of it when it is also the output), and only the active share of
// stacked experts. Checked against the file's own tensor sizes.
TEST(WeightMemory, BytesPerTokenCountsWhatATokenReads) {
  for (const char* preset : {"tiny", "tiny-qwen2", "tiny-phi3", "tiny-qwen3moe"}) {
    auto m = Model::load(test::synth_model(preset, "q8_0"), ModelOptions{});
    ASSERT_TRUE(m.ok()) << m.status().message();
    double matrices = 0, experts = 0, embedding_row = 0, embedding = 0;
    for (const GgufTensorInfo& t : (*m)->file().tensors()) {
      if (t.dims.size() < 2 || (t.dims.size() == 2 && t.dims[1] == 1)) continue;  // vectors
      if (t.name == "token_embd.weight") {
        embedding = static_cast<double>(t.n_bytes);
        embedding_row = embedding / static_cast<double>(t.dims[1]);
      } else if (t.name.find("_exps.") != std::string::npos) {
        experts += static_cast<double>(t.n_bytes);
      } else {
        matrices += static_cast<double>(t.n_bytes);
      }
    }
    const ModelConfig& c = (*m)->config();
    double want = matrices + embedding_row + ((*m)->weights().tied_output ? embedding : 0);
    if (c.n_expert > 0) want += experts * static_cast<double>(c.n_expert_used) / static_cast<double>(c.n_expert);
    EXPECT_NEAR((*m)->weights().bytes_per_token(), want, want * 1e-9) << preset;
  }
}

}  // namespace
}  // namespace osprey
