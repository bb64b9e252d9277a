// Behaviour the reference comparison cannot show: error messages that name
// the construct and the line, limits against hostile templates, message
// normalization and the default template.
#include <gtest/gtest.h>

#include "template/chat_template.h"

namespace osprey {
namespace {

using json = nlohmann::ordered_json;

Expected<std::string> render(const std::string& source, const json& vars = json::object()) {
  OSPREY_ASSIGN_OR_RETURN(ChatTemplate t, ChatTemplate::parse(source, "test"));
  return t.render_variables(vars);
}

std::string error_of(const std::string& source, const json& vars = json::object()) {
  auto r = render(source, vars);
  EXPECT_FALSE(r.ok()) << "rendered: " << *r;
  return r.ok() ? "" : r.status().message();
}

TEST(TemplateErrors, NameTheConstructAndLine) {
  EXPECT_NE(error_of("line one\n{% include 'x.jinja' %}").find("unsupported statement '{% include %}'"), std::string::npos);
  EXPECT_NE(error_of("a\nb\n{% include 'x' %}").find("line 3"), std::string::npos);
  EXPECT_NE(error_of("\n{{ 'x' | frobnicate }}").find("unsupported filter 'frobnicate'"), std::string::npos);
  EXPECT_NE(error_of("\n{{ 'x' | frobnicate }}").find("line 2"), std::string::npos);
  EXPECT_NE(error_of("{% if x is shiny %}{% endif %}").find("unsupported test 'shiny'"), std::string::npos);
  EXPECT_NE(error_of("{% if true %}open").find("missing {% endif %}"), std::string::npos);
  EXPECT_NE(error_of("{{ 1 + }}").find("expected an expression"), std::string::npos);
  EXPECT_NE(error_of("{{ 'unterminated }}").find("unterminated string"), std::string::npos);
  EXPECT_NE(error_of("{{ x").find("unterminated {{"), std::string::npos);
  EXPECT_NE(error_of("{# never closed").find("unterminated comment"), std::string::npos);
  EXPECT_NE(error_of("{{ raise_exception('Roles must alternate') }}").find("Roles must alternate"), std::string::npos);
  EXPECT_NE(error_of("{{ nothing() }}").find("'nothing' is not a function"), std::string::npos);
  EXPECT_NE(error_of("{{ 1 / 0 }}").find("division by zero"), std::string::npos);
  EXPECT_NE(error_of("{{ 99999999999999999999999 }}").find("out of range"), std::string::npos);
}

TEST(TemplateLimits, HostileTemplatesStopWithAnError) {
  // Exponential output.
  EXPECT_NE(error_of("{% set s = 'xxxxxxxxxxxxxxxx' %}{% for i in range(40) %}{% set s = s + s %}{% endfor %}{{ s }}")
                .find("limit"),
            std::string::npos);
  // A loop that runs too long.
  EXPECT_NE(error_of("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}").find("steps"),
            std::string::npos);
  // Unbounded macro recursion.
  EXPECT_NE(error_of("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}").find("nested deeper"), std::string::npos);
  // Parser recursion.
  EXPECT_NE(error_of(std::string("{{ ") + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}").find("nesting"),
            std::string::npos);
  EXPECT_NE(error_of("{{ " + std::string(5000, '-') + "1 }}").find("nesting"), std::string::npos);
  std::string nested_ifs;
  for (int k = 0; k < 1000; ++k) nested_ifs += "{% if true %}";
  EXPECT_NE(error_of(nested_ifs).find("nesting"), std::string::npos);
}

TEST(TemplateLimits, ArbitraryBytesNeverCrash) {
  // Every prefix of a real-looking template either renders or fails cleanly.
  const std::string source =
      "{%- for m in messages %}{{ '<|' + m['role'] + '|>\\n' + m.content | trim }}{% if loop.last %}!{% endif %}"
      "{%- endfor %}{{ ns.x if ns is defined else 'none' }}";
  json vars = {{"messages", json::array({{{"role", "user"}, {"content", " hi "}}})}};
  for (size_t n = 0; n <= source.size(); ++n) (void)render(source.substr(0, n), vars);
  EXPECT_EQ(*render(source, vars), "<|user|>\nhi!none");
}

TEST(ChatTemplate, NormalizesContentParts) {
  json messages = json::parse(R"([{"role":"user","content":[{"type":"text","text":"Hello, "},{"type":"text","text":"world"}]}])");
  auto n = normalize_messages(messages);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ((*n)[0]["content"], "Hello, world");

  auto bad_part = normalize_messages(json::parse(R"([{"role":"user","content":[{"type":"image_url","image_url":{}}]}])"));
  ASSERT_FALSE(bad_part.ok());
  EXPECT_NE(bad_part.status().message().find("messages[0].content[0].type"), std::string::npos);
  auto no_role = normalize_messages(json::parse(R"([{"content":"x"}])"));
  ASSERT_FALSE(no_role.ok());
  EXPECT_NE(no_role.status().message().find("messages[0].role"), std::string::npos);
  auto bad_content = normalize_messages(json::parse(R"([{"role":"user","content":5}])"));
  ASSERT_FALSE(bad_content.ok());
  EXPECT_NE(bad_content.status().message().find("messages[0].content"), std::string::npos);
  EXPECT_FALSE(normalize_messages(json::object()).ok());
}

TEST(ChatTemplate, NormalizeNamesTheBadFieldOfToolCalls) {
  std::string field;
  auto bad_args = normalize_messages(json::parse(
      R"([{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":5}}]}])"),
      &field);
  ASSERT_FALSE(bad_args.ok());
  EXPECT_EQ(field, "messages[0].tool_calls[0].function.arguments");
  auto bad_name = normalize_messages(json::parse(R"([{"role":"tool","tool_call_id":7,"content":"x"}])"), &field);
  ASSERT_FALSE(bad_name.ok());
  EXPECT_EQ(field, "messages[0].tool_call_id");
  auto bad_role = normalize_messages(json::parse(R"([{"role":"wizard","content":"x"}])"), &field);
  ASSERT_FALSE(bad_role.ok());
  EXPECT_EQ(field, "messages[0].role");
  EXPECT_TRUE(normalize_messages(json::parse(
      R"([{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":{"a":1}}}]}])")).ok());
}

TEST(ChatTemplate, DefaultRendersToolsAndToolCalls) {
  ChatTemplate t = ChatTemplate::default_template();
  ChatContext ctx;
  ctx.messages = json::parse(R"([{"role":"system","content":"S"},{"role":"user","content":"U"},
      {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"get","arguments":"{\"x\": 1}"}}]},
      {"role":"tool","tool_call_id":"c1","content":"R"}])");
  ctx.tools = json::parse(R"([{"type":"function","function":{"name":"get"}}])");
  ctx.add_generation_prompt = false;
  auto text = t.render(ctx);
  ASSERT_TRUE(text.ok()) << text.status().message();
  EXPECT_EQ(text->find("<|im_start|>system\nS\n\n"), 0u) << *text;
  EXPECT_NE(text->find(R"(<tools>
{"type": "function", "function": {"name": "get"}}
</tools>)"), std::string::npos) << *text;
  EXPECT_NE(text->find("<|im_start|>assistant\n\n<tool_call>\n{\"name\": \"get\", \"arguments\": {\"x\": 1}}\n</tool_call><|im_end|>\n"),
            std::string::npos) << *text;
  EXPECT_NE(text->find("<|im_start|>tool\nR<|im_end|>\n"), std::string::npos) << *text;
  // Exactly one system turn: the request's system text moves into the tools turn.
  EXPECT_EQ(text->find("<|im_start|>system", 1), std::string::npos) << *text;
}

TEST(ChatTemplate, DefaultIsChatMl) {
  ChatTemplate t = ChatTemplate::default_template();
  EXPECT_EQ(t.name(), "chatml");
  ChatContext ctx;
  ctx.messages = json::parse(R"([{"role":"system","content":"S"},{"role":"user","content":"U"}])");
  ctx.add_generation_prompt = true;
  EXPECT_EQ(*t.render(ctx), "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n");
  ctx.add_generation_prompt = false;
  EXPECT_EQ(*t.render(ctx), "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n");
}

TEST(ChatTemplate, ContextVariablesReachTheTemplate) {
  auto t = ChatTemplate::parse("{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}{{ eos_token }}"
                               "{% if tools %}{{ tools | length }}{% endif %}{{ date_string }}",
                               "vars");
  ASSERT_TRUE(t.ok());
  ChatContext ctx;
  ctx.messages = json::parse(R"([{"role":"user","content":"mid"}])");
  ctx.bos_token = "<s>";
  ctx.eos_token = "</s>";
  ctx.tools = json::parse(R"([{"type":"function"},{"type":"function"}])");
  ctx.extra = {{"date_string", " today"}};
  EXPECT_EQ(*t->render(ctx), "<s>mid</s>2 today");
}

}  // namespace
}  // namespace osprey
