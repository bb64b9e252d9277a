// A deterministic end-to-end run: greedy tokens of fixed synthetic models
// compared with stored goldens, once for every kernel level this CPU runs.
// A change in these ids is a deliberate, reviewed update: regenerate with
// OSPREY_UPDATE_GOLDEN=1 and commit the new files.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "kernels/dispatch.h"
#include "models/model.h"
#include "test_util.h"

namespace osprey {
namespace {

struct Golden {
  const char* preset;
  const char* type;
};

std::vector<int32_t> greedy_run(const std::string& path, kernels::Isa isa) {
  ModelOptions mo;
  mo.isa = isa;
  auto m = Model::load(path, mo);
  EXPECT_TRUE(m.ok());
  std::vector<int32_t> out = {1, 40, 41, 42};
  auto logits = (*m)->eval(out.data(), 4);
  const int n_vocab = static_cast<int>((*m)->config().n_vocab);
  for (int i = 0; i < 32; ++i) {
    const int32_t next = static_cast<int32_t>(std::max_element(*logits, *logits + n_vocab) - *logits);
    out.push_back(next);
    logits = (*m)->eval(&next, 1);
  }
  return out;
}

class GoldenRun : public ::testing::TestWithParam<Golden> {};

TEST_P(GoldenRun, TokensMatchStoredGolden) {
  const Golden g = GetParam();
  const std::string file = std::string(OSPREY_SOURCE_DIR) + "/tests/data/golden/" + g.preset + "-" + g.type + ".txt";
  const std::string path = test::synth_model(g.preset, g.type);
  for (kernels::Isa isa : kernels::available_isas()) {
    const auto ids = greedy_run(path, isa);
    std::ostringstream line;
    for (int32_t id : ids) line << id << ' ';
    if (std::getenv("OSPREY_UPDATE_GOLDEN")) {
      std::ofstream(file) << line.str() << '\n';
      continue;
    }
    std::ifstream in(file);
    ASSERT_TRUE(in) << "missing golden " << file << " (run with OSPREY_UPDATE_GOLDEN=1 to create it)";
    std::string want;
    std::getline(in, want);
    EXPECT_EQ(line.str(), want) << "kernel level " << kernels::isa_name(isa);
  }
}

INSTANTIATE_TEST_SUITE_P(Models, GoldenRun,
                         ::testing::Values(Golden{"tiny", "q8_0"}, Golden{"tiny", "q4_k"}, Golden{"tiny-qwen2", "q4_0"},
                                           Golden{"tiny-llama3", "f16"}),
                         [](const auto& info) {
                           return test::test_name(std::string(info.param.preset) + "_" + info.param.type);
                         });

}  // namespace
}  // namespace osprey
