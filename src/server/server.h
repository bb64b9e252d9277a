// `osprey serve`: the OpenAI-compatible HTTP API over the scheduler.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>
#include <string>

#include "core/dtype.h"
#include "engine/drafter.h"
#include "models/lora.h"

namespace osprey::server {

struct ServeOptions {
  std::string model_path;
  std::string model_alias;  // name reported by /v1/models; default: the file name
  std::string chat_template_file;  // a .jinja template instead of the model's; empty: the model's
  std::string host = "127.0.0.1";
  int port = 8080;
  int parallel = 4;        // sequences generated at once
  int64_t ctx_size = 0;    // per request; 0: the model's, capped at 4096
  int64_t kv_size = 0;     // KV pool in tokens; 0: ctx_size * parallel (or kv_bytes)
  int64_t kv_bytes = 0;    // KV pool in bytes instead of tokens (--kv-size 2GiB); 0: kv_size
  DType cache_type_k = DType::kF16, cache_type_v = DType::kF16;
  std::optional<DType> folder_type;  // a Hugging Face folder's matrices converted to this as it loads
  bool full_window_cache = false;  // sliding-window layers keep every position (so their prompts can be reused)
  std::string api_key;     // empty: no key needed
  int n_threads = 0;
  std::string device = "cpu";  // where the forward pass runs (ModelOptions::device)
  bool f16_as_bf16 = false;    // F16 matrices rounded to BF16 at load (ModelOptions::f16_as_bf16)
  int64_t max_queue = 64;
  size_t max_body_bytes = 8 << 20;
  int request_timeout_s = 600;  // whole generation
  // After SIGTERM: seconds to go on serving while /ready answers 503, so that
  // load balancers stop sending here before the listener closes.
  int shutdown_delay_s = 0;
  // Then: seconds running and queued requests have to finish before they are cut.
  int drain_timeout_s = 60;
  int64_t prefix_key_blocks = 4;  // KV blocks hashed into the X-Osprey-Prefix-Key routing key
  // /metrics answers without the API key, for a Prometheus scraper that has
  // no way to send it; the counters reveal no prompt or output.
  bool public_metrics = false;
  SpeculationOptions speculation;  // applied to every request
  std::string draft_model_path;    // --draft-model: loaded with the model, drafts for every request
  bool web_page = true;  // the chat page at / (it asks for the API key itself)
  bool matryoshka = false;  // /v1/embeddings may cut vectors short with `dimensions`
  // --lora: adapters loaded with the model, at these scales unless a
  // request's "lora" field chooses its own.
  std::vector<LoraSpec> lora;
};

// Serves until SIGTERM or SIGINT, then drains: /ready answers 503 at once,
// requests are still served for `shutdown_delay_s`, then the listener closes
// and every request already accepted (running or queued) finishes within
// `drain_timeout_s`; returns 0. A second signal cuts the drain short.
// Returns 1 if it cannot start.
int serve(const ServeOptions& options);

}  // namespace osprey::server
