#include "core/median.h"

#include <gtest/gtest.h>

namespace osprey {
namespace {

TEST(Median, MiddleValueOrMeanOfTheMiddleTwoInAnyOrder) {
  EXPECT_EQ(median({7.0}), 7.0);
  EXPECT_EQ(median({3.0, 1.0, 2.0}), 2.0);
  EXPECT_EQ(median({40.0, 10.0, 30.0, 20.0}), 25.0);
  EXPECT_EQ(median({5.0, 5.0, 1.0, 9.0, 5.0}), 5.0);
  EXPECT_EQ(median({}), 0.0);
}

}  // namespace
}  // namespace osprey
