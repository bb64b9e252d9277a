#include <cctype>
#include <cmath>

#include "cli/commands.h"
#include "cli/kv_cache_flags.h"
#include "cli/speculation_flags.h"
#include "cli/load_model.h"
#include "cli/lora_flags.h"
#include "server/server.h"

namespace osprey::cli {

namespace {

struct KvSize {
  int64_t tokens = 0, bytes = 0;  // one of them, or neither (0)
};

// "8192" tokens, or memory: "2GiB", "512MiB", "1.5GB" (binary or decimal units).
KvSize parse_kv_size(const std::string& text) {
  const auto bad = [&](const std::string& why) {
    return Failure{"--kv-size: '" + text + "' " + why +
                   " (give tokens, as 8192, or memory with a unit, as 2GiB or 512MiB)"};
  };
  size_t end = 0;
  double value = 0;
  try {
    value = std::stod(text, &end);
  } catch (const std::exception&) {
    throw bad("is not a size");
  }
  std::string unit = text.substr(end);
  for (char& ch : unit) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (!(value >= 0) || !std::isfinite(value)) throw bad("is not a size");
  if (unit.empty()) {
    if (value != std::floor(value) || value > double(int64_t{1} << 26)) throw bad("is not a whole number of tokens up to 67108864");
    return {static_cast<int64_t>(value), 0};
  }
  static const std::pair<const char*, double> kUnits[] = {
      {"b", 1},          {"kib", 1024.0},   {"mib", 1048576.0}, {"gib", 1073741824.0}, {"tib", 1099511627776.0},
      {"kb", 1e3},       {"mb", 1e6},       {"gb", 1e9},        {"tb", 1e12}};
  for (const auto& [name, scale] : kUnits)
    if (unit == name) {
      const double bytes = value * scale;
      if (bytes > 1099511627776.0 * 16) throw bad("is more memory than any machine osprey runs on");
      if (bytes < 1) throw bad("is no memory at all");
      return {0, static_cast<int64_t>(bytes)};
    }
  throw bad("has an unknown unit '" + unit + "'");
}

}  // namespace

void register_serve(CLI::App& app) {
  auto o = std::make_shared<server::ServeOptions>();
  auto exit_code = std::make_shared<int>(0);
  CLI::App* cmd = app.add_subcommand("serve", "Serve a model over an OpenAI-compatible HTTP API");
  cmd->add_option("-m,--model", o->model_path, "GGUF model file, or a Hugging Face model folder (converted as it loads)")->required()->check(CLI::ExistingPath);
  // Given twice, the last wins: a container image's entry point sets them and
  // `podman run IMAGE --port 9000` overrides.
  cmd->add_option("--host", o->host, "Address to listen on (only this one)")
      ->capture_default_str()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  cmd->add_option("--port", o->port, "Port to listen on (0: any free port)")
      ->capture_default_str()->check(CLI::Range(0, 65535))->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  cmd->add_option("-P,--parallel", o->parallel, "Requests generated at once (sequence slots)")
      ->capture_default_str()->check(CLI::Range(1, 256));
  cmd->add_option("-c,--ctx-size", o->ctx_size, "Context of one request in tokens (0: the model's, capped at 4096)")
      ->capture_default_str()->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
  cmd->add_flag("--full-window-cache", o->full_window_cache,
                "Sliding-window layers (Gemma, Phi-3, gpt-oss) keep every position instead of only their window: more "
                "memory, but shared prompt prefixes are reused for these models too");
  auto kv_size = std::make_shared<std::string>("0");
  cmd->add_option("--kv-size", *kv_size,
                  "KV cache pool shared by all requests: in tokens (8192), or as memory (2GiB, 512MiB), which a smaller "
                  "--cache-type fills with more tokens (0: ctx-size x parallel)")
      ->capture_default_str();
  auto kv_cache = std::make_shared<KvCacheFlags>();
  add_kv_cache_options(*cmd, *kv_cache);
  auto folder = std::make_shared<FolderFlags>();
  add_folder_options(*cmd, *folder);
  auto lora = std::make_shared<std::vector<std::string>>();
  add_lora_options(*cmd, *lora);
  cmd->add_option("--api-key", o->api_key, "Require 'Authorization: Bearer KEY' (also read from OSPREY_API_KEY)")
      ->envname("OSPREY_API_KEY");
  cmd->add_option("-t,--threads", o->n_threads, "Compute threads (0: all cores)")->capture_default_str()->check(CLI::Range(0, 1024));
  add_device_option(*cmd, o->device);
  add_f16_as_bf16_flag(*cmd, o->f16_as_bf16);
  cmd->add_option("--max-queue", o->max_queue, "Requests that may wait for a slot before new ones get 429")
      ->capture_default_str()->check(CLI::Range(int64_t{0}, int64_t{100000}));
  cmd->add_option("--max-body", o->max_body_bytes, "Largest request body in bytes (413 beyond)")
      ->capture_default_str()->check(CLI::Range(size_t{1024}, size_t{1} << 30));
  cmd->add_option("--timeout", o->request_timeout_s, "Seconds a request may run before it is stopped")
      ->capture_default_str()->check(CLI::Range(1, 86400));
  cmd->add_option("--shutdown-delay", o->shutdown_delay_s,
                  "After SIGTERM, seconds to go on serving while /ready answers 503, so that load balancers stop "
                  "sending requests before the listener closes (Kubernetes' preStop sleep does the same)")
      ->capture_default_str()->check(CLI::Range(0, 3600));
  cmd->add_option("--drain-timeout", o->drain_timeout_s,
                  "Then, seconds that running and queued requests have to finish before they are cut off")
      ->capture_default_str()->check(CLI::Range(0, 86400));
  cmd->add_flag("--public-metrics", o->public_metrics,
                "Serve /metrics without the API key, for a Prometheus scraper (it shows counts, never text)");
  cmd->add_flag("--matryoshka", o->matryoshka,
                "The model was trained so that its embeddings' leading dimensions stand alone (Matryoshka): "
                "/v1/embeddings then accepts 'dimensions' below the model's own");
  cmd->add_flag_callback("--no-web-page", [o] { o->web_page = false; },
                "Do not serve the chat page at / (the API is unchanged)");
  cmd->add_option("--prefix-key-blocks", o->prefix_key_blocks,
                  "KV blocks (16 tokens each) hashed into the X-Osprey-Prefix-Key routing header that a proxy uses "
                  "for prefix affinity")
      ->capture_default_str()->check(CLI::Range(int64_t{1}, int64_t{4096}));
  auto spec = std::make_shared<SpeculationFlags>();
  add_speculation_options(*cmd, *spec);
  cmd->add_option("--chat-template", o->chat_template_file,
                  "A Jinja chat template file to use instead of the model's tokenizer.chat_template")
      ->check(CLI::ExistingFile);
  cmd->add_option("--alias", o->model_alias, "Model name reported by /v1/models (default: the file name)");
  cmd->callback([o, exit_code, kv_size, kv_cache, folder, spec, lora] {
    o->lora = parse_lora_flags(*lora);
    o->speculation = spec->options();
    o->draft_model_path = spec->draft_model;
    if (!folder->type.empty()) {
      o->folder_type = dtype_from_name(folder->type);
      if (!o->folder_type) throw Failure{"--type: unknown type '" + folder->type + "'"};
    }
    ModelOptions types;
    apply_kv_cache_flags(*kv_cache, types);
    o->cache_type_k = types.cache_type_k;
    o->cache_type_v = types.cache_type_v;
    const KvSize size = parse_kv_size(*kv_size);
    o->kv_size = size.tokens;
    o->kv_bytes = size.bytes;
    *exit_code = server::serve(*o);
    if (*exit_code != 0) throw Failure{"the server could not start (see the log above)"};
  });
}

}  // namespace osprey::cli
