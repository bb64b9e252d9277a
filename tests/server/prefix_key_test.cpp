#include "server/prefix_key.h"

#include <gtest/gtest.h>

#include <numeric>
#include <string>
#include <vector>

namespace osprey::server {
namespace {

std::vector<int32_t> ids(int n, int32_t start = 100) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), start);
  return v;
}

TEST(PrefixKey, SharedFirstBlocksGiveOneKey) {
  // Two prompts equal in their first 4 blocks of 16, different after: one key,
  // which is what sends both to the replica that cached those blocks.
  std::vector<int32_t> a = ids(100), b = ids(100);
  b[80] = 7;
  b.resize(90);
  EXPECT_EQ(prefix_key(a, 16, 4), prefix_key(b, 16, 4));
  EXPECT_EQ(prefix_key(a, 16, 4).size(), 17u);
  EXPECT_EQ(prefix_key(a, 16, 4)[0], 'p');
}

TEST(PrefixKey, ADifferenceInsideTheHashedBlocksChangesIt) {
  std::vector<int32_t> a = ids(100), b = ids(100);
  b[63] = 7;  // the last position of the fourth block
  EXPECT_NE(prefix_key(a, 16, 4), prefix_key(b, 16, 4));
  EXPECT_EQ(prefix_key(a, 16, 3), prefix_key(b, 16, 3));
}

TEST(PrefixKey, OnlyWholeBlocksCount) {
  // A conversation that grows by a partial block keeps its key.
  EXPECT_EQ(prefix_key(ids(40), 16, 4), prefix_key(ids(47), 16, 4));
  EXPECT_NE(prefix_key(ids(40), 16, 4), prefix_key(ids(48), 16, 4));
  // Shorter than one block: the whole prompt, so short prompts still spread.
  EXPECT_NE(prefix_key(ids(5), 16, 4), prefix_key(ids(6), 16, 4));
  EXPECT_EQ(prefix_key(ids(0), 16, 4), prefix_key(std::vector<int32_t>{}, 16, 4));
}

TEST(PrefixKey, TokenIdsAreHashedWhole) {
  // 256 and 1 share a low byte: the key must still tell them apart.
  EXPECT_NE(prefix_key(std::vector<int32_t>{256}, 16, 4), prefix_key(std::vector<int32_t>{1}, 16, 4));
}

TEST(ClientPrefixKey, AcceptsWhatAProxyCanCarry) {
  const std::string ok = "session-7_a.b:c";
  EXPECT_EQ(client_prefix_key(&ok), ok);
  const std::string longest(128, 'k');
  EXPECT_EQ(client_prefix_key(&longest), longest);
}

TEST(ClientPrefixKey, IgnoresAnythingElse) {
  EXPECT_EQ(client_prefix_key(nullptr), std::nullopt);
  for (const std::string& bad : {std::string(), std::string(129, 'k'), std::string("a b"), std::string("a\r\nX: y"),
                                std::string("caf\xc3\xa9"), std::string("a/b"), std::string("a\0b", 3)})
    EXPECT_EQ(client_prefix_key(&bad), std::nullopt) << bad;
}

}  // namespace
}  // namespace osprey::server
