#include "test_util.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/synth_format.h"

#if defined(__EMSCRIPTEN__)
#include <emscripten.h>
// The WebAssembly test binaries run under Node, whose C library has no
// system(): the command goes to a shell through Node's child_process
// (the files it writes are the host's, which NODERAWFS reads).
EM_JS(int, node_shell, (const char* command), {
  const r = require('child_process').spawnSync('sh', ['-c', UTF8ToString(command)], {stdio: 'inherit'});
  return r.status === null ? 128 + 9 : r.status;
});
#endif

namespace osprey::test {

std::string shared_testdata_dir() {
  const std::string dir = std::string(OSPREY_SHARED_DIR) + "/testdata";
  return std::filesystem::is_directory(dir) ? dir : std::string();
}

std::string synth_model(const std::string& preset, const std::string& type, uint64_t seed, bool plain) {
  const std::string dir = OSPREY_TEST_MODELS_DIR;
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/" + preset + "-" + type + "-" + std::to_string(seed) + (plain ? "-plain" : "") +
                           "-v" + std::to_string(cli::kSynthFormatVersion) + ".gguf";
  if (std::filesystem::exists(path)) return path;
  // Through the executable, as a user would make it, so that the tests link
  // only the layers they exercise.
  const std::string tmp = path + ".tmp" + std::to_string(::getpid());
  const CommandResult r = run_synth("--preset " + preset + " --type " + type + " --seed " + std::to_string(seed) +
                                     (plain ? " --plain" : "") + " -o '" + tmp + "'");
  if (r.exit_code != 0) {
    std::fprintf(stderr, "synth failed (exit %d): %s\n", r.exit_code, r.err.c_str());
    std::filesystem::remove(tmp);
    return {};
  }
  std::filesystem::rename(tmp, path);
  return path;
}

std::string osprey_binary() { return OSPREY_BINARY; }

CommandResult run_osprey(const std::string& args) { return run_command(osprey_binary() + " " + args); }

CommandResult run_synth(const std::string& args) { return run_command(std::string(OSPREY_MODEL_MAKER) + " synth " + args); }

bool contains(const std::string& text, const std::string& needle) { return text.find(needle) != std::string::npos; }

std::string temp_path(const std::string& prefix, const std::string& name) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / (prefix + "_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

CommandResult run_command(const std::string& command_line) {
  char out_tmpl[] = "/tmp/osprey-test-out-XXXXXX";
  char err_tmpl[] = "/tmp/osprey-test-err-XXXXXX";
  const int out_fd = mkstemp(out_tmpl), err_fd = mkstemp(err_tmpl);
  ::close(out_fd);
  ::close(err_fd);
  const std::string full = command_line + " >" + out_tmpl + " 2>" + err_tmpl + " </dev/null";
  CommandResult r;
#if defined(__EMSCRIPTEN__)
  r.exit_code = node_shell(full.c_str());
#else
  const int status = std::system(full.c_str());
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
#endif
  r.out = read_file(out_tmpl);
  r.err = read_file(err_tmpl);
  std::remove(out_tmpl);
  std::remove(err_tmpl);
  return r;
}

std::string test_name(std::string text) {
  for (char& c : text)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return text;
}

std::vector<float> random_floats(size_t n, uint64_t seed, float scale) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

}  // namespace osprey::test
