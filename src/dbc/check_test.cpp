// Checker unit tests: each problem the checker reports, and silence on a clean file.
#include <gtest/gtest.h>

#include <string>

#include "dbc/dbc.h"

namespace cellguard::dbc {
namespace {

std::vector<Problem> check_text(const std::string& text) {
  auto result = parse_dbc(text, "test.dbc");
  EXPECT_TRUE(result.ok()) << (result.ok() ? "" : result.error().message);
  if (!result.ok()) return {};
  return check_dbc(result->database);
}

// The one problem reported; fails the test if there is not exactly one.
std::string only_problem(const std::vector<Problem>& problems) {
  if (problems.size() != 1) {
    std::string all;
    for (const auto& p : problems) all += p.message + "\n";
    ADD_FAILURE() << "expected one problem, got " << problems.size() << ":\n" << all;
    return {};
  }
  return problems[0].message;
}

TEST(DbcCheck, CleanFileHasNoProblems) {
  EXPECT_TRUE(check_text("BO_ 1 M: 8 BMS\n"
                         " SG_ A : 0|8@1+ (1,0) [0|0] \"\" BMS\n"
                         " SG_ B : 15|8@0+ (1,0) [0|0] \"\" BMS\n"
                         "BA_DEF_ BO_ \"GenMsgCycleTime\" INT 0 1000;\n"
                         "BA_ \"GenMsgCycleTime\" BO_ 1 100;\n")
                  .empty());
}

TEST(DbcCheck, ReportsOverlappingIntelSignals) {
  EXPECT_EQ(only_problem(check_text("BO_ 1 M: 8 BMS\n"
                                    " SG_ A : 0|8@1+ (1,0) [0|0] \"\" BMS\n"
                                    " SG_ B : 4|8@1+ (1,0) [0|0] \"\" BMS\n")),
            "message M (0x1) signal B: overlaps signal A (byte 0, bit 4)");
}

TEST(DbcCheck, ReportsOverlapBetweenByteOrders) {
  // Motorola 7|8 covers byte 0 entirely, as does Intel 0|8.
  const auto message =
      only_problem(check_text("BO_ 1 M: 8 BMS\n"
                              " SG_ A : 0|8@1+ (1,0) [0|0] \"\" BMS\n"
                              " SG_ B : 7|8@0+ (1,0) [0|0] \"\" BMS\n"));
  EXPECT_NE(message.find("signal B: overlaps signal A"), std::string::npos) << message;
}

TEST(DbcCheck, MotorolaSignalsCrossingBytesDoNotOverlapTheirNeighbours) {
  // 7|16@0 covers bytes 0-1; 23|8@0 covers byte 2.
  EXPECT_TRUE(check_text("BO_ 1 M: 3 BMS\n"
                         " SG_ A : 7|16@0+ (1,0) [0|0] \"\" BMS\n"
                         " SG_ B : 23|8@0+ (1,0) [0|0] \"\" BMS\n")
                  .empty());
}

TEST(DbcCheck, SignalsOfDifferentBranchesMayShareBits) {
  EXPECT_TRUE(check_text("BO_ 1 M: 8 BMS\n"
                         " SG_ Mux M : 0|8@1+ (1,0) [0|0] \"\" BMS\n"
                         " SG_ A m0 : 8|8@1+ (1,0) [0|0] \"\" BMS\n"
                         " SG_ B m1 : 8|8@1+ (1,0) [0|0] \"\" BMS\n")
                  .empty());
}

TEST(DbcCheck, ReportsOverlapWithinOneBranch) {
  const auto message =
      only_problem(check_text("BO_ 1 M: 8 BMS\n"
                              " SG_ Mux M : 0|8@1+ (1,0) [0|0] \"\" BMS\n"
                              " SG_ A m1 : 8|8@1+ (1,0) [0|0] \"\" BMS\n"
                              " SG_ B m1 : 12|8@1+ (1,0) [0|0] \"\" BMS\n"));
  EXPECT_NE(message.find("signal B: overlaps signal A"), std::string::npos) << message;
}

TEST(DbcCheck, ReportsSignalsOutsideThePayload) {
  EXPECT_EQ(only_problem(check_text("BO_ 1 M: 2 BMS\n SG_ A : 8|16@1+ (1,0) [0|0] \"\" BMS\n")),
            "message M (0x1) signal A: extends past the payload of 2 bytes");
}

TEST(DbcCheck, ReportsMotorolaSignalsOutsideThePayload) {
  // MSB at bit 0 (byte 0's LSB) and 16 bits run into byte 2.
  const auto message = only_problem(check_text("BO_ 1 M: 2 BMS\n SG_ A : 0|16@0+ (1,0) [0|0] \"\" BMS\n"));
  EXPECT_NE(message.find("signal A: extends past the payload"), std::string::npos) << message;
}

TEST(DbcCheck, IgnoresTheIndependentSignalsMessage) {
  EXPECT_TRUE(check_text("BO_ 3221225472 VECTOR__INDEPENDENT_SIG_MSG: 0 Vector__XXX\n"
                         " SG_ Orphan : 0|8@1+ (1,0) [0|0] \"\" Vector__XXX\n")
                  .empty());
}

TEST(DbcCheck, WarnsAboutMultiplexedSignalsWithoutAMultiplexer) {
  const auto problems = check_text("BO_ 1 M: 8 BMS\n SG_ A m1 : 8|8@1+ (1,0) [0|0] \"\" BMS\n");
  EXPECT_EQ(
      only_problem(problems),
      "message M (0x1) signal A: marked multiplexed (m1) but the message has no multiplexer signal (M): "
      "decoded as a plain signal");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].severity, Problem::Severity::warning);
}

TEST(DbcCheck, ReportsAnExtendedMultiplexerThatDoesNotExist) {
  const auto message =
      only_problem(check_text("BO_ 1 M: 8 BMS\n"
                              " SG_ A m1 : 8|8@1+ (1,0) [0|0] \"\" BMS\n"
                              " SG_ Mux M : 0|8@1+ (1,0) [0|0] \"\" BMS\n"
                              "SG_MUL_VAL_ 1 A Ghost 1-1;\n"));
  EXPECT_EQ(message, "message M (0x1) signal A: its multiplexer Ghost does not exist");
}

TEST(DbcCheck, ReportsSeveralSimpleMultiplexersInOneMessage) {
  const auto message =
      only_problem(check_text("BO_ 1 M: 8 BMS\n"
                              " SG_ Mux1 M : 0|8@1+ (1,0) [0|0] \"\" BMS\n"
                              " SG_ Mux2 M : 8|8@1+ (1,0) [0|0] \"\" BMS\n"));
  EXPECT_EQ(message,
            "message M (0x1): several simple multiplexers (Mux1, Mux2); only one may select the mN signals");
}

TEST(DbcCheck, ExtendedMultiplexingMayHaveSeveralTopLevelMultiplexers) {
  EXPECT_TRUE(check_text("BO_ 1 M: 8 BMS\n"
                         " SG_ Mux1 M : 0|8@1+ (1,0) [0|0] \"\" BMS\n"
                         " SG_ Mux2 M : 8|8@1+ (1,0) [0|0] \"\" BMS\n"
                         " SG_ A m1 : 16|8@1+ (1,0) [0|0] \"\" BMS\n"
                         " SG_ B m1 : 24|8@1+ (1,0) [0|0] \"\" BMS\n"
                         "SG_MUL_VAL_ 1 A Mux1 1-1;\n"
                         "SG_MUL_VAL_ 1 B Mux2 1-1;\n")
                  .empty());
}

TEST(DbcCheck, EmptyEnumDefaultIsOnlyAWarning) {
  const auto problems = check_text("BA_DEF_ \"Kind\" ENUM \"A\",\"B\";\nBA_DEF_DEF_ \"Kind\" \"\";\n");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].severity, Problem::Severity::warning);
}

TEST(DbcCheck, ReportsSignalLengthZero) {
  EXPECT_EQ(only_problem(check_text("BO_ 1 M: 8 BMS\n SG_ A : 0|0@1+ (1,0) [0|0] \"\" BMS\n")),
            "message M (0x1) signal A: length 0 is outside 1..64 bits");
}

TEST(DbcCheck, ReportsSignalLengthAboveSixtyFour) {
  const auto problems = check_text("BO_ 1 M: 16 BMS\n SG_ A : 0|65@1+ (1,0) [0|0] \"\" BMS\n");
  ASSERT_FALSE(problems.empty());
  EXPECT_EQ(problems[0].message, "message M (0x1) signal A: length 65 is outside 1..64 bits");
}

TEST(DbcCheck, ReportsFloat32WithoutThirtyTwoBits) {
  EXPECT_EQ(only_problem(
                check_text("BO_ 1 M: 8 BMS\n SG_ F : 0|16@1- (1,0) [0|0] \"\" BMS\nSIG_VALTYPE_ 1 F : 1;\n")),
            "message M (0x1) signal F: float32 signal has length 16, not 32");
}

TEST(DbcCheck, ReportsDoubleWithoutSixtyFourBits) {
  EXPECT_EQ(only_problem(
                check_text("BO_ 1 M: 8 BMS\n SG_ D : 0|32@1- (1,0) [0|0] \"\" BMS\nSIG_VALTYPE_ 1 D : 2;\n")),
            "message M (0x1) signal D: double signal has length 32, not 64");
}

TEST(DbcCheck, ReportsAttributeValuesWithoutDefinition) {
  EXPECT_EQ(only_problem(check_text("BO_ 1 M: 8 BMS\n SG_ A : 0|8@1+ (1,0) [0|0] \"\" BMS\n"
                                    "BA_ \"Undefined\" SG_ 1 A 5;\n")),
            "message M (0x1) signal A: attribute Undefined has no definition (BA_DEF_)");
}

TEST(DbcCheck, ReportsAttributeValuesOutsideTheirRange) {
  EXPECT_EQ(only_problem(check_text("BO_ 1 M: 8 BMS\n"
                                    "BA_DEF_ BO_ \"GenMsgCycleTime\" INT 0 1000;\n"
                                    "BA_ \"GenMsgCycleTime\" BO_ 1 5000;\n")),
            "message M (0x1): attribute GenMsgCycleTime: value 5000 outside its range [0, 1000]");
}

TEST(DbcCheck, ZeroZeroRangeMeansUnlimited) {
  EXPECT_TRUE(check_text("BO_ 1 M: 8 BMS\nBA_DEF_ BO_ \"T\" INT 0 0;\nBA_ \"T\" BO_ 1 5000;\n").empty());
}

TEST(DbcCheck, ReportsEnumIndexOutOfRange) {
  EXPECT_EQ(only_problem(check_text("BO_ 1 M: 8 BMS\n"
                                    "BA_DEF_ BO_ \"Kind\" ENUM \"A\",\"B\";\n"
                                    "BA_ \"Kind\" BO_ 1 2;\n")),
            "message M (0x1): attribute Kind: enum index 2 outside 0..1");
}

TEST(DbcCheck, ReportsEnumTextThatIsNotAValue) {
  EXPECT_EQ(only_problem(check_text("BA_DEF_ \"Kind\" ENUM \"A\",\"B\";\nBA_ \"Kind\" \"C\";\n")),
            "network: attribute Kind: \"C\" is not one of its enum values");
}

TEST(DbcCheck, WarnsAboutAttributesUsedOnTheWrongKindOfObject) {
  const auto problems = check_text("BO_ 1 M: 8 BMS\nBA_DEF_ SG_ \"Sig\" INT 0 10;\nBA_ \"Sig\" BO_ 1 5;\n");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].severity, Problem::Severity::warning);
}

TEST(DbcCheck, ReportsRelationAttributesWithoutDefinition) {
  const auto message = only_problem(check_text("BA_REL_ \"Timeout\" BU_SG_REL_ Charger SG_ 1 Bar 200;\n"));
  EXPECT_EQ(message,
            "relation of node Charger and signal Bar: attribute Timeout has no definition (BA_DEF_)");
}

}  // namespace
}  // namespace cellguard::dbc
