#include "cli/load_model.h"

#include "cli/commands.h"
#include "cli/progress.h"
#include "convert/hf_to_gguf.h"
#include "backends/device.h"
#include "core/thread_pool.h"

namespace osprey::cli {

void add_folder_options(CLI::App& cmd, FolderFlags& flags) {
  cmd.add_option("--type", flags.type,
                 "With a Hugging Face folder: convert its matrices to this type as it loads (q8_0, q4_0, q4_k, f16, "
                 "...; default: as stored)");
}

void add_device_option(CLI::App& cmd, std::string& device) {
  cmd.add_option("--device", device,
                 "Where the forward pass runs: cpu (the CPU kernels), or vulkan (the first Vulkan device; it holds the "
                 "weights and KV cache, and runs the llama, mistral, qwen2, qwen3, gemma2, gemma3 and phi3 families and "
                 "the mixtures of experts Mixtral, qwen3moe, olmoe and gpt-oss, in f32, f16, bf16, q8_0, q4_0, q4_1, "
                 "q5_0, q5_1, q4_k, q5_k, q6_k and mxfp4); webgpu runs in the WebAssembly build, in a browser")
      ->capture_default_str()
      ->check(CLI::IsMember(backends::device_names()));
}

void add_f16_as_bf16_flag(CLI::App& cmd, bool& on) {
  cmd.add_flag("--f16-as-bf16", on,
               "Round F16 weight matrices to BF16 once, at load, and run them on the BF16 kernels: on CPUs with "
               "AVX512_BF16 (Zen 4 and later, Sapphire Rapids) prompts run about twice as fast, and each weight "
               "keeps 8 of F16's 11 significant bits. Off by default: F16 stays exact. CPU only");
}

std::unique_ptr<Model> load_model(const std::string& path, const ModelOptions& options, const FolderFlags& folder) {
  ConvertOptions co;
  co.n_threads = options.n_threads > 0 ? options.n_threads : default_thread_count();
  if (!folder.type.empty()) {
    const auto t = dtype_from_name(folder.type);
    if (!t) throw Failure{"--type: unknown type '" + folder.type + "'"};
    co.type = *t;
  }
  ProgressBar bar("load", true);
  auto file = open_model_file(path, co, [&](const ConvertProgress& p) {
    bar.update(static_cast<int64_t>(p.tensors_done), static_cast<int64_t>(p.tensors_total),
               std::to_string(p.tensors_done) + "/" + std::to_string(p.tensors_total) + " tensors converted");
  });
  bar.finish();
  if (!file.ok()) throw Failure{file.status().message()};
  auto model = Model::from_file(std::move(*file), options);
  if (!model.ok()) throw Failure{model.status().message()};
  return std::move(*model);
}

}  // namespace osprey::cli
