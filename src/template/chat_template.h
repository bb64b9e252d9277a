// A model's chat template: turns OpenAI-style messages into the prompt text
// the model was trained on, by running the model's own Jinja template.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "osprey/status.h"

namespace osprey {

class GgufFile;

namespace tmpl {
struct Program;
}

struct ChatContext {
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  nlohmann::ordered_json tools;  // null when the request has none
  bool add_generation_prompt = true;
  std::string bos_token;
  std::string eos_token;
  // Further variables some templates read (e.g. "date_string").
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();
};

class ChatTemplate {
 public:
  // Parses `source` once; `name` appears in error messages.
  static Expected<ChatTemplate> parse(const std::string& source, std::string name);

  // The template used when a model carries none: ChatML, which most
  // instruction-tuned open models of the Qwen/SmolLM lineage speak.
  static const char* default_name() { return "chatml"; }
  static ChatTemplate default_template();

  // The template in a GGUF file's `tokenizer.chat_template`, or the default
  // (logged) when the file has none.
  static Expected<ChatTemplate> from_gguf(const GgufFile& file);

  Expected<std::string> render(const ChatContext& context) const;
  // Renders with exactly these variables (a JSON object) and no others
  // beyond the built-in functions.
  Expected<std::string> render_variables(const nlohmann::ordered_json& variables) const;

  const std::string& name() const { return name_; }
  const std::string& source() const { return source_; }

 private:
  std::string name_;
  std::string source_;
  std::shared_ptr<const tmpl::Program> program_;
};

// Messages as the template expects them: an OpenAI content-part array
// ([{"type":"text","text":...}, ...]) becomes one string. Every field a
// template reads is checked for its type (role, content, name, tool_calls
// with their function name and arguments, tool_call_id, reasoning_content),
// so a template only ever sees OpenAI-shaped messages. Returns an error
// naming the offending field, and sets `*bad_field` to its path.
Expected<nlohmann::ordered_json> normalize_messages(const nlohmann::ordered_json& messages,
                                                    std::string* bad_field = nullptr);

}  // namespace osprey
