// Splits a model's reply into what OpenAI's API returns separately: the
// reasoning of a thinking model (`reasoning_content`), the answer (`content`)
// and tool calls (`tool_calls`), while it streams.
//
// The reply's format follows from the chat template the prompt was made
// with:
//   - reasoning: <think> ... </think> (Qwen3, DeepSeek-R1). When the prompt
//     itself ends inside <think> (DeepSeek-R1's templates), the reply starts
//     in the reasoning.
//   - tool calls: Hermes/Qwen <tool_call>{"name":..., "arguments":...}</tool_call>
//     (and osprey's built-in ChatML), Mistral [TOOL_CALLS][{...}, ...],
//     Llama 3.x {"name":..., "parameters":...} (alone, or after <|python_tag|>),
//     and Functionary v3.2 >>>name\n{...} segments.
// Content and reasoning stream as they come, holding back only text that may
// begin a marker; a tool call is sent once it is complete. A call to a
// function the request did not offer, or one whose JSON does not parse, stays
// in the content: nothing the model wrote is dropped.
#pragma once

#include <string>
#include <vector>

namespace osprey::server {

enum class ToolFormat { kNone, kHermes, kMistral, kLlama3, kFunctionary, kForced };

struct ReplyFormat {
  ToolFormat tools = ToolFormat::kNone;  // kForced: the whole reply is one {"name", "arguments"} call
  bool reasoning = false;                // <think> blocks are split out
  bool starts_in_reasoning = false;      // the prompt ended inside <think>
};

// The tool-call format a chat template writes, or kNone.
ToolFormat tool_format_of(const std::string& template_source);
// Whether the template knows <think> blocks, and whether `prompt` ends inside one.
ReplyFormat reasoning_format_of(const std::string& template_source, const std::string& prompt);
const char* tool_format_name(ToolFormat f);

struct ToolCall {
  std::string id;
  std::string name;
  std::string arguments;  // JSON text
};

// One piece of the reply, in order.
struct ReplyDelta {
  enum Kind { kContent, kReasoning, kToolCall } kind;
  std::string text;  // content or reasoning
  ToolCall call;     // kToolCall
  int index = 0;     // kToolCall: its place among the reply's calls
};

class ReplyParser {
 public:
  // `tools`: the names of the functions the request offers.
  ReplyParser(ReplyFormat format, std::vector<std::string> tools, bool parallel_tool_calls);
  // The deltas that `text` (the next piece of the reply) completes.
  std::vector<ReplyDelta> push(const std::string& text);
  // The rest, at the end of the reply.
  std::vector<ReplyDelta> finish();
  int tool_calls() const { return n_calls_; }

 private:
  enum class Mode { kContent, kReasoning, kCall, kHold };
  void drain(std::vector<ReplyDelta>& out, bool at_end);
  void emit_text(std::vector<ReplyDelta>& out, ReplyDelta::Kind kind, const std::string& text);
  // Parses a complete call block; false leaves it to the content.
  bool emit_calls(std::vector<ReplyDelta>& out, const std::string& block);
  bool add_call(std::vector<ReplyDelta>& out, const std::string& name, const std::string& arguments);

  ReplyFormat format_;
  std::vector<std::string> tools_;
  bool parallel_;
  Mode mode_;
  std::string buffer_;  // text not yet emitted
  bool at_start_ = true;  // nothing but whitespace emitted yet
  int n_calls_ = 0;
};

}  // namespace osprey::server
