#include "core/trace.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace osprey {

Tracer::Tracer() : origin_(std::chrono::steady_clock::now()) { spans_.reserve(1 << 16); }

void Tracer::add(const char* name, std::chrono::steady_clock::time_point begin,
                 std::chrono::steady_clock::time_point end, int64_t layer, int64_t n_tokens) {
  using std::chrono::nanoseconds;
  spans_.push_back({name, std::chrono::duration_cast<nanoseconds>(begin - origin_).count(),
                    std::chrono::duration_cast<nanoseconds>(end - begin).count(), layer, n_tokens});
}

Status Tracer::write(const std::string& path) const {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return IoError(path + ": cannot write the trace: " + std::strerror(errno));
  std::fputs("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n", f);
  for (size_t i = 0; i < spans_.size(); ++i) {
    const Span& s = spans_[i];
    // Microseconds with nanosecond digits, as the trace format expects.
    std::fprintf(f, "%s{\"name\":\"%s\",\"ph\":\"X\",\"pid\":1,\"tid\":1,\"ts\":%.3f,\"dur\":%.3f,\"args\":{", i ? ",\n" : "",
                 s.name, static_cast<double>(s.begin_ns) / 1e3, static_cast<double>(s.dur_ns) / 1e3);
    if (s.layer >= 0) std::fprintf(f, "\"layer\":%lld,", static_cast<long long>(s.layer));
    std::fprintf(f, "\"n_tokens\":%lld}}", static_cast<long long>(s.n_tokens));
  }
  std::fputs("\n]}\n", f);
  const bool ok = std::ferror(f) == 0;
  if (std::fclose(f) != 0 || !ok) return IoError(path + ": writing the trace failed");
  return Status::Ok();
}

}  // namespace osprey
