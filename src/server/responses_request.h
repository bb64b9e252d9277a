// POST /v1/responses, the request half: OpenAI's Responses API read field by
// field and restated as the chat-completions request it asks for, so that it
// goes through the same prompt rendering, sampling, structured output and
// tool-call path as /v1/chat/completions.
//
// osprey keeps no state between requests: `previous_response_id`,
// `background` and item references are refused by name, and the whole
// conversation comes in `input`. Only function tools exist here; other tool
// types (web search, file search, computer use) are refused by name, as are
// image, file and audio inputs.
#pragma once

#include <string>

#include "server/request_fields.h"

namespace osprey::server {

struct ResponsesRequest {
  json chat_body;  // the equivalent /v1/chat/completions body
  // Request fields the response object repeats back, as OpenAI's does.
  json echo = json::object();
};

// Throws BadRequest naming the field (by its Responses path) that is wrong.
ResponsesRequest parse_responses_request(const Fields& body);

// A BadRequest raised while handling `chat_body`, named by the Responses
// field it came from ("messages..." -> "input", "response_format" ->
// "text.format", "max_tokens" -> "max_output_tokens").
std::string responses_param(const std::string& chat_param);

}  // namespace osprey::server
