// The tensors of a model, listed once per family (models/families/*.cpp).
// The one list drives everything that needs to know them: binding by name
// with shape checks, which matrices are repacked, scratch sizing, the bytes
// a token reads (bench) and the memory estimate (inspect). A fused tensor
// (Phi-3's attn_qkv, an ffn_up that holds gate and up) is listed once, with
// the row ranges it is split into; each part binds as a view, with no copy.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "formats/gguf.h"
#include "kernels/matmul.h"

namespace osprey {

struct TensorSpec {
  std::string name;
  std::vector<int64_t> dims;  // as GGUF stores them: {n}, {n_in, n_out} or {n_in, n_out, n_expert}
  bool optional = false;
  // A matrix: bound whole to `matrix`, or split into row-range `parts`.
  kernels::WeightMatrix* matrix = nullptr;
  struct Part {
    int64_t n_rows;
    kernels::WeightMatrix* dst;
  };
  std::vector<Part> parts;
  bool repackable = true;  // false: rows are only looked up (an untied embedding)
  // A vector of floats, converted from whatever type the file stores.
  std::vector<float>* vector = nullptr;
  // The share of its rows one token reads: 1, or for stacked experts the
  // active ones' (n_expert_used / n_expert).
  double active = 1.0;

  bool matrix_kind = false;  // a matrix (whole or in parts), as listed; stays true after binding clears the pointers

  // Filled in by binding.
  kernels::WeightMatrix whole;  // the matrix as stored (also the parent of parts)
  bool present = false;

  bool is_matrix() const { return matrix_kind; }
};

class TensorList {
 public:
  // `file` answers has(); null when only planning (every optional tensor is then assumed absent).
  explicit TensorList(const GgufFile* file) : file_(file) {}

  bool has(const std::string& name) const { return file_ != nullptr && file_->find_tensor(name) != nullptr; }

  void matrix(const std::string& name, int64_t n_in, int64_t n_out, kernels::WeightMatrix* dst, bool optional = false,
              bool repackable = true) {
    TensorSpec s;
    s.name = name;
    s.dims = {n_in, n_out};
    s.matrix = dst;
    s.matrix_kind = true;
    s.optional = optional;
    s.repackable = repackable;
    specs_.push_back(std::move(s));
  }
  // One stored matrix whose rows are several: parts in order, their row counts summing to the whole.
  void fused(const std::string& name, int64_t n_in, std::vector<TensorSpec::Part> parts) {
    TensorSpec s;
    s.name = name;
    int64_t rows = 0;
    for (const auto& p : parts) rows += p.n_rows;
    s.dims = {n_in, rows};
    s.parts = std::move(parts);
    s.matrix_kind = true;
    specs_.push_back(std::move(s));
  }
  // Stacked experts, GGUF dims {n_in, rows, n_expert}: expert e's rows bind
  // as dst[e], a view.
  void experts(const std::string& name, int64_t n_in, int64_t rows, int64_t n_expert, int64_t n_used,
               std::vector<kernels::WeightMatrix>* dst) {
    dst->resize(n_expert);
    TensorSpec s;
    s.name = name;
    s.dims = {n_in, rows, n_expert};
    s.matrix_kind = true;
    for (int64_t e = 0; e < n_expert; ++e) s.parts.push_back({rows, &(*dst)[e]});
    s.active = static_cast<double>(n_used) / static_cast<double>(n_expert);
    specs_.push_back(std::move(s));
  }
  void vector(const std::string& name, int64_t n, std::vector<float>* dst, bool optional = false) {
    vector(name, std::vector<int64_t>{n}, dst, optional);
  }
  // Floats of any shape, read as one flat vector (a bias per expert: {n, n_expert}).
  void vector(const std::string& name, std::vector<int64_t> dims, std::vector<float>* dst, bool optional = false) {
    TensorSpec s;
    s.name = name;
    s.dims = std::move(dims);
    s.vector = dst;
    s.optional = optional;
    specs_.push_back(std::move(s));
  }

  std::vector<TensorSpec>& specs() { return specs_; }
  const std::vector<TensorSpec>& specs() const { return specs_; }

 private:
  const GgufFile* file_;
  std::vector<TensorSpec> specs_;
};

}  // namespace osprey
