// Parser unit tests: one behaviour per test, on small DBC texts written for these tests.
#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <variant>

#include "dbc/dbc.h"

namespace cellguard::dbc {
namespace {

constexpr const char* kHeader =
    "VERSION \"1.0\"\n"
    "\n"
    "NS_ :\n"
    "\tNS_DESC_\n"
    "\tCM_\n"
    "\tBA_DEF_\n"
    "\n"
    "BS_:\n"
    "\n"
    "BU_: BMS Charger Logger\n";

Database parse_ok(const std::string& text) {
  auto result = parse_dbc(text, "test.dbc");
  EXPECT_TRUE(result.ok()) << (result.ok() ? "" : result.error().message);
  if (!result.ok()) return {};
  return std::move(result).value().database;
}

std::string parse_error(const std::string& text) {
  auto result = parse_dbc(text, "test.dbc");
  EXPECT_FALSE(result.ok());
  return result.ok() ? std::string() : result.error().message;
}

const Signal& only_signal(const Database& db) {
  static const Signal kNone;
  if (db.messages.size() != 1 || db.messages[0].signals.size() != 1) {
    ADD_FAILURE() << "expected one message with one signal";
    return kNone;
  }
  return db.messages[0].signals[0];
}

TEST(DbcParser, ReadsVersionNewSymbolsBitTimingAndNodes) {
  const auto db = parse_ok(kHeader);
  EXPECT_EQ(db.version, "1.0");
  EXPECT_EQ(db.new_symbols, (std::vector<std::string>{"NS_DESC_", "CM_", "BA_DEF_"}));
  EXPECT_EQ(db.bit_timing, "");
  ASSERT_EQ(db.nodes.size(), 3u);
  EXPECT_EQ(db.nodes[0].name, "BMS");
  EXPECT_EQ(db.nodes[2].name, "Logger");
}

TEST(DbcParser, AcceptsAnEmptyNewSymbolsList) {
  const auto db = parse_ok("VERSION \"\"\nNS_ :\nBS_:\nBU_:\n");
  EXPECT_TRUE(db.new_symbols.empty());
  EXPECT_TRUE(db.nodes.empty());
}

TEST(DbcParser, KeepsBitTimingText) {
  EXPECT_EQ(parse_ok("BS_: 500 : 12,34\nBU_:\n").bit_timing, "500 : 12,34");
}

TEST(DbcParser, ReadsAnIntelSignalWithAllItsFields) {
  const auto db = parse_ok(std::string(kHeader) +
                           "BO_ 385 BMU01_pdo1: 8 BMS\n"
                           " SG_ CMA_Current : 0|16@1- (0.1,-5) [-3276.8|3276.7] \"A\" Charger,Logger\n");
  ASSERT_EQ(db.messages.size(), 1u);
  const Message& m = db.messages[0];
  EXPECT_EQ(m.id, 385u);
  EXPECT_FALSE(m.extended);
  EXPECT_EQ(m.name, "BMU01_pdo1");
  EXPECT_EQ(m.length, 8u);
  EXPECT_EQ(m.sender, "BMS");
  const Signal& s = only_signal(db);
  EXPECT_EQ(s.name, "CMA_Current");
  EXPECT_EQ(s.start_bit, 0u);
  EXPECT_EQ(s.length, 16u);
  EXPECT_EQ(s.byte_order, ByteOrder::little_endian);
  EXPECT_TRUE(s.is_signed);
  EXPECT_EQ(s.scale, 0.1);
  EXPECT_EQ(s.offset, -5.0);
  EXPECT_EQ(s.minimum, -3276.8);
  EXPECT_EQ(s.maximum, 3276.7);
  EXPECT_EQ(s.unit, "A");
  EXPECT_EQ(s.receivers, (std::vector<std::string>{"Charger", "Logger"}));
  EXPECT_FALSE(s.is_multiplexed());
}

TEST(DbcParser, ReadsAMotorolaUnsignedSignal) {
  const auto s = only_signal(parse_ok("BO_ 1 M: 8 BMS\n SG_ S : 7|12@0+ (1,0) [0|4095] \"\" Logger\n"));
  EXPECT_EQ(s.byte_order, ByteOrder::big_endian);
  EXPECT_FALSE(s.is_signed);
  EXPECT_EQ(s.start_bit, 7u);
}

TEST(DbcParser, AcceptsReceiversSeparatedBySpaces) {
  const auto s = only_signal(parse_ok("BO_ 1 M: 8 BMS\n SG_ S : 0|8@1+ (1,0) [0|0] \"\" BMS Charger\n"));
  EXPECT_EQ(s.receivers, (std::vector<std::string>{"BMS", "Charger"}));
}

TEST(DbcParser, DropsTheVectorPlaceholderNode) {
  const auto db = parse_ok("BO_ 1 M: 8 Vector__XXX\n SG_ S : 0|8@1+ (1,0) [0|0] \"\" Vector__XXX\n");
  EXPECT_EQ(db.messages[0].sender, "");
  EXPECT_TRUE(db.messages[0].signals[0].receivers.empty());
}

TEST(DbcParser, StoresExtendedIdsWithoutTheFlagBit) {
  const auto db = parse_ok("BO_ 2147483705 Ext: 8 Vector__XXX\n");
  EXPECT_EQ(db.messages[0].id, 0x39u);
  EXPECT_TRUE(db.messages[0].extended);
  EXPECT_EQ(db.messages[0].file_id(), 2147483705u);
}

TEST(DbcParser, KeepsTheIndependentSignalsMessage) {
  const auto db = parse_ok(
      "BO_ 3221225472 VECTOR__INDEPENDENT_SIG_MSG: 0 Vector__XXX\n"
      " SG_ Orphan : 0|8@1+ (1,0) [0|0] \"\" Vector__XXX\n");
  ASSERT_EQ(db.messages.size(), 1u);
  EXPECT_TRUE(is_independent_signals_message(db.messages[0]));
  EXPECT_EQ(db.messages[0].length, 0u);
  EXPECT_EQ(db.find_message(db.messages[0].id, true), nullptr);
}

TEST(DbcParser, AcceptsZeroLengthMessages) {
  const auto db = parse_ok("BO_ 128 EMERGNECY: 0 BMS\n");
  EXPECT_EQ(db.messages[0].length, 0u);
}

TEST(DbcParser, KeepsBothDuplicateMessagesAndWarnsTheLaterWins) {
  auto result = parse_dbc("BO_ 5 First: 8 BMS\n\nBO_ 5 Second: 8 BMS\n", "dup.dbc");
  ASSERT_TRUE(result.ok());
  const auto& db = result->database;
  ASSERT_EQ(db.messages.size(), 2u);
  EXPECT_EQ(db.find_message(5, false)->name, "Second");
  ASSERT_EQ(result->warnings.size(), 1u);
  EXPECT_EQ(result->warnings[0].line, 3);
  EXPECT_NE(result->warnings[0].message.find("dup.dbc:3:1: duplicate message id 0x5"), std::string::npos);
}

TEST(DbcParser, ReadsHugeNumbersInRanges) {
  const auto s = only_signal(
      parse_ok("BO_ 1 M: 8 BMS\n SG_ S : 0|64@1- (1,0) [-1.7976931348623157E+308|1E+308] \"\" BMS\n"));
  EXPECT_EQ(s.minimum, -1.7976931348623157e308);
  EXPECT_EQ(s.maximum, 1e308);
}

TEST(DbcParser, ReadsIntegersBeyondThirtyTwoBitsInRanges) {
  const auto s =
      only_signal(parse_ok("BO_ 1 M: 8 BMS\n SG_ S : 0|64@1+ (1,0) [0|18446744073709551615] \"\" BMS\n"));
  EXPECT_EQ(s.maximum, 18446744073709551615.0);
}

TEST(DbcParser, ResolvesSimpleMultiplexing) {
  const auto db = parse_ok(
      "BO_ 1 M: 8 BMS\n"
      " SG_ Mux M : 0|8@1+ (1,0) [0|0] \"\" BMS\n"
      " SG_ A m0 : 8|8@1+ (1,0) [0|0] \"\" BMS\n"
      " SG_ B m1 : 8|16@1+ (1,0) [0|0] \"\" BMS\n");
  const auto& signals = db.messages[0].signals;
  EXPECT_TRUE(signals[0].is_multiplexer);
  EXPECT_FALSE(signals[0].is_multiplexed());
  EXPECT_EQ(signals[1].multiplexer, "Mux");
  EXPECT_EQ(signals[1].multiplex_value, 0u);
  EXPECT_EQ(signals[1].multiplex_ranges, (std::vector<MultiplexRange>{{0, 0}}));
  EXPECT_EQ(signals[2].multiplex_ranges, (std::vector<MultiplexRange>{{1, 1}}));
}

TEST(DbcParser, ResolvesAMultiplexerDeclaredAfterItsSignals) {
  const auto db = parse_ok(
      "BO_ 1 M: 8 BMS\n"
      " SG_ A m3 : 8|8@1+ (1,0) [0|0] \"\" BMS\n"
      " SG_ Mux M : 0|8@1+ (1,0) [0|0] \"\" BMS\n");
  EXPECT_EQ(db.messages[0].signals[0].multiplexer, "Mux");
}

TEST(DbcParser, ExtendedMultiplexingReplacesRangesAndNamesTheMultiplexer) {
  const auto db = parse_ok(
      "BO_ 2147483649 M: 8 BMS\n"
      " SG_ B1 m1 : 24|8@1- (1,0) [0|0] \"\" BMS\n"
      " SG_ A2_MuxB m2M : 8|8@1- (1,0) [0|0] \"\" BMS\n"
      " SG_ MuxA M : 0|8@1- (1,0) [0|0] \"\" BMS\n"
      "SG_MUL_VAL_ 2147483649 B1 A2_MuxB 1-1, 4-7;\n"
      "SG_MUL_VAL_ 2147483649 A2_MuxB MuxA 2-2;\n");
  const auto& m = db.messages[0];
  const Signal* b1 = m.find_signal("B1");
  ASSERT_NE(b1, nullptr);
  EXPECT_EQ(b1->multiplexer, "A2_MuxB");
  EXPECT_EQ(b1->multiplex_ranges, (std::vector<MultiplexRange>{{1, 1}, {4, 7}}));
  const Signal* cascaded = m.find_signal("A2_MuxB");
  EXPECT_TRUE(cascaded->is_multiplexer);
  EXPECT_EQ(cascaded->multiplex_value, 2u);
  EXPECT_EQ(cascaded->multiplexer, "MuxA");
}

TEST(DbcParser, ReadsSignalValueTypes) {
  const auto db = parse_ok(
      "BO_ 1 M: 8 BMS\n"
      " SG_ F : 0|32@1- (1,0) [0|0] \"\" BMS\n"
      " SG_ D : 0|64@1- (1,0) [0|0] \"\" BMS\n"
      "SIG_VALTYPE_ 1 F : 1;\nSIG_VALTYPE_ 1 D : 2;\n");
  EXPECT_EQ(db.messages[0].signals[0].value_type, ValueType::float32);
  EXPECT_EQ(db.messages[0].signals[1].value_type, ValueType::float64);
}

TEST(DbcParser, ReadsValueDescriptionsOfSignalsInFileOrder) {
  const auto s =
      only_signal(parse_ok("BO_ 1 M: 8 BMS\n SG_ S : 0|8@1- (1,0) [0|0] \"\" BMS\n"
                           "VAL_ 1 S 1 \"On\" 0 \"Off\" -1 \"Error\" ;\n"));
  EXPECT_EQ(s.value_descriptions, (std::vector<ValueDescription>{{1, "On"}, {0, "Off"}, {-1, "Error"}}));
}

TEST(DbcParser, ReadsValueTables) {
  const auto db = parse_ok("VAL_TABLE_ State 1 \"Enabled\" 0 \"Disabled\" ;\n");
  ASSERT_EQ(db.value_tables.size(), 1u);
  EXPECT_EQ(db.value_tables[0].name, "State");
  EXPECT_EQ(db.value_tables[0].values.size(), 2u);
}

TEST(DbcParser, ReadsCommentsOnEveryKindOfObject) {
  const auto db = parse_ok(std::string(kHeader) +
                           "BO_ 1 M: 8 BMS\n SG_ S : 0|8@1+ (1,0) [0|0] \"\" BMS\n"
                           "EV_ Ev: 0 [0|10] \"\" 0 1 DUMMY_NODE_VECTOR0 Vector__XXX;\n"
                           "CM_ \"The network.\";\n"
                           "CM_ BU_ BMS \"The BMS.\";\n"
                           "CM_ BO_ 1 \"The message.\";\n"
                           "CM_ SG_ 1 S \"The signal.\";\n"
                           "CM_ EV_ Ev \"The variable.\";\n");
  EXPECT_EQ(db.comment, "The network.");
  EXPECT_EQ(db.nodes[0].comment, "The BMS.");
  EXPECT_EQ(db.messages[0].comment, "The message.");
  EXPECT_EQ(db.messages[0].signals[0].comment, "The signal.");
  EXPECT_EQ(db.environment_variables[0].comment, "The variable.");
}

TEST(DbcParser, UnescapesQuotesAndBackslashesInStrings) {
  const auto db = parse_ok("CM_ \"say \\\"hi\\\" C:\\\\tmp\";\n");
  EXPECT_EQ(db.comment, "say \"hi\" C:\\tmp");
}

TEST(DbcParser, KeepsMultiLineCommentsWithPlainLineEnds) {
  const auto db = parse_ok("CM_ \"line one\r\nline two\";\r\n");
  EXPECT_EQ(db.comment, "line one\nline two");
}

TEST(DbcParser, ReadsAttributeDefinitionsOfEveryType) {
  const auto db = parse_ok(
      "BA_DEF_ BO_ \"GenMsgCycleTime\" INT 0 65535;\n"
      "BA_DEF_ \"Base\" HEX 1024 1087;\n"
      "BA_DEF_ SG_ \"Factor\" FLOAT -1.5 1E+10;\n"
      "BA_DEF_ BU_ \"Label\" STRING ;\n"
      "BA_DEF_ BO_ \"SendType\" ENUM \"Cyclic\",\"Event\";\n"
      "BA_DEF_ EV_ \"EvAttr\" INT 0 1;\n");
  const auto& defs = db.attribute_definitions;
  ASSERT_EQ(defs.size(), 6u);
  EXPECT_EQ(defs[0].object, AttributeObject::message);
  EXPECT_EQ(defs[0].type, AttributeType::integer);
  EXPECT_EQ(defs[0].maximum, 65535.0);
  EXPECT_EQ(defs[1].object, AttributeObject::network);
  EXPECT_EQ(defs[1].type, AttributeType::hex);
  EXPECT_EQ(defs[2].type, AttributeType::floating);
  EXPECT_EQ(defs[2].minimum, -1.5);
  EXPECT_EQ(defs[3].type, AttributeType::string);
  EXPECT_EQ(defs[4].enum_values, (std::vector<std::string>{"Cyclic", "Event"}));
  EXPECT_EQ(defs[5].object, AttributeObject::env_var);
}

TEST(DbcParser, TypesAttributeDefaultsAndValuesByTheirDefinition) {
  const auto db = parse_ok(std::string(kHeader) +
                           "BO_ 1 M: 8 BMS\n SG_ S : 0|8@1+ (1,0) [0|0] \"\" BMS\n"
                           "BA_DEF_ BO_ \"GenMsgCycleTime\" INT 0 65535;\n"
                           "BA_DEF_ SG_ \"Factor\" FLOAT 0 100;\n"
                           "BA_DEF_ BU_ \"Label\" STRING ;\n"
                           "BA_DEF_ BO_ \"SendType\" ENUM \"Cyclic\",\"Event\";\n"
                           "BA_DEF_DEF_ \"GenMsgCycleTime\" 100;\n"
                           "BA_DEF_DEF_ \"Factor\" 1;\n"
                           "BA_DEF_DEF_ \"SendType\" \"Cyclic\";\n"
                           "BA_ \"GenMsgCycleTime\" BO_ 1 250;\n"
                           "BA_ \"SendType\" BO_ 1 1;\n"
                           "BA_ \"Factor\" SG_ 1 S 2.5;\n"
                           "BA_ \"Label\" BU_ BMS \"main\";\n");
  EXPECT_EQ(db.attribute_definitions[0].default_value, AttributeValue(std::int64_t{100}));
  EXPECT_EQ(db.attribute_definitions[1].default_value, AttributeValue(1.0));
  EXPECT_EQ(db.attribute_definitions[3].default_value, AttributeValue(std::string("Cyclic")));
  const auto& m = db.messages[0];
  EXPECT_EQ(m.attributes, (std::vector<Attribute>{{"GenMsgCycleTime", std::int64_t{250}, {}},
                                                  {"SendType", std::int64_t{1}, {}}}));
  EXPECT_EQ(m.signals[0].attributes, (std::vector<Attribute>{{"Factor", 2.5, {}}}));
  EXPECT_EQ(db.nodes[0].attributes, (std::vector<Attribute>{{"Label", std::string("main"), {}}}));
  EXPECT_EQ(cycle_time_ms(db, m), 250);
}

TEST(DbcParser, KeepsEnumAttributeValuesWrittenAsText) {
  const auto db = parse_ok(
      "BO_ 1 M: 8 BMS\nBA_DEF_ BO_ \"VFrameFormat\" ENUM \"StandardCAN\",\"StandardCAN_FD\";\n"
      "BA_ \"VFrameFormat\" BO_ 1 \"StandardCAN_FD\";\n");
  EXPECT_EQ(db.messages[0].attributes[0].value, AttributeValue(std::string("StandardCAN_FD")));
  EXPECT_TRUE(is_fd(db, db.messages[0]));
}

TEST(DbcParser, ReadsAttributeIntegersBeyondThirtyTwoBits) {
  const auto db = parse_ok("BA_DEF_ \"Big\" INT 0 100000000000;\nBA_ \"Big\" 99999999999;\n");
  EXPECT_EQ(db.attribute_definitions[0].maximum, 100000000000.0);
  EXPECT_EQ(db.attributes[0].value, AttributeValue(std::int64_t{99999999999}));
}

TEST(DbcParser, ARepeatedAttributeValueReplacesTheEarlierOne) {
  const auto db = parse_ok(
      "BA_DEF_ \"A\" INT 0 9;\nBA_DEF_ \"B\" INT 0 9;\n"
      "BA_ \"A\" 1;\nBA_ \"B\" 2;\nBA_ \"A\" 3;\n");
  EXPECT_EQ(db.attributes, (std::vector<Attribute>{{"A", std::int64_t{3}, {}}, {"B", std::int64_t{2}, {}}}));
}

TEST(DbcParser, ReadsNetworkAttributes) {
  const auto db = parse_ok("BA_DEF_ \"DBName\" STRING ;\nBA_ \"DBName\" \"rig\";\n");
  EXPECT_EQ(db.attributes, (std::vector<Attribute>{{"DBName", std::string("rig"), {}}}));
}

TEST(DbcParser, ReadsRelationAttributeDefinitionsDefaultsAndValues) {
  const auto db = parse_ok(std::string(kHeader) +
                           "BO_ 2147558192 Foo: 8 BMS\n SG_ Bar : 0|8@1+ (1,0) [0|0] \"\" Charger\n"
                           "BA_DEF_REL_ BU_SG_REL_ \"Timeout\" INT 0 65535;\n"
                           "BA_DEF_REL_ BU_BO_REL_ \"Prio\" INT 0 7;\n"
                           "BA_DEF_DEF_REL_ \"Timeout\" 0;\n"
                           "BA_REL_ \"Timeout\" BU_SG_REL_ Charger SG_ 2147558192 Bar 200;\n"
                           "BA_REL_ \"Prio\" BU_BO_REL_ BMS 2147558192 3;\n");
  ASSERT_EQ(db.attribute_definitions.size(), 2u);
  EXPECT_EQ(db.attribute_definitions[0].object, AttributeObject::node_signal);
  EXPECT_EQ(db.attribute_definitions[1].object, AttributeObject::node_message);
  EXPECT_EQ(db.attribute_definitions[0].default_value, AttributeValue(std::int64_t{0}));
  ASSERT_EQ(db.relation_attributes.size(), 2u);
  const auto& r = db.relation_attributes[0];
  EXPECT_EQ(r.node, "Charger");
  EXPECT_EQ(r.message_id, 2147558192u);
  EXPECT_EQ(r.signal, "Bar");
  EXPECT_EQ(r.value, AttributeValue(std::int64_t{200}));
  EXPECT_EQ(db.relation_attributes[1].object, AttributeObject::node_message);
}

TEST(DbcParser, ReadsTransmittersOfAMessage) {
  const auto db = parse_ok(std::string(kHeader) + "BO_ 1 M: 8 BMS\nBO_TX_BU_ 1 : BMS,Charger;\n");
  EXPECT_EQ(db.messages[0].transmitters, (std::vector<std::string>{"BMS", "Charger"}));
}

TEST(DbcParser, ReadsSignalGroups) {
  const auto db = parse_ok(
      "BO_ 1 M: 8 BMS\n SG_ A : 0|8@1+ (1,0) [0|0] \"\" BMS\n"
      " SG_ B : 8|8@1+ (1,0) [0|0] \"\" BMS\n"
      "SIG_GROUP_ 1 Group 1 : A B;\n");
  ASSERT_EQ(db.messages[0].signal_groups.size(), 1u);
  EXPECT_EQ(db.messages[0].signal_groups[0].name, "Group");
  EXPECT_EQ(db.messages[0].signal_groups[0].signals, (std::vector<std::string>{"A", "B"}));
}

TEST(DbcParser, ReadsEnvironmentVariablesWithDataAndValueDescriptions) {
  const auto db = parse_ok(std::string(kHeader) +
                           "EV_ Relay: 0 [0|1] \"\" 0 7 DUMMY_NODE_VECTOR8000 BMS,Charger;\n"
                           "ENVVAR_DATA_ Relay: 4;\n"
                           "VAL_ Relay 1 \"Closed\" 0 \"Open\" ;\n");
  ASSERT_EQ(db.environment_variables.size(), 1u);
  const auto& ev = db.environment_variables[0];
  EXPECT_EQ(ev.name, "Relay");
  EXPECT_EQ(ev.maximum, 1.0);
  EXPECT_EQ(ev.id, 7u);
  EXPECT_EQ(ev.access_type, "DUMMY_NODE_VECTOR8000");
  EXPECT_EQ(ev.access_nodes, (std::vector<std::string>{"BMS", "Charger"}));
  EXPECT_EQ(ev.data_type, "4");
  EXPECT_EQ(ev.value_descriptions.size(), 2u);
}

TEST(DbcParser, SkipsUnknownSectionsUpToTheirSemicolon) {
  const auto db = parse_ok(std::string(kHeader) +
                           "BO_ 1 M: 8 BMS\n SG_ S : 0|8@1+ (1,0) [0|0] \"\" BMS\n"
                           "SGTYPE_ Type1 : 8@1+ (1,0) [0|0] \"x;y\" 0 ;\n"
                           "BU_SG_REL_ BMS SG_ 1 S;\n"
                           "BU_BO_REL_ BMS 1;\n"
                           "CAT_DEF_ 1 Cat 0 ;\n"
                           "CM_ BO_ 1 \"after\";\n");
  EXPECT_EQ(db.messages[0].comment, "after");
  EXPECT_EQ(db.other_statements,
            (std::vector<std::string>{"SGTYPE_ Type1 : 8@1+ (1,0) [0|0] \"x;y\" 0 ;",
                                      "BU_SG_REL_ BMS SG_ 1 S;", "BU_BO_REL_ BMS 1;", "CAT_DEF_ 1 Cat 0 ;"}));
}

TEST(DbcParser, AnUnknownStatementWithoutSemicolonEndsAtTheNextKeywordLine) {
  const auto db = parse_ok("FILTER something odd\nBO_ 1 M: 8 BMS\n");
  EXPECT_EQ(db.messages.size(), 1u);
  EXPECT_EQ(db.other_statements, (std::vector<std::string>{"FILTER something odd;"}));
}

TEST(DbcParser, SkipsLineComments) {
  const auto db = parse_ok("// a comment\nVERSION \"2.0\" // another\nBU_: A\n");
  EXPECT_EQ(db.version, "2.0");
  EXPECT_EQ(db.nodes.size(), 1u);
}

TEST(DbcParser, AcceptsCrlfLineEndsAndTabs) {
  const auto db = parse_ok(
      "VERSION \"\"\r\n\r\nNS_ :\r\n\tCM_\r\n\r\nBS_:\r\n\r\nBU_:\tA\tB\r\n\r\n"
      "BO_ 1 M:\t8 A\r\n\tSG_ S : 0|8@1+ (1,0) [0|0] \"\"\tB\r\n");
  EXPECT_EQ(db.new_symbols, (std::vector<std::string>{"CM_"}));
  EXPECT_EQ(db.nodes.size(), 2u);
  EXPECT_EQ(db.messages[0].signals[0].receivers, (std::vector<std::string>{"B"}));
}

TEST(DbcParser, SkipsAUtf8ByteOrderMark) {
  const auto db = parse_ok("\xEF\xBB\xBFVERSION \"3\"\nBO_ 1 M: 8 BMS\n");
  EXPECT_EQ(db.version, "3");
  EXPECT_EQ(db.messages.size(), 1u);
}

TEST(DbcParser, ConvertsCp1252TextToUtf8) {
  const auto s =
      only_signal(parse_ok("BO_ 1 M: 8 BMS\n SG_ T : 0|8@1- (1,0) [0|0] \"\xB0"
                           "C\" BMS\n"));
  EXPECT_EQ(s.unit,
            "\xC2\xB0"
            "C");
}

TEST(DbcParser, KeepsUtf8TextAsItIs) {
  const auto s =
      only_signal(parse_ok("BO_ 1 M: 8 BMS\n SG_ T : 0|8@1- (1,0) [0|0] \"\xC2\xB0"
                           "C\" BMS\n"));
  EXPECT_EQ(s.unit,
            "\xC2\xB0"
            "C");
}

TEST(DbcParser, UsesLongNamesFromSystemLongSymbolAttributes) {
  const auto db = parse_ok(
      "BU_: N_short\nBO_ 1 M_short: 8 N_short\n SG_ S_short : 0|8@1+ (1,0) [0|0] \"\" N_short\n"
      "BA_DEF_ BO_ \"SystemMessageLongSymbol\" STRING ;\n"
      "BA_DEF_ SG_ \"SystemSignalLongSymbol\" STRING ;\n"
      "BA_DEF_ BU_ \"SystemNodeLongSymbol\" STRING ;\n"
      "BA_ \"SystemMessageLongSymbol\" BO_ 1 \"M_long\";\n"
      "BA_ \"SystemSignalLongSymbol\" SG_ 1 S_short \"S_long\";\n"
      "BA_ \"SystemNodeLongSymbol\" BU_ N_short \"N_long\";\n");
  EXPECT_EQ(db.nodes[0].name, "N_long");
  EXPECT_EQ(db.messages[0].name, "M_long");
  EXPECT_EQ(db.messages[0].sender, "N_long");
  EXPECT_EQ(db.messages[0].signals[0].name, "S_long");
  EXPECT_EQ(db.messages[0].signals[0].receivers, (std::vector<std::string>{"N_long"}));
}

TEST(DbcParser, IgnoresLongNamesTheDbcSyntaxCannotCarry) {
  const auto db = parse_ok(
      "BO_ 1 M_short: 8 Vector__XXX\n"
      "BA_DEF_ BO_ \"SystemMessageLongSymbol\" STRING ;\n"
      "BA_ \"SystemMessageLongSymbol\" BO_ 1 \"not a name\";\n");
  EXPECT_EQ(db.messages[0].name, "M_short");
}

TEST(DbcParser, ReadsNumbersBeyondDoubleRangeAsInfinity) {
  const auto s = only_signal(parse_ok("BO_ 1 M: 8 BMS\n SG_ S : 0|8@1+ (1,0) [-1e999|1E+400] \"\" BMS\n"));
  EXPECT_EQ(s.minimum, -std::numeric_limits<double>::infinity());
  EXPECT_EQ(s.maximum, std::numeric_limits<double>::infinity());
}

TEST(DbcParser, WarnsAboutStatementsNamingUnknownMessages) {
  auto result = parse_dbc("CM_ BO_ 99 \"lost\";\n", "t.dbc");
  ASSERT_TRUE(result.ok());
  ASSERT_EQ(result->warnings.size(), 1u);
  EXPECT_EQ(result->warnings[0].line, 1);
}

TEST(DbcParser, LoadDbcNamesAMissingFile) {
  auto result = load_dbc("/nonexistent/cellguard/none.dbc");
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.error().message.find("none.dbc"), std::string::npos);
}

// ---- errors: "file:line:column: expected X, found Y" ----

TEST(DbcParserErrors, TruncatedFileNamesTheEndOfFile) {
  EXPECT_EQ(parse_error("BO_ 1 M: 8 BMS\n SG_ S : 0|8@1+ (1,0) [0|"),
            "test.dbc:2:26: expected a maximum, found end of file");
}

TEST(DbcParserErrors, MissingColonAfterMessageName) {
  EXPECT_EQ(parse_error("VERSION \"\"\nBO_ 1 M 8 BMS\n"), "test.dbc:2:9: expected ':', found '8'");
}

TEST(DbcParserErrors, BadNumberInScale) {
  EXPECT_EQ(parse_error("BO_ 1 M: 8 BMS\n SG_ S : 0|8@1+ (x,0) [0|0] \"\" BMS\n"),
            "test.dbc:2:18: expected a scale, found 'x'");
}

TEST(DbcParserErrors, NumberGluedToLettersIsNotANumber) {
  EXPECT_EQ(parse_error("BO_ 1 M: 8x BMS\n"), "test.dbc:1:10: expected a message length, found '8x'");
}

TEST(DbcParserErrors, UnterminatedStringPointsAtItsOpeningQuote) {
  EXPECT_EQ(parse_error("CM_ BO_ 1 \"never closed;\n\n"),
            "test.dbc:1:11: expected a closing '\"' for this string, found '\"never closed;'");
}

TEST(DbcParserErrors, MessageIdBeyondThirtyTwoBits) {
  EXPECT_EQ(parse_error("BO_ 4294967296 M: 8 BMS\n"),
            "test.dbc:1:5: expected a message id, found '4294967296'");
}

TEST(DbcParserErrors, BadByteOrder) {
  EXPECT_EQ(parse_error("BO_ 1 M: 8 BMS\n SG_ S : 0|8@2+ (1,0) [0|0] \"\" BMS\n"),
            "test.dbc:2:14: expected byte order 0 or 1, found '2'");
}

TEST(DbcParserErrors, BadMultiplexerIndicator) {
  EXPECT_EQ(parse_error("BO_ 1 M: 8 BMS\n SG_ S mux : 0|8@1+ (1,0) [0|0] \"\" BMS\n"),
            "test.dbc:2:8: expected a multiplexer indicator (M, mN or mNM), found 'mux'");
}

TEST(DbcParserErrors, SignalBeforeAnyMessage) {
  EXPECT_EQ(parse_error("SG_ S : 0|8@1+ (1,0) [0|0] \"\" BMS\n"),
            "test.dbc:1:1: expected BO_ before SG_, found 'SG_'");
}

TEST(DbcParserErrors, UnknownAttributeType) {
  EXPECT_EQ(parse_error("BA_DEF_ BO_ \"X\" REAL 0 1;\n"),
            "test.dbc:1:17: expected INT, HEX, FLOAT, STRING or ENUM, found 'REAL'");
}

TEST(DbcParserErrors, StrayCharacterAtStatementStart) {
  EXPECT_EQ(parse_error("VERSION \"\"\n}\n"), "test.dbc:2:1: expected a keyword, found '}'");
}

TEST(DbcParserErrors, MissingSemicolonAfterComment) {
  EXPECT_EQ(parse_error("CM_ \"text\"\nBO_ 1 M: 8 BMS\n"), "test.dbc:2:1: expected ';', found 'BO_'");
}

TEST(DbcParserErrors, CrlfDoesNotShiftColumns) {
  EXPECT_EQ(parse_error("VERSION \"\"\r\nBO_ 1 M 8 BMS\r\n"), "test.dbc:2:9: expected ':', found '8'");
}

TEST(DbcParserErrors, ArbitraryBytesGiveAnErrorNotACrash) {
  const std::string junk("\x00\xff\x01(\"[|@\x00",
                         9);  // the trailing NUL spelled out, not read past the literal
  auto result = parse_dbc(junk, "junk.dbc");
  EXPECT_FALSE(result.ok());
}

}  // namespace
}  // namespace cellguard::dbc
