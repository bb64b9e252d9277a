// Chrome trace recording (chrome://tracing, ui.perfetto.dev): one complete
// span ("ph":"X") per operation, with its layer and the tokens in its pass.
// Spans are recorded only while a Tracer is installed; without one a span
// costs one pointer test, and nothing allocates.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "osprey/status.h"

namespace osprey {

class Tracer {
 public:
  Tracer();
  // `name` must outlive the tracer (a string literal).
  void add(const char* name, std::chrono::steady_clock::time_point begin, std::chrono::steady_clock::time_point end,
           int64_t layer, int64_t n_tokens);
  size_t size() const { return spans_.size(); }
  // Writes the trace as JSON; fails with a message naming the file.
  Status write(const std::string& path) const;

 private:
  struct Span {
    const char* name;
    int64_t begin_ns, dur_ns, layer, n_tokens;
  };
  std::chrono::steady_clock::time_point origin_;
  std::vector<Span> spans_;
};

// Times its own lifetime into `tracer`, if there is one. layer < 0: not a
// per-layer operation.
class TraceSpan {
 public:
  TraceSpan(Tracer* tracer, const char* name, int64_t layer, int64_t n_tokens)
      : tracer_(tracer), name_(name), layer_(layer), n_tokens_(n_tokens) {
    if (tracer_ != nullptr) begin_ = std::chrono::steady_clock::now();
  }
  ~TraceSpan() {
    if (tracer_ != nullptr) tracer_->add(name_, begin_, std::chrono::steady_clock::now(), layer_, n_tokens_);
  }
  TraceSpan(const TraceSpan&) = delete;
  TraceSpan& operator=(const TraceSpan&) = delete;

 private:
  Tracer* tracer_;
  const char* name_;
  int64_t layer_, n_tokens_;
  std::chrono::steady_clock::time_point begin_;
};

}  // namespace osprey
