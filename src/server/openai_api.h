// OpenAI's request and response shapes: validation of a request body into
// generation settings (naming the first bad field), and the JSON of replies,
// stream chunks and errors.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sampling/sampler.h"
#include "server/scheduler.h"

namespace osprey::server {

using json = nlohmann::ordered_json;

struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // empty: null
  std::string code;   // empty: null
};
json error_body(const ApiError& e);

struct CompletionSettings {
  SamplingParams sampling;
  std::optional<int64_t> max_tokens;
  int n = 1;
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;
  int top_logprobs = -1;  // -1: off
  bool seeded = false;
};

// The fields shared by /v1/chat/completions and /v1/completions.
// `logprobs_style`: chat takes logprobs:bool + top_logprobs; completions
// takes logprobs:int.
std::optional<ApiError> parse_settings(const json& body, bool chat, int32_t n_vocab, CompletionSettings& out);

// Chat messages: array of {role, content}; roles are checked.
std::optional<ApiError> check_messages(const json& body);

// Dumps JSON replacing any invalid UTF-8 rather than throwing.
std::string dump(const json& j);

}  // namespace osprey::server
