#include "core/toml_nesting.h"

#include <gtest/gtest.h>

#include <string>

namespace cellguard {
namespace {

// Joins pieces by appending (GCC 12 warns falsely, -Wrestrict, on "literal" + std::string + "literal").
template <typename... Pieces>
std::string cat(const Pieces&... pieces) {
  std::string text;
  (text.append(pieces), ...);
  return text;
}

std::string dotted_key(int levels) {
  std::string key = "a";
  for (int i = 1; i < levels; ++i) key += ".a";
  return key;
}

TEST(TomlNesting, RealConfigurationsPass) {
  EXPECT_FALSE(check_toml_nesting(R"([edge]
id = "rig-1"   # a comment with [[[ and {{{ and a.b.c.d
[safety.limits.cell_voltage]
warning_high = 4.15
points = [[1.5, 2.0], [3.0, 4.0]]
inline = { a = 1, b.c = "x.y.z", d = [ {e = 1}, {f = 2} ] }
text = """
[[[[[[[[[[ in a string
"""
literal = '{{{{{{{{'
)"));
  EXPECT_FALSE(check_toml_nesting(cat(dotted_key(64), " = 1\n")));
}

TEST(TomlNesting, ADeepDottedKeyIsFoundWithItsPlace) {
  const std::string text = cat("[edge]\nid = \"x\"\n", dotted_key(50000), " = 1\n");
  const auto problem = check_toml_nesting(text);
  ASSERT_TRUE(problem);
  EXPECT_EQ(problem->line, 3);
  EXPECT_EQ(problem->column, 2 * 63);  // the 63rd dot: level 65 with the [edge] table
  EXPECT_NE(problem->message.find("more than 64"), std::string::npos) << problem->message;
  EXPECT_NE(problem->message.find("not parsed"), std::string::npos) << problem->message;
}

TEST(TomlNesting, DeepArraysInlineTablesAndHeadersAreFound) {
  const auto arrays = check_toml_nesting(cat("x = 1\na = ", std::string(100000, '['), "\n"));
  ASSERT_TRUE(arrays);
  EXPECT_EQ(arrays->line, 2);
  EXPECT_EQ(arrays->column, 5 + 64);
  std::string tables = "a = ";
  for (int i = 0; i < 1000; ++i) tables += "{b = ";
  EXPECT_TRUE(check_toml_nesting(tables));
  EXPECT_TRUE(check_toml_nesting(cat("[", dotted_key(100), "]\n")));
  EXPECT_TRUE(check_toml_nesting(cat("[[", dotted_key(100), "]]\n")));
  // A table 40 deep with a key 40 deep is 80 deep.
  EXPECT_TRUE(check_toml_nesting(cat("[", dotted_key(40), "]\n", dotted_key(40), " = 1\n")));
  EXPECT_FALSE(check_toml_nesting(cat("[", dotted_key(30), "]\n", dotted_key(30), " = 1\n")));
}

TEST(TomlNesting, StringsAndCommentsDoNotCount) {
  EXPECT_FALSE(check_toml_nesting(cat("a = \"", std::string(1000, '['), "\"\n")));
  EXPECT_FALSE(check_toml_nesting(cat("a = 'x' # ", std::string(1000, '{'), "\n")));
  EXPECT_FALSE(check_toml_nesting(cat("\"", dotted_key(1000), "\" = 1\n")));  // one quoted key
  EXPECT_FALSE(check_toml_nesting(cat("a = \"\\\"", std::string(1000, '['), "\"\n")));
  // Unterminated strings are the parser's to report; the scan ends without a problem.
  EXPECT_FALSE(check_toml_nesting("a = \"abc\nb = 1\n"));
  EXPECT_FALSE(check_toml_nesting("a = \"\"\"abc"));
}

}  // namespace
}  // namespace cellguard
