#include "server/reply_parser.h"

#include <gtest/gtest.h>

namespace osprey::server {
namespace {

struct Split {
  std::string content, reasoning;
  std::vector<std::pair<std::string, std::string>> calls;  // name, arguments
  std::vector<int> indices;
  bool operator==(const Split& o) const {
    return content == o.content && reasoning == o.reasoning && calls == o.calls && indices == o.indices;
  }
};

std::ostream& operator<<(std::ostream& os, const Split& s) {
  os << "content=" << s.content << " reasoning=" << s.reasoning << " calls=";
  for (const auto& [n, a] : s.calls) os << n << a << ";";
  return os;
}

// The reply fed in pieces of `step` bytes (0: whole), deltas gathered.
Split run(ReplyFormat f, const std::string& reply, size_t step, bool parallel = true) {
  ReplyParser p(f, {"get_weather", "get_time"}, parallel);
  Split s;
  auto take = [&](const std::vector<ReplyDelta>& ds) {
    for (const auto& d : ds) {
      if (d.kind == ReplyDelta::kContent) s.content += d.text;
      else if (d.kind == ReplyDelta::kReasoning) s.reasoning += d.text;
      else {
        s.calls.emplace_back(d.call.name, d.call.arguments);
        s.indices.push_back(d.index);
        EXPECT_EQ(d.call.id.rfind("call_", 0), 0u);
      }
    }
  };
  if (step == 0) {
    take(p.push(reply));
  } else {
    for (size_t i = 0; i < reply.size(); i += step) take(p.push(reply.substr(i, step)));
  }
  take(p.finish());
  return s;
}

// The same result whole, byte by byte, and split at every point.
Split parse(ReplyFormat f, const std::string& reply, bool parallel = true) {
  const Split whole = run(f, reply, 0, parallel);
  EXPECT_EQ(run(f, reply, 1, parallel), whole) << "byte by byte";
  EXPECT_EQ(run(f, reply, 3, parallel), whole) << "three bytes at a time";
  for (size_t cut = 1; cut < reply.size(); ++cut) {
    ReplyParser p(f, {"get_weather", "get_time"}, parallel);
    Split s;
    for (auto* ds : {new std::vector<ReplyDelta>(p.push(reply.substr(0, cut))), new std::vector<ReplyDelta>(p.push(reply.substr(cut))),
                     new std::vector<ReplyDelta>(p.finish())}) {
      for (const auto& d : *ds) {
        if (d.kind == ReplyDelta::kContent) s.content += d.text;
        else if (d.kind == ReplyDelta::kReasoning) s.reasoning += d.text;
        else s.calls.emplace_back(d.call.name, d.call.arguments), s.indices.push_back(d.index);
      }
      delete ds;
    }
    EXPECT_EQ(s, whole) << "cut at " << cut;
  }
  return whole;
}

ReplyFormat tools(ToolFormat t) {
  ReplyFormat f;
  f.tools = t;
  return f;
}

TEST(ReplyParser, HermesCallsLeaveTheContent) {
  const Split s = parse(tools(ToolFormat::kHermes),
                        "Let me check.<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>"
                        "<tool_call>{\"name\":\"get_time\",\"arguments\":\"{}\"}</tool_call>");
  EXPECT_EQ(s.content, "Let me check.");
  ASSERT_EQ(s.calls.size(), 2u);
  EXPECT_EQ(s.calls[0], (std::pair<std::string, std::string>{"get_weather", "{\"city\":\"Paris\"}"}));
  EXPECT_EQ(s.calls[1], (std::pair<std::string, std::string>{"get_time", "{}"}));
  EXPECT_EQ(s.indices, (std::vector<int>{0, 1}));
  // parallel_tool_calls false: the first call only.
  const Split one = parse(tools(ToolFormat::kHermes), "<tool_call>{\"name\":\"get_time\",\"arguments\":{}}</tool_call><tool_call>{\"name\":\"get_weather\",\"arguments\":{}}</tool_call>", false);
  ASSERT_EQ(one.calls.size(), 1u);
  EXPECT_EQ(one.calls[0].first, "get_time");
}

TEST(ReplyParser, UnknownFunctionsAndBrokenJsonStayInTheContent) {
  const std::string unknown = "<tool_call>{\"name\": \"rm_rf\", \"arguments\": {}}</tool_call>";
  EXPECT_EQ(parse(tools(ToolFormat::kHermes), unknown).content, unknown);
  const std::string broken = "<tool_call>{\"name\": \"get_time\", </tool_call>";
  EXPECT_EQ(parse(tools(ToolFormat::kHermes), broken).content, broken);
  // Cut off inside a call: what was written is kept.
  EXPECT_EQ(parse(tools(ToolFormat::kHermes), "ok <tool_call>{\"name\": \"get").content, "ok <tool_call>{\"name\": \"get");
  EXPECT_EQ(parse(tools(ToolFormat::kHermes), "a < b and <tool").content, "a < b and <tool");
}

TEST(ReplyParser, MistralLlamaAndFunctionary) {
  const Split m = parse(tools(ToolFormat::kMistral), "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}, {\"name\": \"get_time\", \"arguments\": {}}]");
  ASSERT_EQ(m.calls.size(), 2u);
  EXPECT_EQ(m.calls[0].second, "{\"city\":\"Oslo\"}");
  EXPECT_EQ(m.content, "");
  const Split l = parse(tools(ToolFormat::kLlama3), "  {\"name\": \"get_weather\", \"parameters\": {\"city\": \"Rome\"}}");
  ASSERT_EQ(l.calls.size(), 1u);
  EXPECT_EQ(l.calls[0].second, "{\"city\":\"Rome\"}");
  const Split tag = parse(tools(ToolFormat::kLlama3), "<|python_tag|>{\"name\": \"get_time\", \"parameters\": {}}; {\"name\": \"get_weather\", \"parameters\": {\"city\": \"Bonn\"}}");
  EXPECT_EQ(tag.calls.size(), 2u);
  EXPECT_EQ(parse(tools(ToolFormat::kLlama3), "Hello {world}").content, "Hello {world}");
  EXPECT_EQ(parse(tools(ToolFormat::kLlama3), "{not a call}").content, "{not a call}");
  const Split f = parse(tools(ToolFormat::kFunctionary), ">>>all\nSure, one moment.>>>get_weather\n{\"city\": \"Lima\"}");
  EXPECT_EQ(f.content, "Sure, one moment.");
  ASSERT_EQ(f.calls.size(), 1u);
  EXPECT_EQ(f.calls[0].second, "{\"city\":\"Lima\"}");
  const Split forced = parse(tools(ToolFormat::kForced), " {\"name\": \"get_time\", \"arguments\": {}}");
  ASSERT_EQ(forced.calls.size(), 1u);
}

TEST(ReplyParser, ReasoningIsSplitFromTheAnswer) {
  ReplyFormat r;
  r.reasoning = true;
  const Split s = parse(r, "<think>\nThe user wants a number.\n</think>\n\n42 is the answer.");
  EXPECT_EQ(s.reasoning, "\nThe user wants a number.\n");
  EXPECT_EQ(s.content, "42 is the answer.");
  r.starts_in_reasoning = true;
  const Split inside = parse(r, "hmm, 6 x 7</think>42");
  EXPECT_EQ(inside.reasoning, "hmm, 6 x 7");
  EXPECT_EQ(inside.content, "42");
  // Cut off while thinking: all of it is reasoning, none leaks into the answer.
  const Split cut = parse(r, "still thinking </thi");
  EXPECT_EQ(cut.reasoning, "still thinking </thi");
  EXPECT_EQ(cut.content, "");
  // Reasoning, then a tool call.
  r.tools = ToolFormat::kHermes;
  const Split both = parse(r, "weather?</think>\n<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Kyiv\"}}</tool_call>");
  EXPECT_EQ(both.reasoning, "weather?");
  EXPECT_EQ(both.content, "");
  ASSERT_EQ(both.calls.size(), 1u);
}

TEST(ReplyParser, FormatsFollowTheTemplate) {
  EXPECT_EQ(tool_format_of("{{ '<tool_call>' }}"), ToolFormat::kHermes);
  EXPECT_EQ(tool_format_of("[TOOL_CALLS] {{ x }}"), ToolFormat::kMistral);
  EXPECT_EQ(tool_format_of("<|python_tag|>"), ToolFormat::kLlama3);
  EXPECT_EQ(tool_format_of("{{ messages }}"), ToolFormat::kNone);
  const ReplyFormat r1 = reasoning_format_of("{{ '<think>' }}", "<|Assistant|><think>\n");
  EXPECT_TRUE(r1.reasoning);
  EXPECT_TRUE(r1.starts_in_reasoning);
  const ReplyFormat q3 = reasoning_format_of("{{ '<think>' }}", "<|im_start|>assistant\n<think>\n\n</think>\n\n");
  EXPECT_TRUE(q3.reasoning);
  EXPECT_FALSE(q3.starts_in_reasoning);
}

}  // namespace
}  // namespace osprey::server
