// libFuzzer target for the safetensors header parser: any bytes must parse
// or be refused with a message, never crash, over-read or recurse without
// bound. Built with -DOSPREY_FUZZ=ON (clang); scripts/test.sh runs it briefly.
#include <cstddef>
#include <cstdint>

#include "formats/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = osprey::SafetensorsFile::parse(data, size, "fuzz.safetensors");
  if (f.ok()) {
    // Touch the first and last byte of every tensor the parser vouched for.
    for (const auto& t : f->tensors()) {
      volatile uint8_t sink = t.n_bytes ? static_cast<uint8_t>(t.data[0] ^ t.data[t.n_bytes - 1]) : 0;
      (void)sink;
    }
  }
  return 0;
}
