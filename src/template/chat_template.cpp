#include "template/chat_template.h"

#include "core/log.h"
#include "formats/gguf.h"
#include "template/interpreter.h"
#include "template/lexer.h"
#include "template/parser.h"
#include "template/value.h"

namespace osprey {
namespace {

const char* kChatMl =
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
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

Expected<nlohmann::ordered_json> normalize_messages(const nlohmann::ordered_json& messages) {
  if (!messages.is_array()) return InvalidArgument("'messages' must be an array");
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (size_t k = 0; k < messages.size(); ++k) {
    const auto& m = messages[k];
    const std::string field = "messages[" + std::to_string(k) + "]";
    if (!m.is_object()) return InvalidArgument("'" + field + "' must be an object");
    if (!m.contains("role") || !m["role"].is_string()) return InvalidArgument("'" + field + ".role' must be a string");
    nlohmann::ordered_json msg = m;
    if (m.contains("content") && m["content"].is_array()) {
      std::string text;
      for (size_t p = 0; p < m["content"].size(); ++p) {
        const auto& part = m["content"][p];
        const std::string part_field = field + ".content[" + std::to_string(p) + "]";
        if (!part.is_object() || !part.contains("type") || !part["type"].is_string())
          return InvalidArgument("'" + part_field + "' must be an object with a 'type'");
        if (part["type"] != "text")
          return InvalidArgument("'" + part_field + ".type' is '" + part["type"].get<std::string>() +
                                 "'; only text parts are supported");
        if (!part.contains("text") || !part["text"].is_string())
          return InvalidArgument("'" + part_field + ".text' must be a string");
        text += part["text"].get<std::string>();
      }
      msg["content"] = text;
    } else if (m.contains("content") && !m["content"].is_string() && !m["content"].is_null()) {
      return InvalidArgument("'" + field + ".content' must be a string, an array of content parts or null");
    }
    out.push_back(std::move(msg));
  }
  return out;
}

}  // namespace osprey
