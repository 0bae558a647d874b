#include "core/text.h"

#include <gtest/gtest.h>

#include <charconv>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace cellguard {
namespace {

TEST(Text, ValidUtf8IsRecognisedAndCp1252IsNot) {
  EXPECT_TRUE(is_valid_utf8("plain ascii"));
  EXPECT_TRUE(
      is_valid_utf8("\xC2\xB0"
                    "C"));
  EXPECT_FALSE(
      is_valid_utf8("\xB0"
                    "C"));                      // Latin-1 degree sign
  EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));      // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xE2\x82"));      // truncated sequence
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));  // surrogate
}

TEST(Text, UntrustedBytesBecomePrintableUtf8) {
  // The elements that aborted the edge (issue 12) and raw control bytes from the board.
  EXPECT_EQ(escape_untrusted("< \xc3\x28 >"), "< \\xc3( >");
  EXPECT_EQ(escape_untrusted("< error \xff\xfe >"), "< error \\xff\\xfe >");
  EXPECT_EQ(escape_untrusted("11\xfd"
                             "22"),
            "11\\xfd22");
  EXPECT_EQ(escape_untrusted(std::string_view("a\x1b[2Jb\x07\x00z", 9)), "a\\x1b[2Jb\\x07\\x00z");
  EXPECT_EQ(escape_untrusted("line\r\n\tnext\x7f"), "line\\r\\n\\tnext\\x7f");
  EXPECT_EQ(escape_untrusted("\xc2\x9b"
                             "31m"),
            "\\u009b31m");  // 8-bit CSI
  EXPECT_EQ(escape_untrusted("ab\xe2\x80\xae"
                             "cd"),
            "ab\\u202ecd");                                        // right-to-left override
  EXPECT_EQ(escape_untrusted("\xed\xa0\x80"), "\\xed\\xa0\\x80");  // surrogate
  EXPECT_EQ(escape_untrusted("\xe2\x82"), "\\xe2\\x82");           // truncated
  // Printable UTF-8 and backslashes are kept: the function is idempotent.
  EXPECT_EQ(escape_untrusted("25 \xc2\xb0"
                             "C, \\x41 \xe2\x82\xac"),
            "25 \xc2\xb0"
            "C, \\x41 \xe2\x82\xac");
  const std::string once = escape_untrusted("\xff\x01 \xc3\x28");
  EXPECT_EQ(escape_untrusted(once), once);
}

TEST(Text, UntrustedTextIsBoundedAtACharacterBoundary) {
  const std::string big(100000, '\xfd');
  const std::string cut = escape_untrusted(big, 200);
  EXPECT_LE(cut.size(), 200u);
  EXPECT_TRUE(is_printable_utf8(cut));
  EXPECT_NE(cut.find("\\xfd\\xfd"), std::string::npos);
  EXPECT_TRUE(cut.ends_with("\\xfd...(100000 bytes)")) << cut;
  // A text that fits whole is not cut, even if it uses the suffix's room.
  const std::string fits(190, 'a');
  EXPECT_EQ(escape_untrusted(fits, 200), fits);
  // Multi-byte characters are never split.
  std::string euros;
  for (int k = 0; k < 100; ++k) euros += "\xe2\x82\xac";
  const std::string cut_euros = escape_untrusted(euros, 64);
  EXPECT_TRUE(is_valid_utf8(cut_euros));
  EXPECT_LE(cut_euros.size(), 64u);
}

TEST(Text, EveryByteStringEscapesToPrintableUtf8) {
  // Every single byte and every pair: the result is printable UTF-8 and escaping it again is a no-op.
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; b += 7) {
      const char raw[3] = {static_cast<char>(a), static_cast<char>(b), '\xe0'};
      const std::string escaped = escape_untrusted(std::string_view(raw, 3));
      ASSERT_TRUE(is_printable_utf8(escaped)) << a << " " << b;
      ASSERT_EQ(escape_untrusted(escaped), escaped);
    }
  }
  EXPECT_FALSE(is_printable_utf8("a\nb"));
  EXPECT_FALSE(is_printable_utf8("\xff"));
  EXPECT_TRUE(
      is_printable_utf8("25 \xc2\xb0"
                        "C"));
}

TEST(Text, Cp1252IsConvertedToUtf8) {
  EXPECT_EQ(cp1252_to_utf8("\xB0"
                           "C"),
            "\xC2\xB0"
            "C");
  EXPECT_EQ(cp1252_to_utf8("\x80"), "\xE2\x82\xAC");  // euro sign
  EXPECT_EQ(cp1252_to_utf8("\x81"), "\xC2\x81");      // undefined in cp1252: kept as U+0081
  EXPECT_EQ(to_utf8("\xC2\xB0"
                    "C"),
            "\xC2\xB0"
            "C");
  EXPECT_EQ(to_utf8("\xB0"
                    "C"),
            "\xC2\xB0"
            "C");
}

TEST(Text, Utf8ConvertsBackToCp1252) {
  for (int c = 0x20; c < 0x100; ++c) {
    const std::string original(1, static_cast<char>(c));
    EXPECT_EQ(utf8_to_cp1252(cp1252_to_utf8(original)), original) << "byte " << c;
  }
  EXPECT_EQ(utf8_to_cp1252("\xE4\xB8\xAD"), "?");  // no cp1252 byte for this character
}

TEST(Text, ShortestDoubleTextReadsBackExactly) {
  EXPECT_EQ(format_shortest(0.1), "0.1");
  EXPECT_EQ(format_shortest(-12.3), "-12.3");
  EXPECT_EQ(format_shortest(3.9400000000000004), "3.9400000000000004");
  EXPECT_EQ(format_shortest(5.0), "5");
  EXPECT_EQ(format_shortest(5.0, true), "5.0");
  EXPECT_EQ(format_shortest(std::numeric_limits<double>::quiet_NaN()), "NaN");
  EXPECT_EQ(format_shortest(-std::numeric_limits<double>::infinity()), "-Infinity");
  // Laid out as Python's repr: fixed for decimal exponents -4..15, else scientific.
  EXPECT_EQ(format_shortest(1700000000.0, true), "1700000000.0");
  EXPECT_EQ(format_shortest(1700000000.00025), "1700000000.00025");
  EXPECT_EQ(format_shortest(0.0001), "0.0001");
  EXPECT_EQ(format_shortest(0.00001), "1e-05");
  EXPECT_EQ(format_shortest(-1.5e-7), "-1.5e-07");
  EXPECT_EQ(format_shortest(1e15, true), "1000000000000000.0");
  EXPECT_EQ(format_shortest(1e16, true), "1e+16");
  EXPECT_EQ(format_shortest(1.7976931348623157e308), "1.7976931348623157e+308");
  EXPECT_EQ(format_shortest(5e-324), "5e-324");
  EXPECT_EQ(format_shortest(0.0, true), "0.0");
  EXPECT_EQ(format_shortest(-0.0, true), "-0.0");
  EXPECT_EQ(format_shortest(123.0), "123");
  for (double v : {1e-7, 123456789.125, 2.2 + 0.01 * 173, 1.7976931348623157e308, 5e-324}) {
    const std::string text = format_shortest(v);
    double back = 0;
    std::from_chars(text.data(), text.data() + text.size(), back);
    EXPECT_EQ(back, v) << text;
  }
}

}  // namespace
}  // namespace cellguard

namespace cellguard {
namespace {

TEST(Files, WrittenFileReadsBackByteForByte) {
  const std::string path = ::testing::TempDir() + "/cellguard-text-test.bin";
  std::string contents = "line 1\r\nline 2\n";
  contents.push_back('\0');
  contents +=
      "\xB0"
      "C";
  ASSERT_TRUE(write_file(path, contents).ok());
  const auto back = read_file(path);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, contents);
}

TEST(Files, MissingFileGivesAnErrorNamingThePath) {
  const auto result = read_file("/nonexistent/cellguard/file.dbc");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::io_error);
  EXPECT_NE(result.error().message.find("/nonexistent/cellguard/file.dbc"), std::string::npos);
}

TEST(Text, DidYouMeanNamesTheClosestLikelyTypoOnly) {
  const std::vector<std::string> names = {"max_cell_v", "min_cell_v", "max_temp_c"};
  EXPECT_EQ(closest_name("max_cel_v", names), "max_cell_v");
  EXPECT_EQ(did_you_mean("min_cellv", names), " (did you mean 'min_cell_v'?)");
  EXPECT_EQ(closest_name("pressure", names), "");  // nothing close: no guess
  EXPECT_EQ(did_you_mean("pressure", names), "");
  EXPECT_EQ(closest_name(std::string(300, 'm'), names), "");  // too long to compare
  EXPECT_EQ(closest_name("ab", {}), "");
}

}  // namespace
}  // namespace cellguard
