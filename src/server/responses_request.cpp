#include "server/responses_request.h"

namespace osprey::server {
namespace {

// The text of a message's content (or a function call's output): a string,
// or an array of text parts. `path` names the value in errors.
std::string parts_text(const json* content, const std::string& path) {
  if (content == nullptr) reject(path, "'" + path + "' is required");
  if (content->is_string()) return content->get<std::string>();
  if (!content->is_array())
    reject(path, "'" + path + "' must be a string or an array of input_text parts, not " + json_type_name(*content));
  std::string text;
  for (size_t k = 0; k < content->size(); ++k) {
    const Fields part = Fields::of((*content)[k], element_path(path, k));
    const std::string type = part.required_string("type");
    if (type == "input_text" || type == "output_text" || type == "text") {
      text += part.required_string("text");
    } else if (type == "input_image" || type == "input_file" || type == "input_audio") {
      part.fail("type", "'" + part.path("type") + "' is '" + type + "': this server's models read text only");
    } else if (type == "refusal") {
      text += part.required_string("refusal");
    } else {
      part.fail("type", "'" + part.path("type") + "' is '" + type + "'; expected input_text or output_text");
    }
  }
  return text;
}

// `input`: a string (one user message) or an array of items.
json chat_messages(const Fields& body, const std::string& instructions) {
  json messages = json::array();
  if (!instructions.empty()) messages.push_back(json{{"role", "system"}, {"content", instructions}});
  const json& input = body.required("input");
  if (input.is_string()) {
    messages.push_back(json{{"role", "user"}, {"content", input}});
    return messages;
  }
  if (!input.is_array() || input.empty())
    body.fail("input", "'input' must be a string or a non-empty array of items, not " + json_type_name(input));
  for (size_t i = 0; i < input.size(); ++i) {
    const Fields item = Fields::of(input[i], element_path("input", i));
    const std::string type = item.string("type", "message");
    if (type == "message") {
      if (!item.has("role"))
        reject(item.own_path(), "'" + item.own_path() + "' has no 'role': a message needs one, other items a 'type'");
      std::string role = item.choice("role", {"user", "assistant", "system", "developer"}, "user");
      if (role == "developer") role = "system";
      messages.push_back(json{{"role", role}, {"content", parts_text(item.get("content"), item.path("content"))}});
    } else if (type == "function_call") {
      // Calls the model made earlier; consecutive ones are one assistant turn.
      json call{{"id", item.required_string("call_id")}, {"type", "function"},
                {"function", json{{"name", item.required_string("name")}, {"arguments", item.required_string("arguments")}}}};
      if (!messages.empty() && messages.back()["role"] == "assistant" && messages.back().contains("tool_calls"))
        messages.back()["tool_calls"].push_back(call);
      else
        messages.push_back(json{{"role", "assistant"}, {"content", ""}, {"tool_calls", json::array({call})}});
    } else if (type == "function_call_output") {
      const std::string text = parts_text(item.get("output"), item.path("output"));
      messages.push_back(json{{"role", "tool"}, {"tool_call_id", item.required_string("call_id")}, {"content", text}});
    } else if (type == "reasoning") {
      continue;  // earlier reasoning is not shown to the model again, as chat templates drop it too
    } else if (type == "item_reference") {
      item.fail("type", "'" + item.path("type") + "' is 'item_reference': this server keeps no items; send the item itself");
    } else {
      item.fail("type", "'" + item.path("type") + "' is '" + type +
                            "'; expected message, function_call, function_call_output or reasoning");
    }
  }
  return messages;
}

// Responses' flat function tools -> chat's {type, function: {...}}.
json chat_tools(const Fields& body) {
  const json* tools = body.get("tools");
  if (tools == nullptr) return nullptr;
  if (!tools->is_array()) body.fail("tools", "'tools' must be an array of {type: 'function', name, parameters}");
  json out = json::array();
  for (size_t i = 0; i < tools->size(); ++i) {
    const Fields tool = Fields::of((*tools)[i], element_path("tools", i));
    const std::string type = tool.required_string("type");
    if (type != "function")
      tool.fail("type", "'" + tool.path("type") + "' is '" + type + "': this server runs function tools only");
    json fn{{"name", tool.required_string("name")}};
    if (const auto d = tool.optional_string("description")) fn["description"] = *d;
    if (const auto p = tool.object("parameters")) fn["parameters"] = p->value();
    // Only what was given reaches the template's list of tools.
    if (tool.has("strict")) fn["strict"] = tool.boolean("strict", true);
    out.push_back(json{{"type", "function"}, {"function", fn}});
  }
  return out;
}

// Responses' tool_choice: "none" | "auto" | "required" | {type: "function", name}.
json chat_tool_choice(const Fields& body) {
  const json* choice = body.get("tool_choice");
  if (choice == nullptr) return nullptr;
  if (choice->is_string()) return body.choice("tool_choice", {"none", "auto", "required"}, "auto");
  const Fields named = Fields::of(*choice, "tool_choice");
  const std::string type = named.required_string("type");
  if (type != "function")
    named.fail("type", "'tool_choice.type' is '" + type + "': this server runs function tools only");
  return json{{"type", "function"}, {"function", json{{"name", named.required_string("name")}}}};
}

// text.format -> response_format.
json chat_response_format(const Fields& body) {
  const auto text = body.object("text");
  if (!text) return nullptr;
  text->optional_string("verbosity");
  const auto format = text->object("format");
  if (!format) return nullptr;
  const std::string type = format->choice("type", {"text", "json_object", "json_schema"}, "text");
  if (type != "json_schema") return json{{"type", type}};
  json schema{{"name", format->string("name", "response")}};
  const auto s = format->object("schema");
  if (!s) format->fail("schema", "'text.format.schema' is required when the type is 'json_schema'");
  schema["schema"] = s->value();
  schema["strict"] = format->boolean("strict", false);
  return json{{"type", "json_schema"}, {"json_schema", schema}};
}

}  // namespace

ResponsesRequest parse_responses_request(const Fields& body) {
  if (body.has("previous_response_id"))
    body.fail("previous_response_id", "'previous_response_id' needs stored responses, and this server keeps none; "
                                      "send the whole conversation in 'input'");
  if (body.boolean("background", false))
    body.fail("background", "'background' needs stored responses, and this server keeps none");
  if (body.has("conversation"))
    body.fail("conversation", "'conversation' needs stored conversations, and this server keeps none");
  if (body.has("prompt") && !body.get("prompt")->is_string())
    body.fail("prompt", "'prompt' (a stored prompt template) is not supported; send 'input' and 'instructions'");
  ResponsesRequest out;
  json& chat = out.chat_body;
  const std::string instructions = body.string("instructions", "");
  chat["messages"] = chat_messages(body, instructions);
  if (const auto m = body.optional_string("model")) chat["model"] = *m;
  if (const auto n = body.optional_integer("max_output_tokens", 1, INT64_MAX)) chat["max_tokens"] = *n;
  for (const char* passed : {"temperature", "top_p", "stream", "parallel_tool_calls", "seed", "top_k", "min_p",
                             "stop", "ignore_eos", "frequency_penalty", "presence_penalty", "repeat_penalty", "lora"})
    if (const json* v = body.get(passed)) chat[passed] = *v;
  if (json tools = chat_tools(body); !tools.is_null()) chat["tools"] = tools;
  if (json choice = chat_tool_choice(body); !choice.is_null()) chat["tool_choice"] = choice;
  if (json format = chat_response_format(body); !format.is_null()) chat["response_format"] = format;
  if (const auto reasoning = body.object("reasoning")) {
    if (const auto effort = reasoning->optional_string("effort")) {
      reasoning->choice("effort", {"minimal", "low", "medium", "high"}, "medium");
      chat["reasoning_effort"] = *effort;
    }
    reasoning->optional_string("summary");
  }
  // Accepted and repeated back; they change nothing here.
  body.boolean("store", false);
  body.object("metadata");
  body.optional_string("user");
  body.choice("truncation", {"disabled", "auto"}, "disabled");
  if (const json* include = body.get("include"); include != nullptr && !include->is_array())
    body.fail("include", "'include' must be an array of strings");

  json& echo = out.echo;
  echo["instructions"] = instructions.empty() ? json(nullptr) : json(instructions);
  echo["max_output_tokens"] = chat.contains("max_tokens") ? chat["max_tokens"] : json(nullptr);
  echo["temperature"] = chat.value("temperature", json(1.0));
  echo["top_p"] = chat.value("top_p", json(1.0));
  echo["parallel_tool_calls"] = body.boolean("parallel_tool_calls", true);
  echo["tool_choice"] = body.get("tool_choice") != nullptr ? *body.get("tool_choice") : json("auto");
  echo["tools"] = body.get("tools") != nullptr ? *body.get("tools") : json::array();
  echo["text"] = body.get("text") != nullptr ? *body.get("text") : json{{"format", json{{"type", "text"}}}};
  echo["reasoning"] = body.get("reasoning") != nullptr ? *body.get("reasoning") : json(nullptr);
  echo["metadata"] = body.get("metadata") != nullptr ? *body.get("metadata") : json::object();
  echo["truncation"] = body.string("truncation", "disabled");
  echo["store"] = false;  // nothing is kept, whatever was asked
  echo["user"] = body.get("user") != nullptr ? *body.get("user") : json(nullptr);
  return out;
}

std::string responses_param(const std::string& chat_param) {
  // tools[i].function.X -> tools[i].X (Responses' tools are flat).
  if (chat_param.rfind("tools[", 0) == 0) {
    const size_t close = chat_param.find(']');
    if (close != std::string::npos && chat_param.compare(close + 1, 10, ".function.") == 0)
      return chat_param.substr(0, close + 1) + chat_param.substr(close + 10);
    if (close != std::string::npos && chat_param.compare(close + 1, 9, ".function") == 0 && close + 10 == chat_param.size())
      return chat_param.substr(0, close + 1);
  }
  static const std::pair<const char*, const char*> kRenamed[] = {
      {"messages", "input"}, {"response_format.json_schema", "text.format"}, {"response_format", "text.format"},
      {"max_tokens", "max_output_tokens"}, {"reasoning_effort", "reasoning.effort"}};
  for (const auto& [from, to] : kRenamed) {
    const std::string f = from;
    if (chat_param.compare(0, f.size(), f) == 0) return to + chat_param.substr(f.size());
  }
  return chat_param;
}

}  // namespace osprey::server
