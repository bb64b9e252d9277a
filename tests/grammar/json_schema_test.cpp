#include "grammar/json_schema.h"

#include <gtest/gtest.h>

#include "grammar/matcher.h"

namespace osprey::grammar {
namespace {

using json = nlohmann::ordered_json;

std::shared_ptr<const Grammar> from_schema(const std::string& schema) {
  auto gbnf = json_schema_to_gbnf(json::parse(schema));
  EXPECT_TRUE(gbnf.ok()) << gbnf.status().message();
  auto g = Grammar::parse(*gbnf);
  EXPECT_TRUE(g.ok()) << g.status().message() << "\n" << *gbnf;
  return std::make_shared<const Grammar>(std::move(g).value());
}

bool matches(const std::shared_ptr<const Grammar>& g, const std::string& text) {
  Matcher m(g);
  return m.accept(text) && m.complete();
}

// Every integer in a window, against the bounds, for the digit-range rules.
TEST(JsonSchema, IntegerBoundsExactly) {
  const char* cases[] = {R"({"type":"integer","minimum":-250,"maximum":-17})", R"({"type":"integer","minimum":0,"maximum":1000})",
                         R"({"type":"integer","minimum":7,"maximum":1234})", R"({"type":"integer","exclusiveMinimum":-5,"exclusiveMaximum":5})",
                         R"({"type":"integer","minimum":42})", R"({"type":"integer","maximum":-3})",
                         R"({"type":"integer","minimum":-1999,"maximum":99})", R"({"type":"integer","minimum":100,"maximum":100})"};
  for (const char* c : cases) {
    const json s = json::parse(c);
    const double lo = s.contains("minimum") ? s["minimum"].get<double>() : s.contains("exclusiveMinimum") ? s["exclusiveMinimum"].get<double>() + 1 : -1e18;
    const double hi = s.contains("maximum") ? s["maximum"].get<double>() : s.contains("exclusiveMaximum") ? s["exclusiveMaximum"].get<double>() - 1 : 1e18;
    auto g = from_schema(c);
    for (int i = -2500; i <= 2500; ++i)
      ASSERT_EQ(matches(g, std::to_string(i)), i >= lo && i <= hi) << c << " at " << i;
    EXPECT_FALSE(matches(g, "007")) << c;
    EXPECT_FALSE(matches(g, "-0")) << c;
  }
}

TEST(JsonSchema, NumberBounds) {
  auto g = from_schema(R"({"type":"number","minimum":-90,"maximum":90})");
  for (const char* ok : {"-90", "90", "90.0", "89.99", "-0.5", "0", "12.25", "-89.999"}) EXPECT_TRUE(matches(g, ok)) << ok;
  for (const char* bad : {"90.5", "-91", "91", "-90.1", "1e3", "100"}) EXPECT_FALSE(matches(g, bad)) << bad;
  auto frac = json_schema_to_gbnf(json::parse(R"({"type":"number","minimum":0.5})"));
  EXPECT_FALSE(frac.ok());
}

TEST(JsonSchema, ObjectsKeepOrderAndOptionalProperties) {
  auto g = from_schema(R"({"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"string"},"c":{"type":"boolean"}},"required":["a","c"]})");
  EXPECT_TRUE(matches(g, R"({"a":1,"c":true})"));
  EXPECT_TRUE(matches(g, R"({"a":1,"b":"x","c":false})"));
  EXPECT_TRUE(matches(g, "{ \"a\" : 1 ,\n  \"c\": true }"));
  EXPECT_FALSE(matches(g, R"({"a":1})"));
  EXPECT_FALSE(matches(g, R"({"c":true,"a":1})"));
  EXPECT_FALSE(matches(g, R"({"a":1,"c":true,"d":0})"));
  auto optional = from_schema(R"({"properties":{"x":{"type":"null"},"y":{"type":"null"}}})");
  for (const char* ok : {"{}", R"({"x":null})", R"({"y":null})", R"({"x":null,"y":null})"}) EXPECT_TRUE(matches(optional, ok)) << ok;
  EXPECT_FALSE(matches(optional, R"({,"y":null})"));
}

TEST(JsonSchema, StringsPatternsAndFormats) {
  auto sku = from_schema(R"({"type":"string","pattern":"^[A-Z]{3}-[0-9]{4}$"})");
  EXPECT_TRUE(matches(sku, "\"ABC-1234\""));
  EXPECT_FALSE(matches(sku, "\"ABC-123\""));
  auto quote = from_schema(R"({"type":"string","pattern":"^a\"b\\.c$"})");
  EXPECT_TRUE(matches(quote, R"("a\"b.c")"));
  auto len = from_schema(R"({"type":"string","minLength":2,"maxLength":3})");
  EXPECT_TRUE(matches(len, "\"ab\""));
  EXPECT_TRUE(matches(len, "\"a\\nb\""));  // an escape is one character
  EXPECT_TRUE(matches(len, "\"日本語\""));
  EXPECT_FALSE(matches(len, "\"a\""));
  EXPECT_FALSE(matches(len, "\"abcd\""));
  auto date = from_schema(R"({"type":"string","format":"date"})");
  EXPECT_TRUE(matches(date, "\"2024-12-31\""));
  EXPECT_FALSE(matches(date, "\"2024-02-30\""));
  EXPECT_FALSE(matches(date, "\"2024-13-01\""));
  auto uuid = from_schema(R"({"format":"uuid"})");
  EXPECT_TRUE(matches(uuid, "\"123e4567-e89b-12d3-a456-426614174000\""));
  auto any = from_schema("{}");
  EXPECT_TRUE(matches(any, R"({"a":[1,2.5e3,"x",null,true,{}]})"));
  EXPECT_FALSE(matches(any, R"({"a":"\ud800"})"));  // a lone surrogate escape
}

TEST(JsonSchema, RefsRecursionUnionsAndArrays) {
  auto tree = from_schema(R"({"$defs":{"n":{"type":"object","properties":{"v":{"type":"integer"},"kids":{"type":"array","items":{"$ref":"#/$defs/n"}}},"required":["v"]}},"$ref":"#/$defs/n"})");
  EXPECT_TRUE(matches(tree, R"({"v":1,"kids":[{"v":2},{"v":3,"kids":[]}]})"));
  auto shapes = from_schema(R"({"oneOf":[{"const":"a"},{"type":"array","items":{"enum":[1,"two",null]},"minItems":1,"maxItems":2}]})");
  EXPECT_TRUE(matches(shapes, R"("a")"));
  EXPECT_TRUE(matches(shapes, R"([1,"two"])"));
  EXPECT_FALSE(matches(shapes, "[]"));
  EXPECT_FALSE(matches(shapes, "[1,1,1]"));
  // oneOf branches told apart by type, by listed values, or by a required discriminator.
  from_schema(R"({"oneOf":[{"type":"string"},{"type":"integer"},{"type":"null"}]})");
  from_schema(R"({"oneOf":[{"enum":["a","b"]},{"const":"c"}]})");
  from_schema(R"({"$defs":{"c":{"type":"object","properties":{"k":{"const":"c"}},"required":["k"]}},
                  "oneOf":[{"$ref":"#/$defs/c"},{"type":"object","properties":{"k":{"enum":["d","e"]}},"required":["k"]}]})");
  auto tuple = from_schema(R"({"prefixItems":[{"type":"boolean"},{"type":"integer"}],"items":false})");
  EXPECT_TRUE(matches(tuple, "[true,3]"));
  EXPECT_FALSE(matches(tuple, "[true,3,4]"));
  auto merged = from_schema(R"({"allOf":[{"properties":{"a":{"type":"integer"}},"required":["a"]},{"properties":{"b":{"type":"integer"}},"required":["b"]}]})");
  EXPECT_TRUE(matches(merged, R"({"a":1,"b":2})"));
  EXPECT_FALSE(matches(merged, R"({"a":1})"));
}

TEST(JsonSchema, AnOptionalReasoningBlockBeforeTheAnswer) {
  auto gbnf = json_schema_to_gbnf(json::parse(R"({"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]})"));
  ASSERT_TRUE(gbnf.ok());
  auto g = Grammar::parse(with_optional_block(*gbnf, "<think>", "</think>"));
  ASSERT_TRUE(g.ok()) << g.status().message();
  auto grammar = std::make_shared<const Grammar>(std::move(g).value());
  EXPECT_TRUE(matches(grammar, R"({"a":1})"));
  EXPECT_TRUE(matches(grammar, "<think>\nhmm < </thi </think <<//think> ok \xE6\x97\xA5</think>\n{\"a\":2}"));
  EXPECT_TRUE(matches(grammar, R"(<think></think>{"a":3})"));
  EXPECT_FALSE(matches(grammar, R"(<think>x</think>y</think>{"a":1})"));  // the block ends at the first </think>
  EXPECT_FALSE(matches(grammar, "<think>x</think>"));
  EXPECT_FALSE(matches(grammar, R"({"a":1}<think></think>)"));
}

TEST(JsonSchema, UnsupportedKeywordsAreNamedWithTheirPath) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"type":"array","uniqueItems":true})", "uniqueItems"},
      {R"({"properties":{"a":{"properties":{"b":{"not":{}}}}}})", "properties.a.properties.b.not"},
      {R"({"type":"string","format":"email"})", "format"},
      {R"({"$ref":"other.json"})", "$ref"},
      {R"({"anyOf":[{"type":"string"},{"type":"integer","multipleOf":2}]})", "anyOf[1].multipleOf"},
      {R"({"type":"string","pattern":"(?<=a)b"})", "pattern"},
      {R"({"type":"wizard"})", "type"},
      {R"({"type":"object","properties":{"a":{"type":3}}})", "properties.a.type"},
      {R"({"nullable":"yes"})", "nullable"},
      {R"({"oneOf":[{"type":"integer"},{"type":"number"}]})", "oneOf"},
      {R"({"oneOf":[{"type":"object","properties":{"a":{"type":"string"}}},{"type":"object","properties":{"b":{"type":"string"}}}]})", "oneOf"},
  };
  for (const auto& [schema, where] : cases) {
    std::string at;
    auto r = json_schema_to_gbnf(json::parse(schema), &at);
    ASSERT_FALSE(r.ok()) << schema;
    EXPECT_EQ(at, where) << schema << ": " << r.status().message();
  }
}

// A pattern is request text that JSON's depth limit does not reach: groups
// nested 200k deep recursed off the stack. They are refused by name; 256 levels
// still compile and match.
TEST(JsonSchema, DeeplyNestedPatternGroupsAreRefused) {
  json deep = {{"type", "string"}, {"pattern", std::string(200000, '(') + "a" + std::string(200000, ')')}};
  std::string at;
  auto r = json_schema_to_gbnf(deep, &at);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(at, "pattern");
  EXPECT_NE(r.status().message().find("nested more than 256 deep"), std::string::npos) << r.status().message();
  EXPECT_LT(r.status().message().size(), 400u) << "the message quotes the whole pattern";
  json fine = {{"type", "string"}, {"pattern", "^" + std::string(256, '(') + "ab" + std::string(256, ')') + "$"}};
  EXPECT_TRUE(matches(from_schema(fine.dump()), "\"ab\""));
}

}  // namespace
}  // namespace osprey::grammar
