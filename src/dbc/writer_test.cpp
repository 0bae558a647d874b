// Writer unit tests: what the written text says, and that it reads back to an equal Database.
#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "dbc/dbc.h"

namespace cellguard::dbc {
namespace {

Database parse_ok(const std::string& text) {
  auto result = parse_dbc(text, "test.dbc");
  EXPECT_TRUE(result.ok()) << (result.ok() ? "" : result.error().message);
  if (!result.ok()) return {};
  return std::move(result).value().database;
}

// write -> parse gives the same Database, and writing that again gives the same text.
void expect_round_trip(const Database& db) {
  const std::string written = write_dbc(db);
  auto again = parse_dbc(written, "written.dbc");
  ASSERT_TRUE(again.ok()) << again.error().message << "\n" << written;
  EXPECT_TRUE(again->database == db) << written;
  EXPECT_EQ(write_dbc(again->database), written);
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

Database sample_database() {
  Database db;
  db.version = "1.2";
  db.new_symbols = {"NS_DESC_", "CM_", "BA_DEF_", "BA_", "VAL_"};
  db.nodes = {{"BMS", "The battery \"master\"", {}, {}}, {"Logger", "", {}, {}}};
  db.value_tables = {{"OnOff", {{1, "On"}, {0, "Off"}}}};
  Message m;
  m.id = 0x181;
  m.name = "BMU01_pdo1";
  m.length = 8;
  m.sender = "BMS";
  m.comment = "Currents\nand voltages";
  Signal current;
  current.name = "CMA_Current";
  current.length = 16;
  current.is_signed = true;
  current.scale = 0.1;
  current.minimum = -3276.8;
  current.maximum = 3276.7;
  current.unit = "A";
  current.receivers = {"Logger"};
  current.value_descriptions = {{-32768, "Invalid"}};
  m.signals.push_back(current);
  Signal temp;
  temp.name = "CMA_Temp";
  temp.start_bit = 23;
  temp.length = 8;
  temp.byte_order = ByteOrder::big_endian;
  temp.offset = -40;
  temp.unit =
      "\xC2\xB0"
      "C";
  temp.comment = "C:\\path";
  m.signals.push_back(temp);
  db.messages.push_back(m);
  return db;
}

TEST(DbcWriter, WritesTheStandardSectionsInOrder) {
  const std::string text = write_dbc(sample_database());
  const auto version = text.find("VERSION \"1.2\"");
  const auto ns = text.find("NS_ :");
  const auto bs = text.find("BS_:");
  const auto bu = text.find("BU_: BMS Logger");
  const auto table = text.find("VAL_TABLE_ OnOff 1 \"On\" 0 \"Off\" ;");
  const auto bo = text.find("BO_ 385 BMU01_pdo1: 8 BMS");
  const auto cm = text.find("CM_ BU_ BMS");
  const auto val = text.find("VAL_ 385 CMA_Current -32768 \"Invalid\" ;");
  ASSERT_NE(val, std::string::npos);
  EXPECT_LT(version, ns);
  EXPECT_LT(ns, bs);
  EXPECT_LT(bs, bu);
  EXPECT_LT(bu, table);
  EXPECT_LT(table, bo);
  EXPECT_LT(bo, cm);
  EXPECT_LT(cm, val);
}

TEST(DbcWriter, WritesSignalsWithShortestNumbers) {
  const std::string text = write_dbc(sample_database());
  EXPECT_TRUE(contains(text, " SG_ CMA_Current : 0|16@1- (0.1,0) [-3276.8|3276.7] \"A\" Logger\n")) << text;
  EXPECT_TRUE(contains(text,
                       " SG_ CMA_Temp : 23|8@0+ (1,-40) [0|0] \"\xC2\xB0"
                       "C\" Vector__XXX\n"))
      << text;
}

TEST(DbcWriter, EscapesQuotesAndBackslashesInStrings) {
  const std::string text = write_dbc(sample_database());
  EXPECT_TRUE(contains(text, "CM_ BU_ BMS \"The battery \\\"master\\\"\";")) << text;
  EXPECT_TRUE(contains(text, "CM_ SG_ 385 CMA_Temp \"C:\\\\path\";")) << text;
}

TEST(DbcWriter, SampleDatabaseReadsBackEqual) { expect_round_trip(sample_database()); }

TEST(DbcWriter, KeepsStatementsOfSectionsTheModelDoesNotDescribe) {
  Database db = sample_database();
  db.other_statements = {"BU_SG_REL_ BMS SG_ 1 S;", "FILTER something odd;", "CAT_DEF_ 1 \"unterminated;"};
  expect_round_trip(db);
}

TEST(DbcWriter, WritesExtendedIdsWithBit31) {
  Database db;
  Message m;
  m.id = 0x39;
  m.extended = true;
  m.name = "Ext";
  m.length = 8;
  db.messages.push_back(m);
  EXPECT_TRUE(contains(write_dbc(db), "BO_ 2147483705 Ext: 8 Vector__XXX"));
  expect_round_trip(db);
}

TEST(DbcWriter, ValuesThatNeedAllDigitsReadBackExactly) {
  auto db = sample_database();
  auto& s = db.messages[0].signals[0];
  s.scale = 1.0 / 3.0;
  s.offset = -1e-300;
  s.minimum = -1.7976931348623157e308;
  s.maximum = 1e308;
  expect_round_trip(db);
}

TEST(DbcWriter, InfiniteLimitsReadBackAsInfinity) {
  auto db = sample_database();
  db.messages[0].signals[0].minimum = -std::numeric_limits<double>::infinity();
  db.messages[0].signals[0].maximum = std::numeric_limits<double>::infinity();
  EXPECT_TRUE(contains(write_dbc(db), "[-1E+309|1E+309]"));
  expect_round_trip(db);
}

TEST(DbcWriter, SimpleMultiplexingNeedsNoExtendedSection) {
  const auto db = parse_ok(
      "BO_ 1 M: 8 BMS\n"
      " SG_ Mux M : 0|8@1+ (1,0) [0|0] \"\" BMS\n"
      " SG_ A m0 : 8|8@1+ (1,0) [0|0] \"\" BMS\n");
  const std::string text = write_dbc(db);
  EXPECT_TRUE(contains(text, " SG_ Mux M : 0|8@1+")) << text;
  EXPECT_TRUE(contains(text, " SG_ A m0 : 8|8@1+")) << text;
  EXPECT_FALSE(contains(text, "SG_MUL_VAL_")) << text;
  expect_round_trip(db);
}

// With two multiplexer signals (MuxA "M" and A2_MuxB "m2M") the reference decoder sees no simple
// multiplexer: every multiplexed signal needs its SG_MUL_VAL_ line, or it reads them as plain signals.
TEST(DbcWriter, ExtendedMultiplexingWritesEveryRangeWhenThereAreSeveralMultiplexers) {
  const auto db = parse_ok(
      "BO_ 2147483649 M: 8 BMS\n"
      " SG_ B1 m1 : 24|8@1- (1,0) [0|0] \"\" BMS\n"
      " SG_ A2_MuxB m2M : 8|8@1- (1,0) [0|0] \"\" BMS\n"
      " SG_ A1 m1 : 16|8@1- (1,0) [0|0] \"\" BMS\n"
      " SG_ MuxA M : 0|8@1- (1,0) [0|0] \"\" BMS\n"
      "SG_MUL_VAL_ 2147483649 B1 A2_MuxB 1-1, 4-7;\n"
      "SG_MUL_VAL_ 2147483649 A2_MuxB MuxA 2-2;\n"
      "SG_MUL_VAL_ 2147483649 A1 MuxA 1-1;\n");
  const std::string text = write_dbc(db);
  EXPECT_TRUE(contains(text, " SG_ A2_MuxB m2M : ")) << text;
  EXPECT_TRUE(contains(text, "SG_MUL_VAL_ 2147483649 B1 A2_MuxB 1-1, 4-7;")) << text;
  EXPECT_TRUE(contains(text, "SG_MUL_VAL_ 2147483649 A1 MuxA 1-1;")) << text;
  EXPECT_TRUE(contains(text, "SG_MUL_VAL_ 2147483649 A2_MuxB MuxA 2-2;")) << text;
  expect_round_trip(db);
}

TEST(DbcWriter, WritesFloatValueTypes) {
  const auto db = parse_ok("BO_ 1 M: 8 BMS\n SG_ F : 0|32@1- (1,0) [0|0] \"\" BMS\nSIG_VALTYPE_ 1 F : 1;\n");
  EXPECT_TRUE(contains(write_dbc(db), "SIG_VALTYPE_ 1 F : 1;"));
  expect_round_trip(db);
}

TEST(DbcWriter, AttributesOfEveryKindReadBackEqual) {
  const auto db = parse_ok(
      "BU_: BMS Charger\n"
      "BO_ 2147558192 Foo: 8 BMS\n SG_ Bar : 0|8@1+ (1,0) [0|0] \"\" Charger\n"
      "EV_ Relay: 0 [0|1] \"\" 0 7 DUMMY_NODE_VECTOR0 BMS;\n"
      "BA_DEF_ \"DBName\" STRING ;\n"
      "BA_DEF_ BU_ \"Addr\" HEX 0 255;\n"
      "BA_DEF_ BO_ \"GenMsgCycleTime\" INT 0 100000000000;\n"
      "BA_DEF_ SG_ \"Factor\" FLOAT -1.5 1E+10;\n"
      "BA_DEF_ EV_ \"EvAttr\" INT 0 1;\n"
      "BA_DEF_REL_ BU_SG_REL_ \"Timeout\" INT 0 65535;\n"
      "BA_DEF_ BO_ \"Kind\" ENUM \"A\",\"B\";\n"
      "BA_DEF_REL_ BU_EV_REL_ \"EvRel\" STRING ;\n"
      "BA_DEF_DEF_ \"DBName\" \"\";\n"
      "BA_DEF_DEF_ \"Factor\" 0.5;\n"
      "BA_DEF_DEF_ \"Kind\" \"A\";\n"
      "BA_DEF_DEF_REL_ \"Timeout\" 10;\n"
      "BA_ \"DBName\" \"rig\";\n"
      "BA_ \"Addr\" BU_ BMS 17;\n"
      "BA_ \"GenMsgCycleTime\" BO_ 2147558192 99999999999;\n"
      "BA_ \"Kind\" BO_ 2147558192 \"B\";\n"
      "BA_ \"Factor\" SG_ 2147558192 Bar 3;\n"
      "BA_ \"EvAttr\" EV_ Relay 1;\n"
      "BA_REL_ \"Timeout\" BU_SG_REL_ Charger SG_ 2147558192 Bar 200;\n"
      "BA_REL_ \"EvRel\" BU_EV_REL_ BMS Relay \"x\";\n");
  // A FLOAT attribute written as "3" stays a double.
  EXPECT_EQ(db.messages[0].signals[0].attributes[0].value, AttributeValue(3.0));
  expect_round_trip(db);
}

TEST(DbcWriter, EnvironmentVariablesTransmittersAndGroupsReadBackEqual) {
  const auto db = parse_ok(
      "BU_: BMS Charger\n"
      "BO_ 1 M: 8 BMS\n SG_ A : 0|8@1+ (1,0) [0|0] \"\" BMS\n"
      " SG_ B : 8|8@1+ (1,0) [0|0] \"\" BMS\n"
      "BO_TX_BU_ 1 : BMS,Charger;\n"
      "EV_ Relay: 0 [0|1] \"V\" 0.5 7 DUMMY_NODE_VECTOR8000 BMS,Charger;\n"
      "ENVVAR_DATA_ Relay: 4;\n"
      "CM_ EV_ Relay \"relay state\";\n"
      "VAL_ Relay 1 \"Closed\" 0 \"Open\" ;\n"
      "SIG_GROUP_ 1 Group 2 : A B;\n");
  expect_round_trip(db);
}

TEST(DbcWriter, DuplicateMessagesAreBothWritten) {
  const auto db = parse_ok("BO_ 5 First: 8 BMS\nBO_ 5 Second: 8 BMS\n");
  const std::string text = write_dbc(db);
  EXPECT_TRUE(contains(text, "BO_ 5 First: 8 BMS"));
  EXPECT_TRUE(contains(text, "BO_ 5 Second: 8 BMS"));
  expect_round_trip(db);
}

TEST(DbcWriter, EmptyDatabaseReadsBackEqual) { expect_round_trip(Database{}); }

TEST(DbcWriter, BitTimingIsKept) {
  const auto db = parse_ok("BS_: 500 : 12,34\n");
  expect_round_trip(db);
}

}  // namespace
}  // namespace cellguard::dbc
