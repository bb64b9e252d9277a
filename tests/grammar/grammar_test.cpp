#include "grammar/grammar.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "grammar/matcher.h"

namespace osprey::grammar {
namespace {

std::shared_ptr<const Grammar> compile(const std::string& text) {
  auto g = Grammar::parse(text);
  EXPECT_TRUE(g.ok()) << g.status().message();
  return std::make_shared<const Grammar>(std::move(g).value());
}

// Whether the whole of `text` is a sentence of the grammar.
bool matches(const std::shared_ptr<const Grammar>& g, const std::string& text) {
  Matcher m(g);
  return m.accept(text) && m.complete();
}

TEST(Grammar, LiteralsAlternativesAndGroups) {
  auto g = compile(R"(root ::= "yes" | "no" ( "!" | "?" )  # a comment
)");
  EXPECT_TRUE(matches(g, "yes"));
  EXPECT_TRUE(matches(g, "no!"));
  EXPECT_TRUE(matches(g, "no?"));
  EXPECT_FALSE(matches(g, "no"));
  EXPECT_FALSE(matches(g, "yes!"));
  Matcher m(g);
  EXPECT_FALSE(m.accept("x"));
  EXPECT_TRUE(m.accept("ye"));  // a refused byte leaves the state as it was
  EXPECT_FALSE(m.complete());
  EXPECT_EQ(m.min_remaining(), 1u);
}

TEST(Grammar, Repetitions) {
  auto g = compile(R"(root ::= "a"{2,3} "b"* "c"+ "d"? [0-9]{2})");
  EXPECT_TRUE(matches(g, "aac42"));
  EXPECT_TRUE(matches(g, "aaabbbccd00"));
  EXPECT_FALSE(matches(g, "ac42"));
  EXPECT_FALSE(matches(g, "aaaac42"));
  EXPECT_FALSE(matches(g, "aab42"));
  EXPECT_FALSE(matches(g, "aac4"));
  // {m,} and {m}
  auto h = compile(R"(root ::= "x"{3} "y"{2,})");
  EXPECT_TRUE(matches(h, "xxxyy"));
  EXPECT_TRUE(matches(h, "xxxyyyyyyy"));
  EXPECT_FALSE(matches(h, "xxxy"));
}

TEST(Grammar, ClassesAreOverUtf8CodePoints) {
  auto g = compile(R"(root ::= [^a"]+ "." [α-ω])");
  EXPECT_TRUE(matches(g, "é日🙂.λ"));
  EXPECT_FALSE(matches(g, "a.λ"));
  EXPECT_FALSE(matches(g, "b.z"));
  // Half a character is a prefix, not a sentence; a stray continuation byte is refused.
  Matcher m(g);
  EXPECT_TRUE(m.accept("\xC3"));
  EXPECT_FALSE(m.complete());
  EXPECT_FALSE(Matcher(g).accept("\x80"));
  auto esc = compile(R"(root ::= "\x41\u00e9\n" [\x30-\x32])");
  EXPECT_TRUE(matches(esc, "A\xC3\xA9\n1"));
}

TEST(Grammar, RecursionThroughRules) {
  auto g = compile(R"(root ::= list
list ::= "[" ( item ( "," item )* )? "]"
item ::= [0-9] | list)");
  EXPECT_TRUE(matches(g, "[]"));
  EXPECT_TRUE(matches(g, "[1,[2,[]],3]"));
  EXPECT_FALSE(matches(g, "[1,]"));
}

TEST(Grammar, ErrorsNameTheProblem) {
  auto undefined = Grammar::parse("root ::= a");
  ASSERT_FALSE(undefined.ok());
  EXPECT_NE(undefined.status().message().find("'a' is used but not defined"), std::string::npos);
  auto left = Grammar::parse("root ::= root \"a\" | \"b\"");
  ASSERT_FALSE(left.ok());
  EXPECT_NE(left.status().message().find("left-recursive"), std::string::npos);
  auto hidden_left = Grammar::parse("root ::= x \"a\"\nx ::= \"\"? root");
  ASSERT_FALSE(hidden_left.ok());
  EXPECT_NE(hidden_left.status().message().find("left-recursive"), std::string::npos);
  EXPECT_FALSE(Grammar::parse("start ::= \"a\"").ok());              // no root
  EXPECT_FALSE(Grammar::parse("root ::= \"a").ok());                 // unclosed literal
  EXPECT_FALSE(Grammar::parse("root ::= [a").ok());                  // unclosed class
  EXPECT_FALSE(Grammar::parse("root ::= ( \"a\"").ok());             // unclosed group
  EXPECT_FALSE(Grammar::parse("root ::= \"a\"{3,1}").ok());          // backwards repetition
  EXPECT_FALSE(Grammar::parse("root ::= x\nx ::= \"a\" x").ok());    // never finishes
  EXPECT_FALSE(Grammar::parse("root ::= \"a\"\nroot ::= \"b\"").ok());  // defined twice
  auto line = Grammar::parse("root ::= \"a\"\nb ::= @");
  ASSERT_FALSE(line.ok());
  EXPECT_NE(line.status().message().find("line 2"), std::string::npos) << line.status().message();
}

// The min-length analysis on cases the old fixed point and the new worklist
// must agree on: a rule's shortest sentence decides what may end a reply.
TEST(Grammar, ShortestSentencesThroughChainsAndNullables) {
  auto g = compile("root ::= a b \"!\"\na ::= b b | \"xyz\"\nb ::= c | \"q\" \"r\"\nc ::= \"\" | c2\nc2 ::= \"long\"");
  EXPECT_TRUE(matches(g, "!"));  // a -> b b -> c c -> "" "", b -> c -> ""
  EXPECT_TRUE(matches(g, "xyzqr!"));
  EXPECT_FALSE(matches(g, "xy!"));
  auto hidden = Grammar::parse("root ::= n1 n2 root \"a\" | \"b\"\nn1 ::= n2 | \"\"\nn2 ::= n1 \"\" | \"c\"");
  ASSERT_FALSE(hidden.ok());  // root is reached through two nullable rules before any byte
  EXPECT_NE(hidden.status().message().find("left-recursive"), std::string::npos) << hidden.status().message();
}

// A request's grammar is hostile input: shapes that took quadratic time,
// recursed off the end of the stack (a crash of the whole server) or asked
// for gigabytes are linear, or refused with an error naming the problem.
TEST(Grammar, HostileShapesCompileInLinearTimeOrAreRefused) {
  const auto start = std::chrono::steady_clock::now();
  const int n = 200000;
  std::string forward = "root ::= r0\n", backward = "root ::= r0\n", loop = "root ::= r0\n";
  for (int i = 0; i + 1 < n; ++i) {
    forward += "r" + std::to_string(i) + " ::= r" + std::to_string(i + 1) + " \"a\"\n";
    backward += "r" + std::to_string(i) + " ::= \"a\" r" + std::to_string(i + 1) + "\n";
    loop += "r" + std::to_string(i) + " ::= r" + std::to_string(i + 1) + "\n";
  }
  forward += "r" + std::to_string(n - 1) + " ::= \"b\"";
  backward += "r" + std::to_string(n - 1) + " ::= \"b\"";
  loop += "r" + std::to_string(n - 1) + " ::= r0 \"a\" | \"b\"";
  auto chain = compile(forward);
  EXPECT_FALSE(matches(chain, "ba"));
  EXPECT_TRUE(matches(compile(backward), std::string(n - 1, 'a') + "b"));
  auto left = Grammar::parse(loop);
  ASSERT_FALSE(left.ok());
  EXPECT_NE(left.status().message().find("left-recursive"), std::string::npos);
  EXPECT_TRUE(matches(compile("root ::= \"" + std::string(500000, 'a') + "\""), std::string(500000, 'a')));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 60) << "quadratic somewhere: the old analyses needed hours for these";

  auto deep = Grammar::parse("root ::= " + std::string(100000, '(') + "\"a\"" + std::string(100000, ')'));
  ASSERT_FALSE(deep.ok());
  EXPECT_NE(deep.status().message().find("nest deeper than"), std::string::npos) << deep.status().message();
  EXPECT_TRUE(Grammar::parse("root ::= " + std::string(500, '(') + "\"a\"" + std::string(500, ')')).ok());
  std::string copies = "root ::=";
  for (int i = 0; i < 300; ++i) copies += " \"x\"{10000}";
  auto big = Grammar::parse(copies);
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.status().message().find("expands to more than"), std::string::npos) << big.status().message();
  std::string optional = "root ::=";
  for (int i = 0; i < 200; ++i) optional += " \"x\"{0,10000}";
  EXPECT_FALSE(Grammar::parse(optional).ok());
  EXPECT_TRUE(Grammar::parse("root ::= \"x\"{10000} \"y\"{0,10000}").ok());
  // A name of megabytes is neither copied into every rule made for it nor
  // quoted whole.
  const std::string huge(4000000, 'n');
  auto named = Grammar::parse("root ::= " + huge + "\n" + huge + " ::= \"a\"{0,10000} " + huge + "x");
  ASSERT_FALSE(named.ok());
  EXPECT_NE(named.status().message().find("is used but not defined"), std::string::npos);
  EXPECT_LT(named.status().message().size(), 200u);
}

}  // namespace
}  // namespace osprey::grammar
