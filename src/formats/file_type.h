// general.file_type: the number llama.cpp's quantizer writes to say what most
// of a file's matrices are stored as (its LLAMA_FTYPE_* values, which are
// part of the file format other tools read). Only shown and written: osprey
// goes by each tensor's own type.
#pragma once

#include <cstdint>
#include <optional>

#include "core/dtype.h"

namespace osprey {

// "Q4_K_M" for 15; nullptr for numbers that name nothing.
const char* file_type_name(int64_t file_type);

// The number for a file whose matrices are all of type t. The k-quants map to
// the "_S" mixes, the closest llama.cpp has to a single type.
std::optional<int64_t> file_type_of(DType t);

}  // namespace osprey
