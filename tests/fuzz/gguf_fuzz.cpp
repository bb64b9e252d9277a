// libFuzzer target for the GGUF reader and the model loader: any bytes must
// parse or be rejected with a message, never crash or over-read, and a file
// that parses must load as a model of its family or be refused by name (a
// missing or misshapen tensor, a bad hyperparameter, an unknown family).
// Built with -DOSPREY_FUZZ=ON (clang); scripts/test.sh runs it briefly,
// seeded with the tests' synthesized models of every family.
#include <cstddef>
#include <cstdint>

#include "formats/gguf.h"
#include "models/model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = osprey::GgufFile::parse(data, size, "fuzz.gguf");
  if (f.ok()) {
    // Touch what a loader would touch.
    for (const auto& t : f->tensors()) {
      volatile uint8_t sink = t.n_bytes ? t.data[t.n_bytes - 1] : 0;
      (void)sink;
    }
    for (const auto& [k, v] : f->metadata()) (void)v.to_display();
    osprey::ModelOptions o;
    o.n_threads = 1;
    o.n_ctx = 32;
    o.n_batch = 8;
    auto m = osprey::Model::from_file(std::move(f).value(), o);
    if (m.ok()) {
      const int32_t tokens[2] = {0, 1};
      (void)(*m)->eval(tokens, (*m)->config().n_vocab > 1 ? 2 : 1);
    }
  }
  return 0;
}
