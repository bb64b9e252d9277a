// osprey convert: a Hugging Face folder into one GGUF file, or a GGUF file
// into a Hugging Face folder.
#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "cli/progress.h"
#include "convert/gguf_to_hf.h"
#include "convert/hf_to_gguf.h"
#include "core/thread_pool.h"

namespace osprey::cli {

namespace {

struct ConvertCliOptions {
  std::string input, output, type, dtype = "bf16";
  int threads = 0;
  bool quiet = false;
};

void convert(const ConvertCliOptions& o) {
  std::error_code ec;
  const auto start = std::chrono::steady_clock::now();
  if (std::filesystem::is_directory(o.input, ec)) {
    ConvertOptions co;
    co.n_threads = o.threads > 0 ? o.threads : default_thread_count();
    if (!o.type.empty() && o.type != "auto") {
      const auto t = dtype_from_name(o.type);
      if (!t) throw Failure{"--type: unknown type '" + o.type + "'"};
      co.type = *t;
    }
    ProgressBar bar("convert", !o.quiet);
    const Status s = convert_hf_folder(o.input, o.output, co, [&](const ConvertProgress& p) {
      bar.update(static_cast<int64_t>(p.tensors_done), static_cast<int64_t>(p.tensors_total),
                 std::to_string(p.tensors_done) + "/" + std::to_string(p.tensors_total) + " tensors");
    });
    bar.finish();
    if (!s.ok()) throw Failure{s.message()};
  } else {
    auto file = GgufFile::open(o.input);
    if (!file.ok()) throw Failure{file.status().message()};
    const auto dtype = dtype_from_name(o.dtype);
    if (!dtype) throw Failure{"--dtype: unknown type '" + o.dtype + "'"};
    ExportOptions eo;
    eo.dtype = *dtype;
    if (Status s = export_hf_folder(*file, o.output, eo); !s.ok()) throw Failure{s.message()};
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("convert: wrote %s in %.1f s\n", o.output.c_str(), seconds);
}

}  // namespace

void register_convert(CLI::App& app) {
  auto o = std::make_shared<ConvertCliOptions>();
  CLI::App* cmd = app.add_subcommand(
      "convert",
      "Convert a Hugging Face model folder (config.json, *.safetensors, tokenizer.json) into one GGUF file that "
      "osprey and llama.cpp load, or a GGUF file into such a folder. Llama, Mistral, Qwen2 and Qwen3 with byte-level "
      "BPE tokenizers so far; anything else is refused by name.");
  cmd->add_option("input", o->input, "A model folder, or a GGUF file")->required()->check(CLI::ExistingPath);
  cmd->add_option("-o,--output", o->output, "The GGUF file to write (or, from a GGUF file, the folder)")->required();
  cmd->add_option("--type", o->type,
                  "Folder to GGUF: the matrices' type (f32, f16, bf16, q8_0, q4_0, ...; default: as stored). For the "
                  "k-quant mixes, convert then run osprey quantize");
  cmd->add_option("--dtype", o->dtype, "GGUF to folder: the safetensors dtype (f32, f16, bf16)")->capture_default_str();
  cmd->add_option("-t,--threads", o->threads, "Threads (default: one per core)")->check(CLI::Range(0, 1024));
  cmd->add_flag("-q,--quiet", o->quiet, "No progress bar");
  cmd->callback([o] { convert(*o); });
}

}  // namespace osprey::cli
