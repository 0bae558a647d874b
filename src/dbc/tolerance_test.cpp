// What real files get wrong and the reference decoder (cantools) still reads, and the source
// positions every checker problem carries. Hand-made files, one quirk each.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "dbc/codec.h"
#include "dbc/dbc.h"

namespace cellguard::dbc {
namespace {

ParseOutput load_ok(const std::string& text) {
  auto result = parse_dbc(text, "hand.dbc");
  EXPECT_TRUE(result.ok()) << (result.ok() ? "" : result.error().message);
  if (!result.ok()) return {};
  return std::move(result).value();
}

std::string all_warnings(const ParseOutput& out) {
  std::string text;
  for (const auto& w : out.warnings) text += w.message + "\n";
  return text;
}

// Decodes one frame of message `id` and returns the present signals as name=value.
std::vector<std::string> decode_all(const Database& db, std::uint32_t id, std::vector<std::uint8_t> payload) {
  const DatabaseCodec codec{Database(db)};
  const MessageCodec* m = codec.find(id, false);
  EXPECT_NE(m, nullptr);
  if (m == nullptr) return {};
  std::vector<double> values(m->signal_count());
  PresenceMask present(m->signal_count());
  EXPECT_EQ(m->decode(payload, values.data(), present), DecodeStatus::ok);
  std::vector<std::string> out;
  for (std::size_t i = 0; i < m->signal_count(); ++i) {
    if (present.test(i)) out.push_back(m->message().signals[i].name + "=" + std::to_string(values[i]));
  }
  return out;
}

TEST(DbcTolerance, BareMultiplexedMarkersWithoutAMultiplexerAreReadAsPlainSignals) {
  // The public file of issue 16: "m2", "m3" and a bare "m", but no "M" signal.
  const auto out = load_ok(
      "BO_ 354 Status: 8 BMS\n"
      " SG_ A m2 : 0|8@1+ (1,0) [0|255] \"V\" Vector__XXX\n"
      " SG_ B m3 : 8|8@1+ (1,0) [0|255] \"\" Vector__XXX\n"
      " SG_ C m : 16|8@1+ (0.5,0) [0|127.5] \"\" Vector__XXX\n");
  ASSERT_EQ(out.database.messages.size(), 1u);
  const Message& m = out.database.messages[0];
  ASSERT_EQ(m.signals.size(), 3u);
  for (const auto& s : m.signals) EXPECT_FALSE(s.is_multiplexed()) << s.name;
  ASSERT_EQ(out.warnings.size(), 1u) << all_warnings(out);
  EXPECT_EQ(out.warnings[0].message,
            "hand.dbc:4:8: message Status signal C is marked multiplexed ('m') but the message has no "
            "multiplexer signal (M): read as a plain signal");
  EXPECT_EQ(decode_all(out.database, 354, {1, 2, 3, 0, 0, 0, 0, 0}),
            (std::vector<std::string>{"A=1.000000", "B=2.000000", "C=1.500000"}));
  // The checker warns about the mN ones (the model still says m2 and m3), with their places.
  const auto problems = check_dbc(out.database);
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_EQ(problems[0].severity, Problem::Severity::warning);
  EXPECT_EQ(problems[0].located("hand.dbc"),
            "hand.dbc:2:2: message Status (0x162) signal A: marked multiplexed (m2) but the message has no "
            "multiplexer signal (M): decoded as a plain signal");
  EXPECT_EQ(problems[1].position.line, 3);
}

TEST(DbcTolerance, ABareMarkerInAMultiplexedMessageIsALocatedError) {
  auto result = parse_dbc(
      "BO_ 1 M: 8 BMS\n SG_ Mux M : 0|8@1+ (1,0) [0|0] \"\" BMS\n SG_ A m : 8|8@1+ (1,0) [0|0] \"\" BMS\n",
      "hand.dbc");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(
      result.error().message,
      "hand.dbc:3:8: expected a multiplexer value after 'm' (message M has the multiplexer Mux), found 'm'");
}

TEST(DbcTolerance, ABareMarkerGetsItsValuesFromExtendedMultiplexing) {
  const auto out = load_ok(
      "BO_ 1 M: 8 BMS\n SG_ Mux M : 0|8@1+ (1,0) [0|0] \"\" BMS\n SG_ A m : 8|8@1+ (1,0) [0|0] \"\" BMS\n"
      "SG_MUL_VAL_ 1 A Mux 3-4;\n");
  EXPECT_TRUE(out.warnings.empty()) << all_warnings(out);
  const Signal& a = out.database.messages[0].signals[1];
  EXPECT_EQ(a.multiplexer, "Mux");
  EXPECT_EQ(a.multiplex_ranges, (std::vector<MultiplexRange>{{3, 4}}));
}

TEST(DbcTolerance, SeveralMultiplexerSignalsWithoutExtendedMultiplexingLeaveTheOthersPlain) {
  // The reference decoder takes a simple multiplexer only when exactly one signal is flagged M (or
  // mNM); with two, "mN" signals without SG_MUL_VAL_ are plain, and a bare "m" is no error.
  const auto out = load_ok(
      "BO_ 1 M: 8 BMS\n SG_ MuxA M : 0|8@1+ (1,0) [0|0] \"\" BMS\n SG_ MuxB M : 8|8@1+ (1,0) [0|0] \"\" BMS\n"
      " SG_ A m1 : 16|8@1+ (1,0) [0|0] \"\" BMS\n SG_ B m : 24|8@1+ (1,0) [0|0] \"\" BMS\n"
      " SG_ C m2 : 32|8@1+ (1,0) [0|0] \"\" BMS\nSG_MUL_VAL_ 1 C MuxB 2-2;\n");
  const Message& m = out.database.messages[0];
  EXPECT_FALSE(m.signals[2].is_multiplexed());
  EXPECT_FALSE(m.signals[3].is_multiplexed());
  EXPECT_EQ(m.signals[4].multiplexer, "MuxB");
  ASSERT_EQ(out.warnings.size(), 1u);
  EXPECT_NE(out.warnings[0].message.find("several multiplexer signals (M)"), std::string::npos);
  // A and B are always there; C when MuxB is 2.
  EXPECT_EQ(
      decode_all(out.database, 1, {9, 2, 3, 4, 5, 0, 0, 0}),
      (std::vector<std::string>{"MuxA=9.000000", "MuxB=2.000000", "A=3.000000", "B=4.000000", "C=5.000000"}));
}

TEST(DbcTolerance, AMessageWithoutSenderHasNone) {
  const auto out = load_ok("BO_ 1 M: 8\n SG_ A : 0|8@1+ (1,0) [0|0] \"\" BMS\n");
  ASSERT_EQ(out.database.messages.size(), 1u);
  EXPECT_EQ(out.database.messages[0].sender, "");
  ASSERT_EQ(out.database.messages[0].signals.size(), 1u);
  ASSERT_EQ(out.warnings.size(), 1u);
  EXPECT_EQ(out.warnings[0].message,
            "hand.dbc:2:2: message M has no sender node: read as Vector__XXX (none)");
}

TEST(DbcTolerance, MissingAndExtraWhiteSpace) {
  const auto out = load_ok(
      "BO_ 1 M:8 BMS\n"
      "SG_ A:0|8@1+(1,0)[0|255]\"V\"BMS\n"
      "   SG_   B  m1  :  8 | 8 @ 1 - ( 0.5 , -1 ) [ -1 | 126.5 ] \"\"   BMS  ,  Logger\n"
      "\tSG_ Mux M :16|4@1+ (1,0) [0|15] \"\" BMS\n");
  const Message& m = out.database.messages[0];
  ASSERT_EQ(m.signals.size(), 3u);
  EXPECT_EQ(m.length, 8u);
  EXPECT_EQ(m.signals[0].unit, "V");
  EXPECT_EQ(m.signals[0].receivers, (std::vector<std::string>{"BMS"}));
  EXPECT_TRUE(m.signals[1].is_signed);
  EXPECT_EQ(m.signals[1].offset, -1);
  EXPECT_EQ(m.signals[1].multiplexer, "Mux");
  EXPECT_EQ(m.signals[1].receivers, (std::vector<std::string>{"BMS", "Logger"}));
}

TEST(DbcTolerance, TransmittersWithCommasOrSpacesAndSignalLessMessages) {
  const auto out = load_ok(
      "BU_: A B C\nBO_ 1 Empty: 0 A\nBO_ 2 Request: 8 A\n"
      "BO_TX_BU_ 2 : B,C;\nBO_TX_BU_ 1: B C ;\n");
  ASSERT_EQ(out.database.messages.size(), 2u);
  EXPECT_TRUE(out.database.messages[0].signals.empty());
  EXPECT_EQ(out.database.messages[0].transmitters, (std::vector<std::string>{"B", "C"}));
  EXPECT_EQ(out.database.messages[1].transmitters, (std::vector<std::string>{"B", "C"}));
  EXPECT_TRUE(check_dbc(out.database).empty());
}

TEST(DbcTolerance, UnknownSectionsValuesOfUnknownSignalsAndTrailingWordsAreSkipped) {
  const auto out = load_ok(
      "BO_ 1 M: 8 BMS\n SG_ A : 0|8@1+ (1,0) [0|0] \"\" BMS\n"
      "SGTYPE_ T : 8@1+ (1,0) [0|0] \"\" 0 Table;\n"
      "CAT_DEF_ 1 Cat 0 ;\n"
      "VAL_ 1 Ghost 0 \"off\" 1 \"on\" ;\n"
      "VAL_ 7 A 0 \"off\" ;\n"
      "CM_ SG_ 1 Ghost \"gone\";\n"
      "VAL_ 1 A 0 \"zero\" ;\n"
      "trailing words without a semicolon\n");
  ASSERT_EQ(out.database.messages.size(), 1u);
  ASSERT_EQ(out.database.messages[0].signals[0].value_descriptions.size(), 1u);
  EXPECT_EQ(out.database.other_statements.size(), 2u);
  ASSERT_EQ(out.warnings.size(), 3u) << all_warnings(out);
  EXPECT_EQ(out.warnings[0].message, "hand.dbc:5:6: message M has no signal Ghost: statement ignored");
  EXPECT_EQ(out.warnings[1].message, "hand.dbc:6:6: no message with id 7: statement ignored");
  EXPECT_EQ(out.warnings[2].line, 7);
}

TEST(DbcTolerance, DuplicateMessageIdsAreLocated) {
  const auto out = load_ok("BO_ 5 A: 8 BMS\n\n  BO_ 5 B: 8 BMS\n");
  ASSERT_EQ(out.warnings.size(), 1u);
  EXPECT_EQ(out.warnings[0].line, 3);
  EXPECT_EQ(out.warnings[0].column, 3);
  EXPECT_EQ(out.warnings[0].message.rfind("hand.dbc:3:3: duplicate message id 0x5 (A and B)", 0), 0u);
}

// ---- every checker problem names the place of its definition ----

struct Located {
  std::string needle;  // a piece of the problem's text
  int line;
  int column;
};

void expect_located(const std::string& text, const std::vector<Located>& expected) {
  const auto out = load_ok(text);
  const auto problems = check_dbc(out.database);
  std::string all;
  for (const auto& p : problems) all += p.located("hand.dbc") + "\n";
  EXPECT_EQ(problems.size(), expected.size()) << all;
  for (const auto& e : expected) {
    const Problem* found = nullptr;
    for (const auto& p : problems) {
      if (p.message.find(e.needle) != std::string::npos) found = &p;
    }
    ASSERT_NE(found, nullptr) << e.needle << " not in:\n" << all;
    EXPECT_EQ(found->position.line, e.line) << found->message;
    EXPECT_EQ(found->position.column, e.column) << found->message;
    EXPECT_EQ(found->located("f.dbc").rfind(
                  "f.dbc:" + std::to_string(e.line) + ":" + std::to_string(e.column) + ": message", 0) == 0,
              found->message.rfind("message", 0) == 0);
  }
}

TEST(DbcCheckPositions, LayoutProblems) {
  expect_located(
      "BO_ 1 M: 2 BMS\n"
      " SG_ A : 0|12@1+ (1,0) [0|0] \"\" BMS\n"
      "  SG_ B : 8|8@1+ (1,0) [0|0] \"\" BMS\n"
      "   SG_ C : 12|8@1+ (1,0) [0|0] \"\" BMS\n",
      {{"signal B: overlaps signal A", 3, 3},
       {"signal C: extends past", 4, 4},
       {"signal C: overlaps", 4, 4}});
}

TEST(DbcCheckPositions, NamesAndRanges) {
  expect_located(
      "BO_ 1 M: 8 BMS\n"
      " SG_ A : 0|8@1+ (1,0) [10|5] \"\" BMS\n"
      " SG_ A : 8|8@1+ (1,0) [0|0] \"\" BMS\n"
      " SG_ R : 16|8@1+ (0.5,0) [0|200] \"\" BMS\n"
      " SG_ S : 24|8@1- (1,0) [-128|127] \"\" BMS\n"
      " SG_ L : 32|0@1+ (1,0) [0|0] \"\" BMS\n"
      "BO_ 2 M: 8 BMS\n",
      {{"minimum 10 is above maximum 5", 2, 2},
       {"a second signal with this name (the first is on line 2)", 3, 2},
       {"range [0, 200] is beyond what its 8 raw bits can hold [0, 127.5]", 4, 2},
       {"length 0 is outside", 6, 2},
       {"another message has the same name (0x1, line 1)", 7, 1}});
}

TEST(DbcCheckPositions, MultiplexingProblems) {
  expect_located(
      "BO_ 1 M: 8 BMS\n"
      " SG_ A m1 : 0|8@1+ (1,0) [0|0] \"\" BMS\n"
      "BO_ 2 N: 8 BMS\n"
      " SG_ Mux M : 0|8@1+ (1,0) [0|0] \"\" BMS\n"
      " SG_ Mux2 M : 8|8@1+ (1,0) [0|0] \"\" BMS\n"
      " SG_ B m1 : 16|8@1+ (1,0) [0|0] \"\" BMS\n"
      "BO_ 3 X: 8 BMS\n"
      " SG_ Sel : 0|8@1+ (1,0) [0|0] \"\" BMS\n"
      " SG_ C m1 : 8|8@1+ (1,0) [0|0] \"\" BMS\n"
      " SG_ D m1 : 16|8@1+ (1,0) [0|0] \"\" BMS\n"
      " SG_ E m1 : 24|8@1+ (1,0) [0|0] \"\" BMS\n"
      " SG_ F m1 : 32|8@1+ (1,0) [0|0] \"\" BMS\n"
      "SG_MUL_VAL_ 3 C Ghost 1-1;\n"
      "SG_MUL_VAL_ 3 D D 1-1;\n"
      "SG_MUL_VAL_ 3 E Sel 1-1;\n"
      "SG_MUL_VAL_ 3 F Sel 5-2;\n",
      {{"signal A: marked multiplexed (m1)", 2, 2},
       {"several simple multiplexers (Mux, Mux2)", 5, 2},
       // Two M signals: no simple multiplexer (as the reference decoder reads it), so B is plain.
       {"signal B: marked multiplexed (m1) but the message has several multiplexer signals (M)", 6, 2},
       {"its multiplexer Ghost does not exist", 9, 2},
       {"multiplexed by itself", 10, 2},
       {"signal E: its multiplexer Sel has no M flag", 11, 2},
       {"signal F: its multiplexer Sel has no M flag", 12, 2},
       {"multiplexer range 5-2 is empty", 12, 2}});
}

TEST(DbcCheckPositions, FloatLengths) {
  expect_located(
      "BO_ 1 M: 8 BMS\n"
      " SG_ F : 0|16@1+ (1,0) [0|0] \"\" BMS\n"
      " SG_ D : 16|32@1+ (1,0) [0|0] \"\" BMS\n"
      "SIG_VALTYPE_ 1 F : 1;\nSIG_VALTYPE_ 1 D : 2;\n",
      {{"float32 signal has length 16", 2, 2}, {"double signal has length 32", 3, 2}});
}

TEST(DbcCheckPositions, AttributeProblemsPointAtTheirStatements) {
  expect_located(
      "BU_: BMS\n"
      "BO_ 1 M: 8 BMS\n"
      " SG_ A : 0|8@1+ (1,0) [0|0] \"\" BMS\n"
      "BA_DEF_ BO_ \"Cycle\" INT 0 1000;\n"
      "BA_DEF_ BO_ \"Kind\" ENUM \"a\",\"b\";\n"
      "BA_DEF_ SG_ \"Name\" STRING;\n"
      "BA_DEF_DEF_ \"Cycle\" 5000;\n"
      "BA_ \"Cycle\" BO_ 1 2000;\n"
      "  BA_ \"Kind\" BO_ 1 7;\n"
      "BA_ \"Undefined\" SG_ 1 A 1;\n"
      "BA_ \"Name\" SG_ 1 A 3;\n"
      "BA_ \"Cycle\" BU_ BMS 1;\n"
      "BA_REL_ \"Timeout\" BU_SG_REL_ BMS SG_ 1 A 200;\n",
      {{"default: attribute Cycle: value 5000", 4, 1},
       {"message M (0x1): attribute Cycle: value 2000", 8, 1},
       {"enum index 7", 9, 3},
       {"attribute Undefined has no definition", 10, 1},
       {"numeric value for a STRING attribute", 11, 1},
       {"node BMS: attribute Cycle is defined for a message", 12, 1},
       {"relation of node BMS and signal A: attribute Timeout has no definition", 13, 1}});
}

TEST(DbcCheckPositions, ARepeatedAttributeIsLocatedAtTheLaterStatement) {
  expect_located(
      "BO_ 1 M: 8 BMS\nBA_DEF_ BO_ \"Cycle\" INT 0 1000;\nBA_ \"Cycle\" BO_ 1 10;\nBA_ \"Cycle\" BO_ 1 "
      "9999;\n",
      {{"value 9999", 4, 1}});
}

}  // namespace
}  // namespace cellguard::dbc
