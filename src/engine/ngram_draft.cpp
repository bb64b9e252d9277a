#include "engine/ngram_draft.h"

#include <algorithm>

namespace osprey {

std::vector<int32_t> NgramDrafter::propose(const std::vector<int32_t>& history, int64_t limit) {
  const int64_t want = std::min<int64_t>(length_.next(), limit);
  const int64_t n = static_cast<int64_t>(history.size());
  if (want <= 0) return {};
  for (int g = kMaxNgram; g >= kMinNgram; --g) {
    if (n <= g) continue;
    const int32_t* tail = history.data() + n - g;
    // The latest earlier occurrence: start positions s < n - g, newest first.
    for (int64_t s = n - g - 1; s >= 0; --s) {
      if (!std::equal(tail, tail + g, history.data() + s)) continue;
      const int64_t from = s + g, to = std::min(n, from + want);
      return std::vector<int32_t>(history.begin() + from, history.begin() + to);
    }
  }
  return {};
}

}  // namespace osprey
