// The second half of a completion request: the events its generation
// requests produce, turned into OpenAI's reply, either streamed as
// server-sent chunks or collected into one JSON body. Chat replies of
// thinking and tool-calling formats are split into content, reasoning and
// tool calls on the way (server/reply_parser.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/scheduler.h"
#include "server/http.h"
#include "server/reply_parser.h"
#include "server/request_fields.h"

namespace osprey {
class Tokenizer;
}

namespace osprey::server {

// What the reply looks like, fixed when the request was read.
struct ReplyShape {
  bool chat = false;
  std::string id, model, fingerprint;
  int64_t created = 0;
  int top_logprobs = -1;  // -1: no logprobs
  bool include_usage = false;  // streaming: a last chunk with the usage
  // Set when chat replies are split up (a thinking or tool-calling format).
  bool parse = false;
  ReplyFormat format;
  std::vector<std::string> tool_names;
  bool parallel_tool_calls = true;
};

using ExtraHeaders = std::vector<std::pair<std::string, std::string>>;

class CompletionReply {
 public:
  // One choice per request, in order; n_prompt counts toward the usage.
  CompletionReply(ReplyShape shape, const Tokenizer& tokenizer, std::vector<std::shared_ptr<GenerationRequest>> requests,
                  int64_t n_prompt);
  ~CompletionReply();

  // Server-sent events as each token arrives, ending with "data: [DONE]".
  // A client that goes away cancels every request.
  void stream(http::Response& res, const ExtraHeaders& headers);
  // Waits for every choice to finish, then sends one JSON body.
  void collect(http::Response& res, const ExtraHeaders& headers);

 private:
  struct Choice;
  json base(const char* object) const;
  json usage() const;
  void cancel_all();
  void record_logprobs(Choice& c, const Event& ev) const;
  json stream_logprobs(const Choice& c, const Event& ev) const;
  // Sends the chunks for one event of choice i; false when the client has gone.
  bool stream_event(http::Response& res, size_t i, const Event& ev);
  bool send_event(http::Response& res, const json& chunk);

  ReplyShape shape_;
  const Tokenizer& tokenizer_;
  std::vector<std::shared_ptr<GenerationRequest>> reqs_;
  int64_t n_prompt_;
  std::vector<Choice> choices_;
};

}  // namespace osprey::server
