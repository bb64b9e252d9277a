// The reference level: the scalar kernels every other level is tested
// against (ops.h), and each weight format's own dot product (quant/). It has
// an answer for every question, so the chain always ends here.
#pragma once

#include "kernels/kernel_table.h"

namespace osprey::kernels::ref {

// This level's table (table_ref.cpp).
const KernelTable& table();

}  // namespace osprey::kernels::ref
