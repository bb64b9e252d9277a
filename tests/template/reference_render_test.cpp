// Chat templates rendered by osprey must equal what @huggingface/jinja (the
// renderer Hugging Face's JS library uses) produces for the same context.
// The reference runs live through Node (tests/js/render_templates.mjs); the
// packages come from `npm ci` in scripts/setup.sh.
#include <gtest/gtest.h>

#include <filesystem>

#include "template/chat_template.h"
#include "test_util.h"

namespace osprey {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

const std::string kJsDir = std::string(OSPREY_SOURCE_DIR) + "/tests/js";
const std::string kChatData = std::string(OSPREY_SOURCE_DIR) + "/tests/data/chat";

// Why the reference can't run here, or "" when it can.
std::string reference_unavailable() {
  if (test::run_command("node --version").exit_code != 0) return "node is not installed";
  if (!fs::exists(kJsDir + "/node_modules/@huggingface/jinja"))
    return "tests/js/node_modules is missing (scripts/setup.sh runs npm ci there)";
  return "";
}

json run_reference(const std::string& args) {
  auto r = test::run_command("node " + kJsDir + "/render_templates.mjs " + args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return json::parse(r.out);
}

// A readable first difference for long prompts.
std::string first_difference(const std::string& want, const std::string& got) {
  size_t k = 0;
  while (k < want.size() && k < got.size() && want[k] == got[k]) ++k;
  auto around = [&](const std::string& s) { return json(s.substr(k < 40 ? 0 : k - 40, 100)).dump(-1, ' ', false, json::error_handler_t::replace); };
  return "first difference at byte " + std::to_string(k) + "\n  reference: " + around(want) + "\n  osprey:    " + around(got);
}

TEST(ChatTemplateReference, RealModelTemplatesOverConversations) {
  if (auto why = reference_unavailable(); !why.empty()) GTEST_SKIP() << why;
  const std::string dir = test::shared_testdata_dir();
  if (dir.empty()) GTEST_SKIP() << "../shared/testdata is absent; the model templates live there";
  const std::string templates = dir + "/templates";
  json conversations = json::parse(test::read_file(kChatData + "/conversations.json"));
  json expected = run_reference("models " + templates + " " + kChatData + "/conversations.json");
  ASSERT_EQ(expected.size(), 2 * conversations.size() * std::distance(fs::directory_iterator(templates), fs::directory_iterator{}));

  int compared = 0, errors_agreed = 0;
  for (const auto& want : expected) {
    const std::string file = want["template"];
    const std::string conv_name = want["conversation"];
    SCOPED_TRACE(file + " / " + conv_name + " / add_generation_prompt=" + (want["add_generation_prompt"].get<bool>() ? "true" : "false"));
    auto tmpl = ChatTemplate::parse(test::read_file(templates + "/" + file), file);
    ASSERT_TRUE(tmpl.ok()) << tmpl.status().message();
    ChatContext ctx;
    for (const auto& c : conversations) {
      if (c["name"] != conv_name) continue;
      ctx.messages = c["messages"];
      if (c.contains("tools")) ctx.tools = c["tools"];
    }
    ctx.add_generation_prompt = want["add_generation_prompt"];
    ctx.bos_token = "<s>";
    ctx.eos_token = "</s>";
    auto got = tmpl->render(ctx);
    if (want.contains("error")) {
      EXPECT_FALSE(got.ok()) << "the reference failed with \"" << want["error"].get<std::string>()
                             << "\" but osprey rendered:\n" << *got;
      ++errors_agreed;
      continue;
    }
    ASSERT_TRUE(got.ok()) << got.status().message();
    const std::string& text = want["output"].get_ref<const std::string&>();
    EXPECT_EQ(*got, text) << first_difference(text, *got);
    ++compared;
  }
  // Both kinds of case must really occur, or the test checks less than it claims.
  EXPECT_GT(compared, 100);
  EXPECT_GT(errors_agreed, 0);
}

TEST(ChatTemplateReference, LanguageSnippets) {
  if (auto why = reference_unavailable(); !why.empty()) GTEST_SKIP() << why;
  json snippets = json::parse(test::read_file(kChatData + "/snippets.json"));
  json expected = run_reference("snippets " + kChatData + "/snippets.json");
  ASSERT_EQ(expected.size(), snippets.size());
  for (size_t k = 0; k < snippets.size(); ++k) {
    const json& s = snippets[k];
    SCOPED_TRACE(s["name"].get<std::string>());
    auto tmpl = ChatTemplate::parse(s["template"], s["name"]);
    Expected<std::string> got = tmpl.ok() ? tmpl->render_variables(s["context"]) : Expected<std::string>(tmpl.status());
    if (s.contains("beyond_reference")) {
      // Jinja features the reference lacks (it fails); the expected text is
      // what Python's Jinja2 prints.
      ASSERT_TRUE(expected[k].contains("error")) << "the reference now supports this; compare against it instead";
      ASSERT_TRUE(got.ok()) << got.status().message();
      EXPECT_EQ(*got, s["beyond_reference"].get<std::string>());
    } else if (s.contains("differs_from_reference")) {
      // Where the reference departs from Jinja's Python semantics, osprey
      // follows Python; the snippet says why.
      ASSERT_TRUE(expected[k].contains("output")) << expected[k].dump();
      EXPECT_NE(expected[k]["output"], s["differs_from_reference"]) << "the reference now agrees with Python";
      ASSERT_TRUE(got.ok()) << got.status().message();
      EXPECT_EQ(*got, s["differs_from_reference"].get<std::string>()) << s["why"].get<std::string>();
    } else if (expected[k].contains("error")) {
      EXPECT_FALSE(got.ok()) << "the reference failed with \"" << expected[k]["error"].get<std::string>()
                             << "\" but osprey rendered: " << *got;
    } else {
      ASSERT_TRUE(got.ok()) << got.status().message();
      EXPECT_EQ(*got, expected[k]["output"].get<std::string>());
    }
  }
}

}  // namespace
}  // namespace osprey
