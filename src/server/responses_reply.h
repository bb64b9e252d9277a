// POST /v1/responses, the reply half: one generation's events turned into a
// Response object (output items: reasoning, a message, function calls), sent
// whole or streamed as OpenAI's typed events (response.created,
// response.output_item.added, response.output_text.delta, ...,
// response.completed). Both ways build the output through the same
// ResponseOutput, so a streamed reply adds up to the one sent whole.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "engine/scheduler.h"
#include "server/completion_reply.h"
#include "server/http.h"
#include "server/reply_parser.h"

namespace osprey {
class Tokenizer;
}

namespace osprey::server {

// The output items of one response as the reply's pieces arrive; each change
// is also reported as the event that streaming sends.
class ResponseOutput {
 public:
  using Emit = std::function<void(const std::string& type, json event)>;
  explicit ResponseOutput(Emit emit) : emit_(std::move(emit)) {}

  void add(const ReplyDelta& d);
  // Closes the open item; `complete` false marks it incomplete (cut at max_output_tokens).
  void finish(bool complete);
  const json& items() const { return items_; }
  std::string reasoning_text() const;

 private:
  enum class Open { kNone, kMessage, kReasoning };
  void open(Open kind);
  void close(const char* status);

  Emit emit_;
  json items_ = json::array();
  Open open_ = Open::kNone;
};

class ResponsesReply {
 public:
  // `echo`: the request fields the response repeats (ResponsesRequest::echo).
  ResponsesReply(ReplyShape shape, json echo, const Tokenizer& tokenizer, std::shared_ptr<GenerationRequest> request,
                 int64_t n_prompt);
  void stream(http::Response& res, const ExtraHeaders& headers);
  void collect(http::Response& res, const ExtraHeaders& headers);

 private:
  // The Response object as it stands; `status` in_progress, completed, incomplete or failed.
  json response(const std::string& status, const json& output) const;
  json usage(const ResponseOutput& out) const;
  // Runs the generation into `out`; returns the finish reason, or nullopt when
  // the client went away (then the request is cancelled). An error sets `error`.
  std::optional<std::string> run(ResponseOutput& out, http::Response& res, std::string& error);

  ReplyShape shape_;
  json echo_;
  const Tokenizer& tokenizer_;
  std::shared_ptr<GenerationRequest> req_;
  int64_t n_prompt_;
  bool client_gone_ = false;  // a streamed write failed: generation stops at the next token
};

}  // namespace osprey::server
