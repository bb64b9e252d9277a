#include "models/activation_stats.h"

namespace osprey {

void ActivationStats::add(const std::string& tensor, const float* rows, int64_t n_rows, int64_t n_cols,
                          int64_t expert, int64_t n_experts) {
  Entry& e = entries_[tensor];
  if (e.sum_sq.empty()) {
    e.n_cols = n_cols;
    e.n_experts = n_experts;
    e.sum_sq.assign(static_cast<size_t>(n_cols * n_experts), 0.0);
    e.count.assign(static_cast<size_t>(n_experts), 0);
  }
  double* sums = e.sum_sq.data() + expert * n_cols;
  for (int64_t r = 0; r < n_rows; ++r) {
    const float* x = rows + r * n_cols;
    for (int64_t j = 0; j < n_cols; ++j) sums[j] += static_cast<double>(x[j]) * x[j];
  }
  e.count[static_cast<size_t>(expert)] += n_rows;
}

}  // namespace osprey
