#include <cstdio>
#include <fstream>
#include <sstream>

#include "cli/commands.h"
#include "formats/gguf.h"
#include "template/chat_template.h"
#include "tokenizer/vocab.h"

namespace osprey::cli {

void register_template(CLI::App& app) {
  struct Opts {
    std::string model, template_file, messages, tools;
    bool add_generation_prompt = false;
    std::optional<std::string> bos, eos;
  };
  auto opts = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("template", "Print exactly the prompt a chat template makes of a conversation");
  auto* m = cmd->add_option("-m,--model", opts->model, "GGUF file whose tokenizer.chat_template (and BOS/EOS text) to use");
  auto* t = cmd->add_option("--template", opts->template_file, "A .jinja template file instead of a model's");
  m->excludes(t);
  cmd->add_option("--messages", opts->messages,
                  "JSON file: an array of {role, content} messages, or an object with \"messages\" and any other "
                  "template variables")->required();
  cmd->add_option("--tools", opts->tools, "JSON file with an array of tool definitions");
  cmd->add_flag("--add-generation-prompt", opts->add_generation_prompt, "End with the opening of the assistant's turn");
  cmd->add_option("--bos-token", opts->bos, "BOS text (default: the model's, or empty with --template)");
  cmd->add_option("--eos-token", opts->eos, "EOS text (default: the model's, or empty with --template)");
  cmd->callback([opts] {
    if (opts->model.empty() && opts->template_file.empty()) throw Failure{"give -m MODEL or --template FILE"};
    ChatContext ctx;
    std::optional<ChatTemplate> tmpl;
    if (!opts->model.empty()) {
      auto file = GgufFile::open(opts->model);
      if (!file.ok()) throw Failure{file.status().message()};
      auto parsed = ChatTemplate::from_gguf(*file);
      if (!parsed.ok()) throw Failure{parsed.status().message()};
      tmpl = std::move(parsed).value();
      auto vocab = Vocab::from_gguf(*file);
      if (vocab.ok()) {
        ctx.bos_token = vocab->text_of(vocab->bos);
        ctx.eos_token = vocab->text_of(vocab->eos);
      }
    } else {
      auto parsed = ChatTemplate::parse(read_text(opts->template_file), opts->template_file);
      if (!parsed.ok()) throw Failure{parsed.status().message()};
      tmpl = std::move(parsed).value();
    }
    nlohmann::ordered_json doc = read_json(opts->messages);
    nlohmann::ordered_json messages = doc;
    if (doc.is_object()) {
      if (!doc.contains("messages")) throw Failure{opts->messages + ": the object has no \"messages\""};
      messages = doc["messages"];
      for (auto it = doc.begin(); it != doc.end(); ++it)
        if (it.key() != "messages") ctx.extra[it.key()] = it.value();
    }
    auto normalized = normalize_messages(messages);
    if (!normalized.ok()) throw Failure{opts->messages + ": " + normalized.status().message()};
    ctx.messages = std::move(normalized).value();
    if (!opts->tools.empty()) ctx.tools = read_json(opts->tools);
    ctx.add_generation_prompt = opts->add_generation_prompt;
    if (opts->bos) ctx.bos_token = *opts->bos;
    if (opts->eos) ctx.eos_token = *opts->eos;
    auto text = tmpl->render(ctx);
    if (!text.ok()) throw Failure{text.status().message()};
    std::fwrite(text->data(), 1, text->size(), stdout);
  });
}

}  // namespace osprey::cli
