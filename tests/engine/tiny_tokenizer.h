// The vocabulary of the synthetic "tiny" model (SentencePiece, 512 tokens),
// which the engine's tests turn tokens into text with.
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "formats/gguf.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace osprey::test {

inline std::shared_ptr<Tokenizer> tiny_tokenizer() {
  auto f = GgufFile::open(synth_model("tiny", "q8_0"));
  EXPECT_TRUE(f.ok());
  if (!f.ok()) return nullptr;
  auto t = Tokenizer::from_gguf(*f);
  EXPECT_TRUE(t.ok());
  return t.ok() ? *t : nullptr;
}

}  // namespace osprey::test
