// Session::logits in the public API: the next token's scores after the
// given ids, the same as the model's own forward pass gives, held by the
// session afterwards; bad ids and an empty list are refused and change nothing.
#include <gtest/gtest.h>

#include "models/model.h"
#include "osprey/osprey.h"
#include "test_util.h"

namespace osprey {
namespace {

TEST(SessionLogits, EqualsTheModelsForwardPassAndIsHeld) {
  const std::string path = test::synth_model("tiny", "q8_0", 42, /*plain=*/true);
  LoadOptions lo;
  lo.threads = 1;
  auto lm = LanguageModel::load(path, lo);
  ASSERT_TRUE(lm.ok()) << lm.status().message();
  auto session = (*lm)->new_session();
  ASSERT_TRUE(session.ok()) << session.status().message();

  ModelOptions mo;
  mo.n_threads = 1;
  auto model = Model::load(path, mo);
  ASSERT_TRUE(model.ok()) << model.status().message();

  const std::vector<int32_t> first = {1, 17, 5, 300, 42};
  const std::vector<int32_t> second = {7};
  for (const auto& ids : {first, second}) {
    auto got = (*session)->logits(ids);
    ASSERT_TRUE(got.ok()) << got.status().message();
    auto want = (*model)->eval(ids.data(), static_cast<int64_t>(ids.size()));
    ASSERT_TRUE(want.ok());
    ASSERT_EQ(static_cast<int64_t>(got->size()), (*lm)->vocabulary_size());
    for (size_t i = 0; i < got->size(); ++i) ASSERT_EQ((*got)[i], (*want)[i]) << "logit " << i;
  }
  EXPECT_EQ((*session)->tokens_held(), 6);

  const auto bad = (*session)->logits({3, static_cast<int32_t>((*lm)->vocabulary_size())});
  EXPECT_FALSE(bad.ok());
  EXPECT_FALSE((*session)->logits({}).ok());
  EXPECT_EQ((*session)->tokens_held(), 6);

  (*session)->reset();
  EXPECT_EQ((*session)->tokens_held(), 0);
  auto again = (*session)->logits(first);
  ASSERT_TRUE(again.ok());
}

}  // namespace
}  // namespace osprey
