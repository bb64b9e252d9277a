// osprey's logits against the independent reference (tests/reference/), for
// each architecture family and each weight type, over a batched prompt and
// several single-token steps.
#include <gtest/gtest.h>

#include <cmath>

#include "models/model.h"
#include "reference/reference_model.h"
#include "test_util.h"

namespace osprey {
namespace {

struct Case {
  const char* preset;
  const char* type;
  double tol;  // allowed RMS(logit error) / RMS(logits)
};

// Tolerances from the arithmetic osprey does differently from the double
// reference: fp16 keys/values and attention products (~1e-3 relative), plus
// activations re-encoded before every product: 8-bit blocks (~0.5% per
// product, compounding over a few layers), bf16 (~0.4%), fp16 (~0.05%).
const Case kCases[] = {
    {"tiny", "f32", 5e-3},         {"tiny", "f16", 5e-3},         {"tiny", "bf16", 3e-2},
    {"tiny", "q8_0", 3e-2},        {"tiny", "q4_0", 3e-2},        {"tiny", "q4_1", 3e-2},
    {"tiny", "q5_0", 3e-2},        {"tiny", "q5_1", 3e-2},        {"tiny", "q4_k", 3e-2},
    {"tiny", "q5_k", 3e-2},        {"tiny", "q6_k", 3e-2},        {"tiny-qwen2", "f32", 5e-3},
    {"tiny-qwen2", "q8_0", 3e-2},  {"tiny-qwen2", "q4_0", 3e-2},  {"tiny-qwen2", "q4_k", 3e-2},
    {"tiny-llama3", "f16", 5e-3},  {"tiny-llama3", "q8_0", 3e-2}, {"tiny-llama3", "q6_k", 3e-2},
};

double rel_rms(const float* got, const std::vector<double>& want, int* worst_index) {
  double err = 0, ref = 0, worst = -1;
  for (size_t i = 0; i < want.size(); ++i) {
    const double e = got[i] - want[i];
    err += e * e;
    ref += want[i] * want[i];
    if (std::fabs(e) > worst) worst = std::fabs(e), *worst_index = static_cast<int>(i);
  }
  return std::sqrt(err / ref);
}

int argmax(const std::vector<double>& v) {
  return static_cast<int>(std::max_element(v.begin(), v.end()) - v.begin());
}

class ReferenceCompare : public ::testing::TestWithParam<Case> {};

TEST_P(ReferenceCompare, LogitsAgreeOverSeveralSteps) {
  const Case c = GetParam();
  const std::string path = test::synth_model(c.preset, c.type);
  ASSERT_FALSE(path.empty());
  reference::Model ref;
  ASSERT_EQ(ref.load(path), "");
  ModelOptions mo;
  mo.n_threads = 2;
  mo.n_ctx = 64;
  mo.n_batch = 4;  // the 7-token prompt spans two batches
  auto model = Model::load(path, mo);
  ASSERT_TRUE(model.ok()) << model.status().message();

  std::vector<int32_t> tokens = {1, 17, 300, 42, 99, 5, 250};
  std::vector<double> want;
  for (int32_t t : tokens) want = ref.step(t);
  auto got = (*model)->eval(tokens.data(), static_cast<int64_t>(tokens.size()));
  ASSERT_TRUE(got.ok()) << got.status().message();
  for (int step = 0; step < 6; ++step) {
    int worst = 0;
    const double e = rel_rms(*got, want, &worst);
    EXPECT_LT(e, c.tol) << c.preset << " " << c.type << " step " << step << ": worst logit " << worst << " got "
                        << (*got)[worst] << " want " << want[worst];
    const int next = argmax(want);
    EXPECT_EQ(std::max_element(*got, *got + want.size()) - *got, next) << "step " << step;
    want = ref.step(next);
    const int32_t next_id = next;
    got = (*model)->eval(&next_id, 1);
    ASSERT_TRUE(got.ok());
  }
}

INSTANTIATE_TEST_SUITE_P(Families, ReferenceCompare, ::testing::ValuesIn(kCases), [](const auto& info) {
  return test::test_name(std::string(info.param.preset) + "_" + info.param.type);
});

}  // namespace
}  // namespace osprey
