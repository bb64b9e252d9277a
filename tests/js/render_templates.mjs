// Renders templates with @huggingface/jinja, the renderer Hugging Face's JS
// library uses, and prints the results as JSON for osprey's tests to compare
// against. Two modes:
//   node render_templates.mjs models TEMPLATE_DIR CONVERSATIONS.json
//     every *.jinja template over every conversation, with and without the
//     generation prompt: [{template, conversation, add_generation_prompt, output | error}]
//   node render_templates.mjs snippets SNIPPETS.json
//     [{name, template, context}] -> [{name, output | error}]
import { Template } from "@huggingface/jinja";
import fs from "node:fs";
import path from "node:path";

function render(source, context) {
  try {
    return { output: new Template(source).render(context) };
  } catch (e) {
    return { error: String(e.message ?? e) };
  }
}

const [mode, ...args] = process.argv.slice(2);
const results = [];
if (mode === "models") {
  const [templateDir, conversationsFile] = args;
  const conversations = JSON.parse(fs.readFileSync(conversationsFile, "utf8"));
  for (const file of fs.readdirSync(templateDir).filter((f) => f.endsWith(".jinja")).sort()) {
    const source = fs.readFileSync(path.join(templateDir, file), "utf8");
    for (const conversation of conversations) {
      for (const addGenerationPrompt of [true, false]) {
        const context = {
          messages: conversation.messages,
          add_generation_prompt: addGenerationPrompt,
          bos_token: "<s>",
          eos_token: "</s>",
        };
        if (conversation.tools) context.tools = conversation.tools;
        results.push({
          template: file,
          conversation: conversation.name,
          add_generation_prompt: addGenerationPrompt,
          ...render(source, context),
        });
      }
    }
  }
} else if (mode === "snippets") {
  for (const snippet of JSON.parse(fs.readFileSync(args[0], "utf8"))) {
    results.push({ name: snippet.name, ...render(snippet.template, snippet.context) });
  }
} else {
  console.error("usage: render_templates.mjs models TEMPLATE_DIR CONVERSATIONS.json | snippets SNIPPETS.json");
  process.exit(2);
}
process.stdout.write(JSON.stringify(results, null, 1));
