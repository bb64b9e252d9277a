// How every command opens the model it is given: a GGUF file, or a Hugging
// Face folder converted on the way in (with a progress bar on a terminal).
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "models/model.h"

namespace osprey::cli {

// --type: the type a Hugging Face folder's matrices are converted to as it
// loads ("" keeps them as stored).
struct FolderFlags {
  std::string type;
};
void add_folder_options(CLI::App& cmd, FolderFlags& flags);

// --device: where the forward pass runs (cpu, vulkan).
void add_device_option(CLI::App& cmd, std::string& device);

// --f16-as-bf16: F16 matrices rounded to BF16 at load (ModelOptions::f16_as_bf16).
void add_f16_as_bf16_flag(CLI::App& cmd, bool& on);

// Throws Failure naming the file or folder.
std::unique_ptr<Model> load_model(const std::string& path, const ModelOptions& options, const FolderFlags& folder = {});

}  // namespace osprey::cli
