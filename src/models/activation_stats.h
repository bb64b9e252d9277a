// What `osprey imatrix` gathers: for each weight matrix, the sum over the
// tokens that went through it of each input column's square. A column whose
// inputs are large matters more to the product than one whose inputs are
// near zero, so a quantizer that knows these sums spends its precision
// where the model reads it (the "importance matrix" of llama.cpp's
// quantizer).
//
// Filled between kernels on the thread that runs the forward pass; experts
// of a mixture keep one set of sums each.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace osprey {

class ActivationStats {
 public:
  struct Entry {
    int64_t n_cols = 0;
    int64_t n_experts = 1;
    std::vector<double> sum_sq;  // [n_experts][n_cols]
    std::vector<int64_t> count;  // tokens seen, per expert
  };

  // n_rows input rows of n_cols each, fed to `tensor` (expert `expert` of
  // n_experts for a stacked-experts tensor).
  void add(const std::string& tensor, const float* rows, int64_t n_rows, int64_t n_cols, int64_t expert = 0,
           int64_t n_experts = 1);
  // Adds one row at a time, for inputs scattered in memory (a mixture's slots).
  void add_row(const std::string& tensor, const float* row, int64_t n_cols, int64_t expert, int64_t n_experts) {
    add(tensor, row, 1, n_cols, expert, n_experts);
  }

  const std::map<std::string, Entry>& entries() const { return entries_; }
  std::map<std::string, Entry>& entries() { return entries_; }

 private:
  std::map<std::string, Entry> entries_;
};

}  // namespace osprey
