#include "server/openai_api.h"

#include <algorithm>
#include <cctype>
#include <functional>
#include <cmath>
#include <random>

#include "core/utf8.h"
#include "grammar/json_schema.h"
#include "template/chat_template.h"

namespace osprey::server {
namespace {

// A request's key as an error message shows it: a hostile key may be
// megabytes long, so only its start is echoed, cut between characters.
std::string quoted_key(const std::string& key) {
  constexpr size_t kShown = 32;
  if (key.size() <= kShown) return "'" + key + "'";
  const std::string_view head(key.data(), kShown);
  return "'" + std::string(head.substr(0, utf8::complete_prefix_length(head))) + "...' (" +
         std::to_string(key.size()) + " bytes)";
}

// The tool definitions of a chat request, checked as OpenAI checks them.
json parse_tools(const Fields& body) {
  const json* tools = body.get("tools");
  if (tools == nullptr) return nullptr;
  if (!tools->is_array()) body.fail("tools", "'tools' must be an array of {type: 'function', function: {...}}");
  if (tools->size() > 128) body.fail("tools", "'tools' holds " + std::to_string(tools->size()) + " tools; at most 128");
  for (size_t i = 0; i < tools->size(); ++i) {
    const Fields tool = Fields::of((*tools)[i], element_path("tools", i));
    tool.choice("type", {"function"}, "function");
    const std::optional<Fields> fn = tool.object("function");
    if (!fn) tool.fail("function", "'" + tool.path("function") + "' is required");
    const std::string name = fn->required_string("name");
    bool ok = !name.empty() && name.size() <= 64;
    for (char c : name) ok &= std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
    if (!ok) fn->fail("name", "'" + fn->path("name") + "' must be 1-64 letters, digits, '_' or '-'");
    fn->optional_string("description");
    fn->object("parameters");
    fn->boolean("strict", false);
  }
  return *tools;
}

}  // namespace

json error_body(const ApiError& e) {
  json err;
  err["message"] = e.message;
  err["type"] = e.type;
  err["param"] = e.param.empty() ? json(nullptr) : json(e.param);
  err["code"] = e.code.empty() ? json(nullptr) : json(e.code);
  return json{{"error", err}};
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

ChatRequest parse_chat_request(const Fields& body) {
  ChatRequest out;
  const json& messages = body.required_array("messages");
  if (messages.empty()) body.fail("messages", "'messages' must be a non-empty array");
  std::string bad_field;
  auto normalized = normalize_messages(messages, &bad_field);
  if (!normalized.ok()) reject(bad_field.empty() ? "messages" : bad_field, normalized.status().message());
  out.messages = std::move(normalized).value();

  out.tools = parse_tools(body);
  // tool_choice: 'none' keeps the tools out of the prompt; 'required' or a
  // named function is enforced by constraining the reply to a call.
  if (const json* choice = body.get("tool_choice")) {
    if (choice->is_string()) {
      out.tool_choice = body.choice("tool_choice", {"none", "auto", "required"}, "auto");
    } else {
      const Fields named = Fields::of(*choice, "tool_choice");
      named.choice("type", {"function"}, "function");
      const auto fn = named.object("function");
      if (!fn) named.fail("function", "'tool_choice.function' is required");
      out.tool_choice = "function";
      out.forced_function = fn->required_string("name");
    }
    if (out.tool_choice != "none" && out.tool_choice != "auto" && (out.tools.is_null() || out.tools.empty()))
      body.fail("tool_choice", "'tool_choice' asks for a tool call, but the request has no 'tools'");
    if (out.tool_choice == "function") {
      bool known = false;
      for (const auto& t : out.tools) known |= t["function"]["name"] == out.forced_function;
      if (!known) body.fail("tool_choice", "'tool_choice' names '" + out.forced_function + "', which is not among the tools");
    }
    if (out.tool_choice == "none") out.tools = nullptr;
  }
  out.parallel_tool_calls = body.boolean("parallel_tool_calls", true);

  out.add_generation_prompt = body.boolean("add_generation_prompt", true);
  if (const auto kwargs = body.object("chat_template_kwargs")) out.template_kwargs = kwargs->value();
  // reasoning_effort reaches templates that read it (gpt-oss).
  if (const auto effort = body.optional_string("reasoning_effort")) {
    body.choice("reasoning_effort", {"minimal", "low", "medium", "high"}, "medium");
    out.template_kwargs["reasoning_effort"] = *effort;
  }
  return out;
}

json forced_call_schema(const ChatRequest& chat) {
  json alternatives = json::array();
  for (size_t i = 0; i < chat.tools.size(); ++i) {
    const json& fn = chat.tools[i]["function"];
    const std::string name = fn["name"];
    if (chat.tool_choice == "function" && name != chat.forced_function) continue;
    json params = fn.contains("parameters") && !fn["parameters"].is_null() ? fn["parameters"] : json{{"type", "object"}};
    // References inside the parameters point at the parameters' own root,
    // which is now alternatives[k].properties.arguments.
    const std::string at = "#/anyOf/" + std::to_string(alternatives.size()) + "/properties/arguments";
    std::function<void(json&)> rebase = [&](json& v) {
      if (v.is_object()) {
        for (auto it = v.begin(); it != v.end(); ++it) {
          if (it.key() == "$ref" && it->is_string()) {
            const std::string ref = *it;
            if (ref == "#") *it = at;
            else if (ref.rfind("#/", 0) == 0) *it = at + ref.substr(1);
          } else {
            rebase(*it);
          }
        }
      } else if (v.is_array()) {
        for (auto& x : v) rebase(x);
      }
    };
    // Checked alone first, so that an error names the tool's own field.
    std::string where;
    auto alone = grammar::json_schema_to_gbnf(params, &where);
    const std::string param = "tools[" + std::to_string(i) + "].function.parameters";
    if (!alone.ok()) reject(where.empty() ? param : param + "." + where, alone.status().message());
    rebase(params);
    alternatives.push_back(json{{"type", "object"},
                                {"properties", {{"name", {{"const", name}}}, {"arguments", params}}},
                                {"required", {"name", "arguments"}},
                                {"additionalProperties", false}});
  }
  return json{{"anyOf", alternatives}};
}

CompletionSettings parse_settings(const Fields& body, bool chat, int32_t n_vocab) {
  CompletionSettings out;
  SamplingParams& s = out.sampling;
  // OpenAI's defaults: plain sampling at temperature 1.
  s.temperature = static_cast<float>(body.number("temperature", 0, 2, 1.0));
  s.top_p = static_cast<float>(body.number("top_p", 0, 1, 1.0));
  s.min_p = static_cast<float>(body.number("min_p", 0, 1, 0.0));
  s.presence_penalty = static_cast<float>(body.number("presence_penalty", -2, 2, 0.0));
  s.frequency_penalty = static_cast<float>(body.number("frequency_penalty", -2, 2, 0.0));
  s.repeat_penalty = static_cast<float>(body.number("repetition_penalty", 0.01, 10, 1.0));
  s.top_k = static_cast<int32_t>(body.integer("top_k", 0, n_vocab, 0));
  if (s.top_p <= 0.0f) body.fail("top_p", "'top_p' must be greater than 0");
  if ((s.presence_penalty != 0 || s.frequency_penalty != 0) && s.repeat_penalty == 1.0f) s.penalty_last_n = -1;

  // Any 64-bit seed, negative ones as their two's complement.
  if (const json* seed = body.get("seed")) {
    if (seed->is_number_unsigned()) s.seed = seed->get<uint64_t>();
    else s.seed = static_cast<uint64_t>(body.integer("seed", INT64_MIN, INT64_MAX, 0));
    out.seeded = true;
  } else {
    s.seed = std::random_device{}() ^ (uint64_t{std::random_device{}()} << 32);
  }

  const char* max_name = body.has("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  out.max_tokens = body.optional_integer(max_name, 1, INT64_MAX);
  out.n = static_cast<int>(body.integer("n", 1, 16, 1));

  if (const json* st = body.get("stop")) {
    if (st->is_string()) {
      out.stop.push_back(st->get<std::string>());
    } else if (st->is_array()) {
      if (st->size() > 16) body.fail("stop", "'stop' takes at most 16 strings");
      for (const auto& x : *st) {
        if (!x.is_string()) body.fail("stop", "'stop' must be a string or an array of strings");
        out.stop.push_back(x.get<std::string>());
      }
    } else {
      body.fail("stop", "'stop' must be a string or an array of strings, not " + json_type_name(*st));
    }
    for (const auto& x : out.stop) {
      if (x.empty()) body.fail("stop", "'stop' strings must not be empty");
      if (x.size() > kMaxStopBytes)
        body.fail("stop", "a 'stop' string has " + std::to_string(x.size()) + " bytes; at most " +
                              std::to_string(kMaxStopBytes));
    }
  }

  if (const auto lb = body.object("logit_bias")) {
    for (auto it = lb->value().begin(); it != lb->value().end(); ++it) {
      // Decimal digits only: strtol would also take " 5" or "+5".
      const std::string& key = it.key();
      const bool digits = !key.empty() && key.size() <= 10 &&
                          std::all_of(key.begin(), key.end(), [](char c) { return c >= '0' && c <= '9'; });
      const long long id = digits ? std::stoll(key) : -1;
      if (id < 0 || id >= n_vocab)
        body.fail("logit_bias", "'logit_bias' key " + quoted_key(key) + " is not a token id (0.." +
                                    std::to_string(n_vocab - 1) + ")");
      const double bias = lb->number(it.key(), -100, 100, 0);
      s.logit_bias.emplace_back(static_cast<int32_t>(id), static_cast<float>(bias));
    }
  }

  out.ignore_eos = body.boolean("ignore_eos", false);
  out.stream = body.boolean("stream", false);
  if (const auto so = body.object("stream_options")) out.include_usage = so->boolean("include_usage", false);

  // Fields accepted for compatibility, checked for their type, with no effect.
  body.optional_string("user");
  body.boolean("store", false);
  if (const auto meta = body.object("metadata"))
    for (auto it = meta->value().begin(); it != meta->value().end(); ++it) meta->optional_string(it.key());

  if (chat) {
    const bool logprobs = body.boolean("logprobs", false);
    const auto top = body.optional_integer("top_logprobs", 0, 20);
    if (top && !logprobs) body.fail("top_logprobs", "'top_logprobs' needs 'logprobs': true");
    out.top_logprobs = logprobs ? static_cast<int>(top.value_or(0)) : -1;
    if (const auto rf = body.object("response_format")) {
      const std::string type = rf->choice("type", {"text", "json_object", "json_schema"}, "text");
      if (type == "json_object") {
        out.grammar = grammar::json_object_gbnf();
        out.grammar_param = "response_format";
      } else if (type == "json_schema") {
        const auto js = rf->object("json_schema");
        if (!js) rf->fail("json_schema", "'response_format.json_schema' is required when the type is 'json_schema'");
        js->required_string("name");
        js->optional_string("description");
        js->boolean("strict", false);
        const json& schema = js->required("schema");
        if (!schema.is_object() && !schema.is_boolean())
          js->fail("schema", "'response_format.json_schema.schema' must be a JSON Schema object");
        std::string where;
        auto gbnf = grammar::json_schema_to_gbnf(schema, &where);
        const std::string param = js->path("schema");
        if (!gbnf.ok()) reject(where.empty() ? param : param + "." + where, gbnf.status().message());
        out.grammar = std::move(gbnf).value();
        out.grammar_param = param;
      }
    }
  } else {
    out.top_logprobs = static_cast<int>(body.integer("logprobs", 0, 5, -1));
    if (body.boolean("echo", false)) body.fail("echo", "'echo' is not supported yet");
    if (!body.string("suffix", "").empty()) body.fail("suffix", "'suffix' (insertion) is not supported");
    if (body.integer("best_of", 1, 16, 1) > 1) body.fail("best_of", "'best_of' above 1 is not supported; use 'n'");
  }
  // An extension: a GBNF grammar the reply must match.
  if (const auto g = body.optional_string("grammar")) {
    if (!out.grammar.empty()) body.fail("grammar", "give either 'grammar' or a JSON 'response_format', not both");
    if (g->empty()) body.fail("grammar", "'grammar' is empty");
    out.grammar = *g;
    out.grammar_param = "grammar";
  }
  if (auto st = s.validate(n_vocab); !st.ok()) reject("", st.message());
  return out;
}

std::vector<float> parse_lora(const Fields& body, size_t n_adapters) {
  const json* list = body.get("lora");
  if (list == nullptr) return {};
  if (!list->is_array()) body.fail("lora", "'lora' must be an array of {\"id\": N, \"scale\": S} objects");
  if (n_adapters == 0 && !list->empty())
    body.fail("lora", "this server has no LoRA adapters (start it with --lora FILE to load some)");
  std::vector<float> scales(n_adapters, 0.0f);
  std::vector<bool> seen(n_adapters, false);
  for (size_t i = 0; i < list->size(); ++i) {
    const Fields item = Fields::of((*list)[i], element_path("lora", i));
    if (!item.has("id")) item.fail("id", "'" + item.path("id") + "' is required: the adapter's index in --lora order");
    const int64_t id = item.integer("id", 0, static_cast<int64_t>(n_adapters) - 1, 0);
    if (seen[id]) item.fail("id", "adapter " + std::to_string(id) + " is listed twice");
    seen[id] = true;
    scales[id] = static_cast<float>(item.number("scale", -1e4, 1e4, 1.0));
  }
  return scales;
}

}  // namespace osprey::server
