// libFuzzer target for the tokenizer.json loader: any bytes (a tokenizer.json,
// then after a NUL byte an optional tokenizer_config.json) must load or be
// refused with a message, never crash or recurse without bound; whatever
// loads must then tokenize and detokenize text without fault.
// Built with -DOSPREY_FUZZ=ON (clang); scripts/test.sh runs it briefly.
#include <cstddef>
#include <cstdint>
#include <string>

#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string all(reinterpret_cast<const char*>(data), size);
  const size_t nul = all.find('\0');
  const std::string json = all.substr(0, nul), config = nul == std::string::npos ? "" : all.substr(nul + 1);
  auto vocab = osprey::Vocab::from_tokenizer_json_text(json, config, "fuzz.json");
  if (!vocab.ok()) return 0;
  auto tok = osprey::Tokenizer::from_vocab(std::move(*vocab), "fuzz.json");
  if (!tok.ok()) return 0;
  for (const char* text : {"Hello world! 123 <s> e\xCC\x81", "\xFF\xFE  \t\n", ""}) {
    const auto ids = (*tok)->encode(text, true, true);
    (void)(*tok)->decode(ids, true);
  }
  return 0;
}
