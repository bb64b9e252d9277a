#include "server/responses_reply.h"

#include <chrono>
#include <random>

#include "server/openai_api.h"
#include "tokenizer/tokenizer.h"

namespace osprey::server {
namespace {

std::string item_id(const char* prefix) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char kHex[] = "0123456789abcdef";
  std::string id = prefix;
  for (int i = 0; i < 24; ++i) id += kHex[rng() & 15];
  return id;
}

}  // namespace

// ---- ResponseOutput -----------------------------------------------------------

void ResponseOutput::open(Open kind) {
  if (open_ == kind) return;
  close("completed");
  open_ = kind;
  const int index = static_cast<int>(items_.size());
  if (kind == Open::kMessage) {
    items_.push_back(json{{"type", "message"}, {"id", item_id("msg_")}, {"status", "in_progress"}, {"role", "assistant"},
                          {"content", json::array()}});
    emit_("response.output_item.added", json{{"output_index", index}, {"item", items_.back()}});
    const json part{{"type", "output_text"}, {"text", ""}, {"annotations", json::array()}};
    items_.back()["content"].push_back(part);
    emit_("response.content_part.added", json{{"item_id", items_.back()["id"]}, {"output_index", index},
                                              {"content_index", 0}, {"part", part}});
  } else {
    items_.push_back(json{{"type", "reasoning"}, {"id", item_id("rs_")}, {"status", "in_progress"},
                          {"summary", json::array()}, {"content", json::array()}});
    emit_("response.output_item.added", json{{"output_index", index}, {"item", items_.back()}});
    items_.back()["content"].push_back(json{{"type", "reasoning_text"}, {"text", ""}});
  }
}

void ResponseOutput::close(const char* status) {
  if (open_ == Open::kNone) return;
  json& item = items_.back();
  const int index = static_cast<int>(items_.size()) - 1;
  const json& part = item["content"][0];
  if (open_ == Open::kMessage) {
    emit_("response.output_text.done",
          json{{"item_id", item["id"]}, {"output_index", index}, {"content_index", 0}, {"text", part["text"]}});
    emit_("response.content_part.done", json{{"item_id", item["id"]}, {"output_index", index}, {"content_index", 0},
                                             {"part", part}});
  } else {
    emit_("response.reasoning_text.done",
          json{{"item_id", item["id"]}, {"output_index", index}, {"content_index", 0}, {"text", part["text"]}});
  }
  item["status"] = status;
  emit_("response.output_item.done", json{{"output_index", index}, {"item", item}});
  open_ = Open::kNone;
}

void ResponseOutput::add(const ReplyDelta& d) {
  if (d.kind == ReplyDelta::kToolCall) {
    close("completed");
    const int index = static_cast<int>(items_.size());
    items_.push_back(json{{"type", "function_call"}, {"id", item_id("fc_")}, {"call_id", d.call.id},
                          {"name", d.call.name}, {"arguments", ""}, {"status", "in_progress"}});
    json& item = items_.back();
    emit_("response.output_item.added", json{{"output_index", index}, {"item", item}});
    item["arguments"] = d.call.arguments;
    emit_("response.function_call_arguments.delta",
          json{{"item_id", item["id"]}, {"output_index", index}, {"delta", d.call.arguments}});
    emit_("response.function_call_arguments.done",
          json{{"item_id", item["id"]}, {"output_index", index}, {"arguments", d.call.arguments}});
    item["status"] = "completed";
    emit_("response.output_item.done", json{{"output_index", index}, {"item", item}});
    return;
  }
  if (d.text.empty()) return;
  const bool reasoning = d.kind == ReplyDelta::kReasoning;
  open(reasoning ? Open::kReasoning : Open::kMessage);
  json& item = items_.back();
  const int index = static_cast<int>(items_.size()) - 1;
  item["content"][0]["text"] = item["content"][0]["text"].get<std::string>() + d.text;
  emit_(reasoning ? "response.reasoning_text.delta" : "response.output_text.delta",
        json{{"item_id", item["id"]}, {"output_index", index}, {"content_index", 0}, {"delta", d.text}});
}

void ResponseOutput::finish(bool complete) { close(complete ? "completed" : "incomplete"); }

std::string ResponseOutput::reasoning_text() const {
  std::string text;
  for (const json& item : items_)
    if (item["type"] == "reasoning") text += item["content"][0]["text"].get<std::string>();
  return text;
}

// ---- ResponsesReply -------------------------------------------------------------

ResponsesReply::ResponsesReply(ReplyShape shape, json echo, const Tokenizer& tokenizer,
                               std::shared_ptr<GenerationRequest> request, int64_t n_prompt)
    : shape_(std::move(shape)), echo_(std::move(echo)), tokenizer_(tokenizer), req_(std::move(request)),
      n_prompt_(n_prompt) {}

json ResponsesReply::usage(const ResponseOutput& out) const {
  const int64_t generated = req_->n_generated;
  // The split is not counted as tokens are made; re-encoding the reasoning comes within a token or two.
  const std::string reasoning = out.reasoning_text();
  const int64_t reasoning_tokens =
      reasoning.empty() ? 0 : std::min<int64_t>(generated, static_cast<int64_t>(tokenizer_.encode(reasoning, false, false).size()));
  return json{{"input_tokens", n_prompt_},
              {"input_tokens_details", json{{"cached_tokens", req_->n_cached.load()}}},
              {"output_tokens", generated},
              {"output_tokens_details", json{{"reasoning_tokens", reasoning_tokens}}},
              {"total_tokens", n_prompt_ + generated}};
}

json ResponsesReply::response(const std::string& status, const json& output) const {
  json r{{"id", shape_.id}, {"object", "response"}, {"created_at", shape_.created}, {"status", status},
         {"error", nullptr}, {"incomplete_details", nullptr}, {"model", shape_.model}, {"output", output}};
  for (auto it = echo_.begin(); it != echo_.end(); ++it) r[it.key()] = it.value();
  r["usage"] = nullptr;
  if (status == "incomplete") r["incomplete_details"] = json{{"reason", "max_output_tokens"}};
  return r;
}

std::optional<std::string> ResponsesReply::run(ResponseOutput& out, http::Response& res, std::string& error) {
  std::unique_ptr<ReplyParser> parser;
  if (shape_.parse) parser = std::make_unique<ReplyParser>(shape_.format, shape_.tool_names, shape_.parallel_tool_calls);
  for (;;) {
    auto ev = req_->next_event(std::chrono::milliseconds(100));
    if (!ev) {
      if (res.peer_closed()) {
        req_->cancelled = true;
        return std::nullopt;
      }
      continue;
    }
    if (!ev->error.empty()) {
      error = ev->error;
      req_->cancelled = true;
      return "error";
    }
    std::vector<ReplyDelta> deltas;
    if (parser) {
      deltas = parser->push(ev->text);
      if (ev->done) {
        auto rest = parser->finish();
        deltas.insert(deltas.end(), rest.begin(), rest.end());
      }
    } else if (!ev->text.empty()) {
      deltas.push_back(ReplyDelta{ReplyDelta::kContent, ev->text, {}, 0});
    }
    for (const ReplyDelta& d : deltas) out.add(d);
    if (client_gone_) {
      req_->cancelled = true;
      return std::nullopt;
    }
    if (ev->done) {
      out.finish(ev->finish_reason != "length");
      return ev->finish_reason;
    }
  }
}

void ResponsesReply::collect(http::Response& res, const ExtraHeaders& headers) {
  ResponseOutput out([](const std::string&, json) {});
  std::string error;
  const auto finish = run(out, res, error);
  if (!finish) return;
  if (!error.empty()) {
    res.send(500, "application/json", dump(error_body(ApiError{500, error, "server_error", "", ""})));
    return;
  }
  json r = response(*finish == "length" ? "incomplete" : "completed", out.items());
  r["usage"] = usage(out);
  res.send(200, "application/json", dump(r), headers);
}

void ResponsesReply::stream(http::Response& res, const ExtraHeaders& headers) {
  int64_t sequence = 0;
  bool gone = false;
  auto send = [&](const std::string& type, json event) {
    if (gone) return;
    json e{{"type", type}, {"sequence_number", sequence++}};
    for (auto it = event.begin(); it != event.end(); ++it) e[it.key()] = it.value();
    gone = !res.write_chunk("event: " + type + "\ndata: " + dump(e) + "\n\n");
    client_gone_ = gone;
  };
  res.start_stream(200, "text/event-stream", headers);
  send("response.created", json{{"response", response("in_progress", json::array())}});
  send("response.in_progress", json{{"response", response("in_progress", json::array())}});
  ResponseOutput out([&](const std::string& type, json event) { send(type, std::move(event)); });
  std::string error;
  const auto finish = gone ? std::nullopt : run(out, res, error);
  if (!finish || gone) {
    req_->cancelled = true;
    return;
  }
  if (!error.empty()) {
    json r = response("failed", out.items());
    r["error"] = json{{"code", "server_error"}, {"message", error}};
    send("response.failed", json{{"response", r}});
    res.keep_alive = false;
    res.end_stream();
    return;
  }
  const bool complete = *finish != "length";
  json r = response(complete ? "completed" : "incomplete", out.items());
  r["usage"] = usage(out);
  send(complete ? "response.completed" : "response.incomplete", json{{"response", r}});
  res.end_stream();
}

}  // namespace osprey::server
