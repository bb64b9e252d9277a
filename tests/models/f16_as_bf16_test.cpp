// --f16-as-bf16 (ModelOptions::f16_as_bf16): an F16 file loaded that way
// answers with exactly the logits of the same file converted to BF16
// beforehand (osprey quantize ... BF16), since both round each weight to
// nearest even and then run the same BF16 kernels on the same bytes.
#include <gtest/gtest.h>

#include <filesystem>
#include <vector>

#include "convert/quantize_gguf.h"
#include "models/model.h"
#include "test_util.h"

namespace osprey {
namespace {

std::vector<float> logits_over(Model& m, const std::vector<int32_t>& prompt, int steps) {
  std::vector<float> all;
  auto got = m.eval(prompt.data(), static_cast<int64_t>(prompt.size()));
  EXPECT_TRUE(got.ok()) << got.status().message();
  if (!got.ok()) return all;
  const int64_t v = m.config().n_vocab;
  for (int s = 0;; ++s) {
    all.insert(all.end(), *got, *got + v);
    if (s == steps) return all;
    const int32_t next = static_cast<int32_t>(s * 7 + 3);
    got = m.eval(&next, 1);
    EXPECT_TRUE(got.ok()) << got.status().message();
    if (!got.ok()) return all;
  }
}

TEST(F16AsBf16, EqualsTheFileConvertedToBf16) {
  // smollm2-135m ties its embedding to the output head, so every matrix is
  // repacked (and converted); plain random weights make every layer count.
  const std::string f16 = test::synth_model("smollm2-135m", "f16", 42, /*plain=*/true);
  const std::string bf16 = test::temp_path("f16_as_bf16", "converted-bf16.gguf");
  {
    auto in = GgufFile::open(f16);
    ASSERT_TRUE(in.ok()) << in.status().message();
    QuantizeOptions qo;
    auto recipe = parse_quant_recipe("BF16");
    ASSERT_TRUE(recipe.ok()) << recipe.status().message();
    qo.recipe = *recipe;
    auto plan = plan_quantize(*in, qo);
    ASSERT_TRUE(plan.ok()) << plan.status().message();
    ASSERT_TRUE(write_quantized(*in, *plan, qo, bf16, [](const QuantizeProgress&) {}).ok());
  }
  ModelOptions o;
  o.n_ctx = 64;
  o.n_threads = 2;
  auto want_model = Model::load(bf16, o);
  ASSERT_TRUE(want_model.ok()) << want_model.status().message();
  o.f16_as_bf16 = true;
  auto got_model = Model::load(f16, o);
  ASSERT_TRUE(got_model.ok()) << got_model.status().message();
  const int64_t converted = (*got_model)->weights().n_f16_as_bf16;
  if (converted == 0) GTEST_SKIP() << "no BF16 kernel at this level repacks rows, so F16 matrices stay F16";
  o.f16_as_bf16 = false;
  auto exact_model = Model::load(f16, o);
  ASSERT_TRUE(exact_model.ok()) << exact_model.status().message();
  EXPECT_EQ((*exact_model)->weights().n_f16_as_bf16, 0);

  const std::vector<int32_t> prompt = {1, 17, 230, 4095, 12, 9, 31000, 5};
  const auto want = logits_over(**want_model, prompt, 4);
  const auto got = logits_over(**got_model, prompt, 4);
  const auto exact = logits_over(**exact_model, prompt, 4);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_EQ(got[i], want[i]) << "logit " << i % want.size() << " of step " << i / (*want_model)->config().n_vocab
                               << " (" << converted << " matrices converted)";
  // And the option did something: F16 kept exact answers differently.
  EXPECT_NE(exact, got) << "--f16-as-bf16 left the logits as F16's";
  std::filesystem::remove(bf16);
}

}  // namespace
}  // namespace osprey
