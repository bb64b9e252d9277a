// OpenAI's request and response shapes: a request body read field by field
// into generation settings (a bad field throws BadRequest naming it), and the
// JSON of replies, stream chunks and errors.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sampling/sampler.h"
#include "server/request_fields.h"

namespace osprey::server {

struct CompletionSettings {
  SamplingParams sampling;
  std::optional<int64_t> max_tokens;
  int n = 1;
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;
  int top_logprobs = -1;  // -1: off
  bool seeded = false;
  // llama.cpp's and vLLM's extension: end-of-generation tokens are never
  // sampled, so a reply runs to max_tokens (load tests, benchmarks).
  bool ignore_eos = false;
  // Structured output: the GBNF grammar the reply must match (empty: none),
  // from response_format or the `grammar` extension, and the field it came
  // from (for errors found when it is compiled).
  std::string grammar;
  std::string grammar_param;
};

// The longest stop string accepted: matching holds back text up to this long
// and compares it on every token.
inline constexpr size_t kMaxStopBytes = 512;

// The fields shared by /v1/chat/completions and /v1/completions, and the
// fields each has of its own that shape generation. Chat takes
// logprobs:bool + top_logprobs; completions takes logprobs:int. Fields that
// ask for something osprey does not do (a JSON response_format, echo,
// suffix, best_of > 1, a forced tool choice) are refused by name rather than
// ignored.
CompletionSettings parse_settings(const Fields& body, bool chat, int32_t n_vocab);

// The "lora" field, llama-server's form: [{"id": 0, "scale": 0.5}, ...] picks
// the request's adapters by load order; one not listed runs at scale 0.
// Absent: empty (the scales the server was started with).
std::vector<float> parse_lora(const Fields& body, size_t n_adapters);

// The chat request's conversation: `messages` (checked field by field),
// `tools`, `add_generation_prompt` and `chat_template_kwargs`, as template
// variables.
struct ChatRequest {
  json messages;
  json tools;  // null when none (or tool_choice 'none')
  bool add_generation_prompt = true;
  json template_kwargs = json::object();
  // tool_choice: "auto" (the model may call), "required" (it must call one of
  // the tools), or the name of the one function it must call.
  std::string tool_choice = "auto";
  std::string forced_function;
  bool parallel_tool_calls = true;
};
ChatRequest parse_chat_request(const Fields& body);

// For tool_choice 'required' or a named function: a JSON Schema of the one
// call the reply must be, {"name": ..., "arguments": {...}}, with each
// function's parameters as the schema of its arguments. A parameters schema
// that cannot be enforced throws BadRequest naming its keyword.
json forced_call_schema(const ChatRequest& chat);

// Dumps JSON replacing any invalid UTF-8 rather than throwing.
std::string dump(const json& j);

}  // namespace osprey::server
