// Compiled as part of the models layer (tests/CMakeLists.txt): the engine
// sits above models, so its header must not be found. The build of this
// file is expected to fail with "No such file".
#include "engine/sequence_step.h"
#include "models/model.h"

int layer_probe_up() { return 0; }
