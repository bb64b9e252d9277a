#include "server/completion_reply.h"

#include <chrono>

#include "server/openai_api.h"
#include "tokenizer/tokenizer.h"

namespace osprey::server {

struct CompletionReply::Choice {
  std::string text;
  std::string finish = "length";
  json logprobs_content = json::array();  // chat
  json tokens = json::array(), token_logprobs = json::array(), top = json::array(), offsets = json::array();  // completions
  bool done = false;
  // Chat replies of thinking or tool-calling formats are split up.
  std::unique_ptr<ReplyParser> parser;
  std::string reasoning;
  json tool_calls = json::array();  // non-streaming replies
};

namespace {

// A tool call as OpenAI streams it: the name first, then the arguments.
std::vector<json> call_deltas(const ReplyDelta& d) {
  return std::vector<json>{
      json{{"tool_calls", json::array({json{{"index", d.index}, {"id", d.call.id}, {"type", "function"},
                                            {"function", json{{"name", d.call.name}, {"arguments", ""}}}}})}},
      json{{"tool_calls", json::array({json{{"index", d.index}, {"function", json{{"arguments", d.call.arguments}}}}})}}};
}

// A reply that made tool calls and then stopped finishes as tool_calls.
std::string finish_reason(const ReplyParser* parser, const std::string& reason) {
  return parser != nullptr && parser->tool_calls() > 0 && reason == "stop" ? std::string("tool_calls") : reason;
}

}  // namespace

CompletionReply::CompletionReply(ReplyShape shape, const Tokenizer& tokenizer,
                                 std::vector<std::shared_ptr<GenerationRequest>> requests, int64_t n_prompt)
    : shape_(std::move(shape)), tokenizer_(tokenizer), reqs_(std::move(requests)), n_prompt_(n_prompt),
      choices_(reqs_.size()) {
  if (shape_.parse)
    for (auto& c : choices_)
      c.parser = std::make_unique<ReplyParser>(shape_.format, shape_.tool_names, shape_.parallel_tool_calls);
}

CompletionReply::~CompletionReply() = default;

json CompletionReply::base(const char* object) const {
  return json{{"id", shape_.id}, {"object", object}, {"created", shape_.created}, {"model", shape_.model},
              {"system_fingerprint", shape_.fingerprint}};
}

json CompletionReply::usage() const {
  int64_t gen = 0;
  for (const auto& r : reqs_) gen += r->n_generated;
  return json{{"prompt_tokens", n_prompt_}, {"completion_tokens", gen}, {"total_tokens", n_prompt_ + gen},
              {"prompt_tokens_details", json{{"cached_tokens", reqs_.empty() ? int64_t{0} : reqs_[0]->n_cached.load()}}}};
}

void CompletionReply::cancel_all() {
  for (auto& r : reqs_) r->cancelled = true;
}

// The token's logprob entry, in chat's or completions' layout.
void CompletionReply::record_logprobs(Choice& c, const Event& ev) const {
  if (ev.token < 0 || !ev.has_token || shape_.top_logprobs < 0) return;
  const std::string piece = tokenizer_.token_bytes(ev.token);
  if (shape_.chat) {
    json top = json::array();
    for (const auto& t : ev.top)
      top.push_back(json{{"token", t.token}, {"logprob", t.logprob}, {"bytes", std::vector<uint8_t>(t.token.begin(), t.token.end())}});
    c.logprobs_content.push_back(json{{"token", piece}, {"logprob", ev.logprob},
                                      {"bytes", std::vector<uint8_t>(piece.begin(), piece.end())}, {"top_logprobs", top}});
  } else {
    c.offsets.push_back(c.text.size());
    c.tokens.push_back(piece);
    c.token_logprobs.push_back(ev.logprob);
    json top = json::object();
    for (const auto& t : ev.top) top[t.token] = t.logprob;
    c.top.push_back(top);
  }
}

// One event's logprobs as a stream chunk carries them (null when off).
json CompletionReply::stream_logprobs(const Choice& c, const Event& ev) const {
  if (shape_.top_logprobs < 0 || !ev.has_token) return nullptr;
  Choice one;
  record_logprobs(one, ev);
  return shape_.chat ? json{{"content", one.logprobs_content}}
                     : json{{"tokens", one.tokens}, {"token_logprobs", one.token_logprobs}, {"top_logprobs", one.top},
                            {"text_offset", json::array({c.text.size()})}};
}

bool CompletionReply::send_event(http::Response& res, const json& chunk) {
  return res.write_chunk("data: " + dump(chunk) + "\n\n");
}

bool CompletionReply::stream_event(http::Response& res, size_t i, const Event& ev) {
  Choice& c = choices_[i];
  const bool chat = shape_.chat;
  const json lp = stream_logprobs(c, ev);
  if (c.parser) {
    // Content, reasoning and tool calls as separate deltas.
    std::vector<ReplyDelta> deltas = c.parser->push(ev.text);
    if (ev.done) {
      auto rest = c.parser->finish();
      deltas.insert(deltas.end(), rest.begin(), rest.end());
    }
    std::vector<json> out;
    for (const ReplyDelta& d : deltas) {
      if (d.kind == ReplyDelta::kContent) out.push_back(json{{"content", d.text}});
      else if (d.kind == ReplyDelta::kReasoning) out.push_back(json{{"reasoning_content", d.text}});
      else {
        auto both = call_deltas(d);
        out.insert(out.end(), both.begin(), both.end());
      }
    }
    if (out.empty() && !lp.is_null()) out.push_back(json::object());
    for (size_t k = 0; k < out.size(); ++k) {
      json chunk = base("chat.completion.chunk");
      chunk["choices"] = json::array(
          {json{{"index", i}, {"delta", out[k]}, {"logprobs", k == 0 ? lp : json(nullptr)}, {"finish_reason", nullptr}}});
      if (!send_event(res, chunk)) return false;
    }
  } else if (!ev.text.empty() || !lp.is_null()) {
    json chunk = base(chat ? "chat.completion.chunk" : "text_completion");
    chunk["choices"] = json::array(
        {chat ? json{{"index", i}, {"delta", json{{"content", ev.text}}}, {"logprobs", lp}, {"finish_reason", nullptr}}
              : json{{"index", i}, {"text", ev.text}, {"logprobs", lp}, {"finish_reason", nullptr}}});
    if (!send_event(res, chunk)) return false;
  }
  c.text += ev.text;
  if (!ev.done) return true;
  c.done = true;
  const std::string reason = finish_reason(c.parser.get(), ev.finish_reason);
  json chunk = base(chat ? "chat.completion.chunk" : "text_completion");
  chunk["choices"] = json::array(
      {chat ? json{{"index", i}, {"delta", json::object()}, {"logprobs", nullptr}, {"finish_reason", reason}}
            : json{{"index", i}, {"text", ""}, {"logprobs", nullptr}, {"finish_reason", reason}}});
  return send_event(res, chunk);
}

void CompletionReply::stream(http::Response& res, const ExtraHeaders& headers) {
  const bool chat = shape_.chat;
  res.start_stream(200, "text/event-stream", headers);
  if (chat) {
    for (size_t i = 0; i < reqs_.size(); ++i) {
      json chunk = base("chat.completion.chunk");
      chunk["choices"] = json::array({json{{"index", i}, {"delta", json{{"role", "assistant"}, {"content", ""}}},
                                           {"logprobs", nullptr}, {"finish_reason", nullptr}}});
      if (!send_event(res, chunk)) return cancel_all();
    }
  }
  size_t remaining = reqs_.size();
  while (remaining > 0) {
    bool any = false;
    for (size_t i = 0; i < reqs_.size(); ++i) {
      if (choices_[i].done) continue;
      auto ev = reqs_[i]->next_event(std::chrono::milliseconds(reqs_.size() == 1 ? 100 : 5));
      if (!ev) continue;
      any = true;
      if (!ev->error.empty()) {
        // Headers are gone; report in-band as OpenAI does for stream errors.
        send_event(res, error_body(ApiError{500, ev->error, "server_error", "", ""}));
        cancel_all();
        res.keep_alive = false;
        return;
      }
      if (!stream_event(res, i, *ev)) return cancel_all();
      if (choices_[i].done) --remaining;
    }
    if (!any && res.peer_closed()) return cancel_all();
  }
  if (shape_.include_usage) {
    json chunk = base(chat ? "chat.completion.chunk" : "text_completion");
    chunk["choices"] = json::array();
    chunk["usage"] = usage();
    send_event(res, chunk);
  }
  res.write_chunk("data: [DONE]\n\n");
  res.end_stream();
}

void CompletionReply::collect(http::Response& res, const ExtraHeaders& headers) {
  // Applies the parser's deltas to a choice.
  auto absorb = [](Choice& c, const std::vector<ReplyDelta>& deltas) {
    for (const ReplyDelta& d : deltas) {
      if (d.kind == ReplyDelta::kContent) c.text += d.text;
      else if (d.kind == ReplyDelta::kReasoning) c.reasoning += d.text;
      else
        c.tool_calls.push_back(json{{"id", d.call.id}, {"type", "function"},
                                    {"function", json{{"name", d.call.name}, {"arguments", d.call.arguments}}}});
    }
  };
  for (size_t i = 0; i < reqs_.size(); ++i) {
    Choice& c = choices_[i];
    while (!c.done) {
      auto ev = reqs_[i]->next_event(std::chrono::milliseconds(100));
      if (!ev) {
        if (res.peer_closed()) return cancel_all();
        continue;
      }
      if (!ev->error.empty()) {
        cancel_all();
        res.send(500, "application/json", dump(error_body(ApiError{500, ev->error, "server_error", "", ""})));
        return;
      }
      record_logprobs(c, *ev);
      if (c.parser) absorb(c, c.parser->push(ev->text));
      else c.text += ev->text;
      if (ev->done) {
        if (c.parser) absorb(c, c.parser->finish());
        c.done = true;
        c.finish = finish_reason(c.parser.get(), ev->finish_reason);
      }
    }
  }
  const bool chat = shape_.chat;
  json reply = base(chat ? "chat.completion" : "text_completion");
  reply["choices"] = json::array();
  for (size_t i = 0; i < choices_.size(); ++i) {
    const Choice& c = choices_[i];
    json lp = nullptr;
    if (shape_.top_logprobs >= 0)
      lp = chat ? json{{"content", c.logprobs_content}}
                : json{{"tokens", c.tokens}, {"token_logprobs", c.token_logprobs}, {"top_logprobs", c.top}, {"text_offset", c.offsets}};
    json message{{"role", "assistant"}, {"content", c.text}};
    if (!c.tool_calls.empty()) {
      if (c.text.empty()) message["content"] = nullptr;
      message["tool_calls"] = c.tool_calls;
    }
    if (!c.reasoning.empty()) message["reasoning_content"] = c.reasoning;
    reply["choices"].push_back(chat ? json{{"index", i}, {"message", message}, {"logprobs", lp}, {"finish_reason", c.finish}}
                                    : json{{"index", i}, {"text", c.text}, {"logprobs", lp}, {"finish_reason", c.finish}});
  }
  reply["usage"] = usage();
  res.send(200, "application/json", dump(reply), headers);
}

}  // namespace osprey::server
