// An importance matrix: for each weight matrix of a model, how large each of
// its input columns was over a sample text (the sum of squares and the
// number of tokens). `osprey imatrix` writes one; `osprey quantize
// --imatrix` reads it so the k-quants spend their precision on the columns
// the model actually reads.
//
// Files are GGUF as llama.cpp's llama-imatrix writes them today
// (general.type "imatrix"; per matrix `<name>.in_sum2` [n_cols, n_experts]
// and `<name>.counts` [1, n_experts], both F32), so either project's file
// works with either quantizer. The older llama.cpp `.dat` layout is read too.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "osprey/status.h"

namespace osprey {

struct ImportanceMatrix {
  struct Entry {
    int64_t n_cols = 0;
    int64_t n_experts = 1;
    std::vector<float> sum_sq;  // [n_experts][n_cols]
    std::vector<float> counts;  // [n_experts] tokens seen
  };
  std::map<std::string, Entry> entries;  // by weight tensor name
  std::vector<std::string> datasets;     // the text files it was gathered from
  int64_t chunk_count = 0, chunk_size = 0;

  static Expected<ImportanceMatrix> load(const std::string& path);
  Status save(const std::string& path) const;

  // Whether the data for `tensor` (if any) fits a matrix of rows of n_cols
  // in n_experts experts; the error names both shapes.
  Status check_shape(const std::string& tensor, int64_t n_cols, int64_t n_experts) const;
  // The mean square of each of the n_cols input columns of `tensor` for
  // `expert`: the weights of the quantizer's error. Empty when there is no
  // data for it (the tensor was not seen, or the expert was never chosen).
  std::vector<float> column_weights(const std::string& tensor, int64_t n_cols, int64_t expert) const;
};

}  // namespace osprey
