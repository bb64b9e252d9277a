#include "cli/commands.h"
#include "server/server.h"

namespace osprey::cli {

void register_serve(CLI::App& app) {
  auto o = std::make_shared<server::ServeOptions>();
  auto exit_code = std::make_shared<int>(0);
  CLI::App* cmd = app.add_subcommand("serve", "Serve a model over an OpenAI-compatible HTTP API");
  cmd->add_option("-m,--model", o->model_path, "GGUF model file")->required()->check(CLI::ExistingFile);
  cmd->add_option("--host", o->host, "Address to listen on (only this one)")->capture_default_str();
  cmd->add_option("--port", o->port, "Port to listen on (0: any free port)")->capture_default_str()->check(CLI::Range(0, 65535));
  cmd->add_option("-P,--parallel", o->parallel, "Requests generated at once (sequence slots)")
      ->capture_default_str()->check(CLI::Range(1, 256));
  cmd->add_option("-c,--ctx-size", o->ctx_size, "Context of one request in tokens (0: the model's, capped at 4096)")
      ->capture_default_str()->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
  cmd->add_flag("--full-window-cache", o->full_window_cache,
                "Sliding-window layers (Gemma, Phi-3, gpt-oss) keep every position instead of only their window: more "
                "memory, but shared prompt prefixes are reused for these models too");
  cmd->add_option("--kv-size", o->kv_size, "KV cache pool in tokens, shared by all requests (0: ctx-size x parallel)")
      ->capture_default_str()->check(CLI::Range(int64_t{0}, int64_t{1} << 26));
  cmd->add_option("--api-key", o->api_key, "Require 'Authorization: Bearer KEY' (also read from OSPREY_API_KEY)")
      ->envname("OSPREY_API_KEY");
  cmd->add_option("-t,--threads", o->n_threads, "Compute threads (0: all cores)")->capture_default_str()->check(CLI::Range(0, 1024));
  cmd->add_option("--max-queue", o->max_queue, "Requests that may wait for a slot before new ones get 429")
      ->capture_default_str()->check(CLI::Range(int64_t{0}, int64_t{100000}));
  cmd->add_option("--max-body", o->max_body_bytes, "Largest request body in bytes (413 beyond)")
      ->capture_default_str()->check(CLI::Range(size_t{1024}, size_t{1} << 30));
  cmd->add_option("--timeout", o->request_timeout_s, "Seconds a request may run before it is stopped")
      ->capture_default_str()->check(CLI::Range(1, 86400));
  cmd->add_option("--chat-template", o->chat_template_file,
                  "A Jinja chat template file to use instead of the model's tokenizer.chat_template")
      ->check(CLI::ExistingFile);
  cmd->add_option("--alias", o->model_alias, "Model name reported by /v1/models (default: the file name)");
  cmd->callback([o, exit_code] {
    *exit_code = server::serve(*o);
    if (*exit_code != 0) throw Failure{"the server could not start (see the log above)"};
  });
}

}  // namespace osprey::cli
