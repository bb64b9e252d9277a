// libFuzzer target for the GGUF reader: any bytes must parse or be rejected
// with a message, never crash or over-read. Built with -DOSPREY_FUZZ=ON
// (clang); scripts/test.sh runs it briefly.
#include <cstddef>
#include <cstdint>

#include "formats/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = osprey::GgufFile::parse(data, size, "fuzz.gguf");
  if (f.ok()) {
    // Touch what a loader would touch.
    for (const auto& t : f->tensors()) {
      volatile uint8_t sink = t.n_bytes ? t.data[t.n_bytes - 1] : 0;
      (void)sink;
    }
    for (const auto& [k, v] : f->metadata()) (void)v.to_display();
  }
  return 0;
}
