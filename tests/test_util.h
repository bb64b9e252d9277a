// Helpers shared by the test binaries.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace osprey::test {

// ../shared/testdata, or "" when the shared folder is absent.
std::string shared_testdata_dir();

// Path of a synthetic model, written on first use and reused afterwards
// (by this and later test processes). Thread-safe across processes: the file
// is written under a temporary name and renamed into place.
// A synthesized model, cached in the build tree; `plain`: without the successor chain (osprey synth --plain).
std::string synth_model(const std::string& preset, const std::string& type, uint64_t seed = 42, bool plain = false);

// The osprey executable.
std::string osprey_binary();

struct CommandResult {
  int exit_code = -1;
  std::string out, err;
};
// Runs a shell command line, capturing stdout and stderr.
CommandResult run_command(const std::string& command_line);
// `osprey ARGS` (ARGS as a shell reads them).
CommandResult run_osprey(const std::string& args);
// `osprey synth ARGS` through the executable that makes test models, which
// may be another build's (OSPREY_MODEL_MAKER in tests/CMakeLists.txt).
CommandResult run_synth(const std::string& args);
bool contains(const std::string& text, const std::string& needle);
// NAME in a folder of this process's own under the system's temporary
// directory, made on first use; `prefix` names the test binary's folder.
std::string temp_path(const std::string& prefix, const std::string& name);

// The whole file, or "" when it cannot be read.
std::string read_file(const std::string& path);

// A GoogleTest name from free text: characters other than letters and
// digits become '_' (names may hold nothing else).
std::string test_name(std::string text);

std::vector<float> random_floats(size_t n, uint64_t seed, float scale = 1.0f);

}  // namespace osprey::test
