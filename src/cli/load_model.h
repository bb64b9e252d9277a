// How every command opens the model it is given: a GGUF file, or a Hugging
// Face folder converted on the way in (with a progress bar on a terminal).
#pragma once

#include <memory>
#include <string>

#include "models/model.h"

namespace osprey::cli {

// Throws Failure naming the file or folder.
std::unique_ptr<Model> load_model(const std::string& path, const ModelOptions& options);

}  // namespace osprey::cli
