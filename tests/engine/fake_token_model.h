// A TokenModel for the generation-loop tests: it always predicts
// next(token) after each token, with a decisive logit, counts its forward
// passes and keeps a cache length that truncate() shortens.
#pragma once

#include <algorithm>
#include <functional>
#include <vector>

#include "engine/generator.h"

namespace osprey::test {

class FakeTokenModel : public TokenModel {
 public:
  FakeTokenModel(int32_t vocab, int64_t ctx, std::function<int32_t(int32_t)> next)
      : vocab_(vocab), ctx_(ctx), next_(std::move(next)) {}
  Expected<const float*> eval(const int32_t* tokens, int64_t n) override {
    OSPREY_ASSIGN_OR_RETURN(const float* rows, eval_all(tokens, n));
    return rows + (n - 1) * vocab_;
  }
  Expected<const float*> eval_all(const int32_t* tokens, int64_t n) override {
    if (past_ + n > ctx_) return OutOfRange("full");
    past_ += n;
    ++passes;
    rows_.assign(static_cast<size_t>(n * vocab_), 0.0f);
    for (int64_t i = 0; i < n; ++i) rows_[i * vocab_ + next_(tokens[i])] = 10.0f;
    return static_cast<const float*>(rows_.data());
  }
  void truncate(int64_t n_past) override { past_ = std::min(past_, n_past); }
  int64_t n_ctx() const override { return ctx_; }
  int64_t n_past() const override { return past_; }
  int32_t n_vocab() const override { return vocab_; }
  int passes = 0;

 private:
  int32_t vocab_;
  int64_t ctx_, past_ = 0;
  std::function<int32_t(int32_t)> next_;
  std::vector<float> rows_;
};

}  // namespace osprey::test
