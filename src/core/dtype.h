// Element types of tensors, numbered as GGUF numbers them. This table only
// knows layouts (block length and bytes per block) so that file readers can
// check sizes; the arithmetic for each type lives in src/quant/.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace osprey {

enum class DType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ2_XXS = 16,
  kIQ2_XS = 17,
  kIQ3_XXS = 18,
  kIQ1_S = 19,
  kIQ4_NL = 20,
  kIQ3_S = 21,
  kIQ2_S = 22,
  kIQ4_XS = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kIQ1_M = 29,
  kBF16 = 30,
  kTQ1_0 = 34,
  kTQ2_0 = 35,
  kMXFP4 = 39,  // OCP microscaling FP4 (gpt-oss experts)
};

struct DTypeLayout {
  DType type;
  const char* name;   // lower case, as in file names: "q4_k"
  int64_t block_len;  // elements per block
  int64_t block_bytes;
};

// nullptr for numbers GGUF does not define.
const DTypeLayout* dtype_layout(uint32_t raw);
inline const DTypeLayout* dtype_layout(DType t) { return dtype_layout(static_cast<uint32_t>(t)); }
const char* dtype_name(DType t);
std::optional<DType> dtype_from_name(std::string_view name);  // case-insensitive

// Bytes for `n` elements, or nullopt if n is not a whole number of blocks.
std::optional<uint64_t> dtype_row_bytes(DType t, uint64_t n);

}  // namespace osprey
