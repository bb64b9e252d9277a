// Compiled as part of the models layer (tests/CMakeLists.txt): headers of the
// layers below it are found. The control for include_up.cpp.
#include "kernels/ops.h"
#include "models/model.h"

int layer_probe_down() { return osprey::kernels::kMaxGroupQueries; }
