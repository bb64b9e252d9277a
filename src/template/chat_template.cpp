#include "template/chat_template.h"

#include "core/log.h"
#include "formats/gguf.h"
#include "template/interpreter.h"
#include "template/lexer.h"
#include "template/parser.h"
#include "template/value.h"

namespace osprey {
namespace {

// ChatML. Tools, when a request offers them, are listed in the system turn,
// and an assistant's tool calls are written as <tool_call> blocks of JSON,
// the convention of the Hermes and Qwen models that speak ChatML. A message
// whose content is null (an assistant turn that only calls tools) has none.
const char* kChatMl =
    "{%- set rest = messages %}"
    "{%- if tools %}"
    "{{- '<|im_start|>system\\n' }}"
    "{%- if messages and messages[0]['role'] == 'system' %}"
    "{{- (messages[0]['content'] or '') + '\\n\\n' }}{%- set rest = messages[1:] %}"
    "{%- endif %}"
    "{{- 'These functions can be called, described as JSON within <tools></tools>:\\n<tools>' }}"
    "{%- for tool in tools %}{{- '\\n' + (tool | tojson) }}{%- endfor %}"
    "{{- '\\n</tools>\\n\\nTo call one, write <tool_call>{\"name\": NAME, \"arguments\": {...}}</tool_call>.<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in rest %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + (message['content'] or '') }}"
    "{%- for call in message['tool_calls'] or [] %}"
    "{{- '\\n<tool_call>\\n{\"name\": ' + (call['function']['name'] | tojson) + ', \"arguments\": ' }}"
    "{%- if call['function']['arguments'] is string %}{{- call['function']['arguments'] }}"
    "{%- else %}{{- call['function']['arguments'] | tojson }}{%- endif %}"
    "{{- '}\\n</tool_call>' }}"
    "{%- endfor %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

std::string where(const std::string& name, const tmpl::TemplateError& e) {
  return "chat template '" + name + "'" + (e.line() > 0 ? ", line " + std::to_string(e.line()) : "") + ": " +
         e.what();
}

}  // namespace

Expected<ChatTemplate> ChatTemplate::parse(const std::string& source, std::string name) {
  ChatTemplate t;
  t.name_ = std::move(name);
  t.source_ = source;
  try {
    t.program_ = std::make_shared<const tmpl::Program>(tmpl::parse(tmpl::lex(source)));
  } catch (const tmpl::TemplateError& e) {
    return InvalidArgument(where(t.name_, e));
  }
  return t;
}

ChatTemplate ChatTemplate::default_template() {
  auto parsed = parse(kChatMl, default_name());
  OSPREY_CHECK(parsed.ok());
  return std::move(parsed).value();
}

Expected<ChatTemplate> ChatTemplate::from_gguf(const GgufFile& file) {
  const GgufValue* value = file.find("tokenizer.chat_template");
  if (value == nullptr) {
    log::info(file.path() + " has no chat template; using the built-in '" + default_name() + "' template");
    return default_template();
  }
  if (value->type != GgufType::kString)
    return CorruptFile(file.path() + ": tokenizer.chat_template is not a string");
  return parse(value->s, "tokenizer.chat_template");
}

Expected<std::string> ChatTemplate::render(const ChatContext& context) const {
  nlohmann::ordered_json vars = context.extra.is_object() ? context.extra : nlohmann::ordered_json::object();
  vars["messages"] = context.messages;
  if (!context.tools.is_null()) vars["tools"] = context.tools;
  vars["add_generation_prompt"] = context.add_generation_prompt;
  vars["bos_token"] = context.bos_token;
  vars["eos_token"] = context.eos_token;
  return render_variables(vars);
}

Expected<std::string> ChatTemplate::render_variables(const nlohmann::ordered_json& variables) const {
  try {
    return tmpl::render(*program_, tmpl::from_json(variables));
  } catch (const tmpl::TemplateError& e) {
    return InvalidArgument(where(name_, e));
  }
}

namespace {

using ojson = nlohmann::ordered_json;

// Records which field is wrong and returns the error naming it.
Status bad_field(std::string* bad, const std::string& field, const std::string& message) {
  if (bad != nullptr) *bad = field;
  return InvalidArgument(message);
}

bool optional_string(const ojson& object, const char* key) {
  return !object.contains(key) || object[key].is_null() || object[key].is_string();
}

Status check_tool_calls(const ojson& calls, const std::string& field, std::string* bad) {
  if (!calls.is_array()) return bad_field(bad, field, "'" + field + "' must be an array of tool calls");
  for (size_t i = 0; i < calls.size(); ++i) {
    const std::string f = field + "[" + std::to_string(i) + "]";
    const ojson& c = calls[i];
    if (!c.is_object()) return bad_field(bad, f, "'" + f + "' must be an object");
    if (!optional_string(c, "id")) return bad_field(bad, f + ".id", "'" + f + ".id' must be a string");
    if (c.contains("type") && !c["type"].is_null() && c["type"] != "function")
      return bad_field(bad, f + ".type", "'" + f + ".type' must be 'function'");
    if (!c.contains("function") || !c["function"].is_object())
      return bad_field(bad, f + ".function", "'" + f + ".function' must be an object with 'name' and 'arguments'");
    const ojson& fn = c["function"];
    if (!fn.contains("name") || !fn["name"].is_string())
      return bad_field(bad, f + ".function.name", "'" + f + ".function.name' must be a string");
    if (fn.contains("arguments") && !fn["arguments"].is_string() && !fn["arguments"].is_object())
      return bad_field(bad, f + ".function.arguments", "'" + f + ".function.arguments' must be a string (JSON text) or an object");
  }
  return Status::Ok();
}

}  // namespace

Expected<nlohmann::ordered_json> normalize_messages(const nlohmann::ordered_json& messages, std::string* bad) {
  if (!messages.is_array()) return bad_field(bad, "messages", "'messages' must be an array");
  static const char* kRoles[] = {"system", "developer", "user", "assistant", "tool", "function"};
  ojson out = ojson::array();
  for (size_t k = 0; k < messages.size(); ++k) {
    const auto& m = messages[k];
    const std::string field = "messages[" + std::to_string(k) + "]";
    if (!m.is_object()) return bad_field(bad, field, "'" + field + "' must be an object");
    if (!m.contains("role") || !m["role"].is_string())
      return bad_field(bad, field + ".role", "'" + field + ".role' must be a string");
    const std::string& role = m["role"].get_ref<const std::string&>();
    bool known = false;
    for (const char* r : kRoles) known |= role == r;
    if (!known)
      return bad_field(bad, field + ".role", "'" + field + ".role' is '" + role +
                                                 "'; expected one of system, developer, user, assistant, tool");
    for (const char* key : {"name", "tool_call_id", "reasoning_content"})
      if (!optional_string(m, key))
        return bad_field(bad, field + "." + key, "'" + field + "." + key + "' must be a string");
    if (m.contains("tool_calls") && !m["tool_calls"].is_null())
      if (Status st = check_tool_calls(m["tool_calls"], field + ".tool_calls", bad); !st.ok()) return st;
    ojson msg = m;
    if (m.contains("content") && m["content"].is_array()) {
      std::string text;
      for (size_t p = 0; p < m["content"].size(); ++p) {
        const auto& part = m["content"][p];
        const std::string part_field = field + ".content[" + std::to_string(p) + "]";
        if (!part.is_object() || !part.contains("type") || !part["type"].is_string())
          return bad_field(bad, part_field, "'" + part_field + "' must be an object with a 'type'");
        if (part["type"] != "text")
          return bad_field(bad, part_field + ".type", "'" + part_field + ".type' is '" +
                                                          part["type"].get_ref<const std::string&>() +
                                                          "'; only text parts are supported");
        if (!part.contains("text") || !part["text"].is_string())
          return bad_field(bad, part_field + ".text", "'" + part_field + ".text' must be a string");
        text += part["text"].get_ref<const std::string&>();
      }
      msg["content"] = text;
    } else if (m.contains("content") && !m["content"].is_string() && !m["content"].is_null()) {
      return bad_field(bad, field + ".content", "'" + field + ".content' must be a string, an array of content parts or null");
    }
    out.push_back(std::move(msg));
  }
  return out;
}

}  // namespace osprey
