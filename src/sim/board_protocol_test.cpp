// The sensor board's line protocol and conversions (shared/spec/seed-rig.md, "Arduino serial protocol").
#include "sim/board_protocol.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

namespace cellguard::sim {
namespace {

// Temperature change of one ADC count at `counts`, by the rig's forward conversion.
double count_resolution_c(int counts) {
  const auto& table = rig_thermistor_table();
  return std::max(
      std::abs(rig_thermistor_temperature_c(table, counts + 1) - rig_thermistor_temperature_c(table, counts)),
      std::abs(rig_thermistor_temperature_c(table, counts) -
               rig_thermistor_temperature_c(table, counts - 1)));
}

TEST(BoardProtocol, LineIsTheRigsFormatWithCrLf) {
  EXPECT_EQ(format_board_line({512, 498, 102, std::nullopt}),
            "Ardu_Temp1:512,Ardu_Temp2:498,Ardu_Press:102\r\n");
}

TEST(BoardProtocol, GroundFaultExtensionFieldOnlyWhenEnabled) {
  EXPECT_EQ(format_board_line({1, 2, 3, true}), "Ardu_Temp1:1,Ardu_Temp2:2,Ardu_Press:3,Ardu_GndFault:1\r\n");
  EXPECT_EQ(format_board_line({1, 2, 3, false}),
            "Ardu_Temp1:1,Ardu_Temp2:2,Ardu_Press:3,Ardu_GndFault:0\r\n");
}

TEST(BoardProtocol, ThermistorCountsRoundTripThroughTheRigsConversionWithinOneCount) {
  const auto& table = rig_thermistor_table();
  for (double t = -39.5; t <= 139.5; t += 0.5) {
    const int counts = thermistor_counts(thermistor_resistance_ohm(table, t));
    ASSERT_GT(counts, 0);
    ASSERT_LT(counts, kBoardAdcMax);
    const double back = rig_thermistor_temperature_c(table, counts);
    // Rounding to a whole count is the only loss: half a count's worth of temperature, plus slack
    // where the count straddles a table row.
    EXPECT_NEAR(back, t, count_resolution_c(counts)) << "at " << t << " °C, counts " << counts;
  }
}

TEST(BoardProtocol, ThermistorAt25CIsAboutTwoThirdsOfTheScale) {
  // 25 °C lies between the rows (33 °C, 2150 Ω) and (21 °C, 3400 Ω): R = 2983.3 Ω,
  // adc = 1024·R/(2200+R) = 589.4 → 589.
  const double r = thermistor_resistance_ohm(rig_thermistor_table(), 25.0);
  EXPECT_NEAR(r, 2983.33, 0.01);
  EXPECT_EQ(thermistor_counts(r), 589);
}

TEST(BoardProtocol, ThermistorClampsOutsideTheTable) {
  const auto& table = rig_thermistor_table();
  EXPECT_DOUBLE_EQ(thermistor_resistance_ohm(table, 200), 40);
  EXPECT_DOUBLE_EQ(thermistor_resistance_ohm(table, -80), 100700);
  // The rig's forward conversion outside the table: 140 °C and −1.
  EXPECT_DOUBLE_EQ(rig_thermistor_temperature_c(table, 0), 140);
  EXPECT_DOUBLE_EQ(rig_thermistor_temperature_c(table, 1023), -1);
}

TEST(BoardProtocol, PressureRoundTripWithinOneCount) {
  const double bar_per_count = 5.0 / 1024 / 4.0 * 150;
  for (double p = 0; p <= 150; p += 0.25) {
    const int counts = pressure_counts(p);
    EXPECT_NEAR(rig_pressure_bar(counts), p, bar_per_count / 2 + 1e-9) << p;
  }
  EXPECT_EQ(pressure_counts(0), 102);    // 0.5 V
  EXPECT_EQ(pressure_counts(150), 922);  // 4.5 V
  EXPECT_EQ(pressure_counts(-5), 102);
  EXPECT_DOUBLE_EQ(rig_pressure_bar(50), 0);      // below 0.5 V
  EXPECT_DOUBLE_EQ(rig_pressure_bar(1000), 150);  // above 4.5 V
}

TEST(BoardProtocol, ParsesTheRigsCommand) {
  CommandParser parser;
  const auto commands = parser.feed("6:1&7:1");
  ASSERT_EQ(commands.size(), 2u);
  EXPECT_EQ(commands[0], (PinCommand{6, true}));
  EXPECT_EQ(commands[1], (PinCommand{7, true}));
  EXPECT_EQ(parser.malformed_bytes(), 0u);
}

TEST(BoardProtocol, ParsesCommandsSentBackToBackWithoutSeparator) {
  CommandParser parser;
  const auto commands = parser.feed("6:1&7:15:0&3:012:1");
  const std::vector<PinCommand> expected = {{6, true}, {7, true}, {5, false}, {3, false}, {12, true}};
  EXPECT_EQ(commands, expected);
  EXPECT_EQ(parser.malformed_bytes(), 0u);
}

TEST(BoardProtocol, ParsesCommandsSplitAcrossReads) {
  CommandParser parser;
  std::vector<PinCommand> all;
  for (const char byte : std::string("5:1&3:1&4:0")) {
    for (const auto& command : parser.feed(std::string(1, byte))) {
      all.push_back(command);
    }
  }
  const std::vector<PinCommand> expected = {{5, true}, {3, true}, {4, false}};
  EXPECT_EQ(all, expected);
}

TEST(BoardProtocol, SkipsGarbageAndResumesAtTheNextPair) {
  CommandParser parser;
  const auto commands = parser.feed("x6:9&\r\n7:1&:1&123:0&5:0");
  // "6:9" has an invalid value; "123" is too long a pin (its "3:0" is still a valid pair).
  const std::vector<PinCommand> expected = {{7, true}, {3, false}, {5, false}};
  EXPECT_EQ(commands, expected);
  EXPECT_GT(parser.malformed_bytes(), 0u);
}

TEST(BoardProtocol, FormatsCommandsAsTheRigsHostDoes) {
  EXPECT_EQ(format_pin_commands({{6, true}, {7, false}}), "6:1&7:0");
}

TEST(BoardProtocol, ParsesAThermistorTableCsv) {
  auto table = parse_thermistor_table("140,40\n100,185\r\n\n-40,100700");
  ASSERT_TRUE(table.ok()) << table.error().message;
  ASSERT_EQ(table->size(), 3u);
  EXPECT_DOUBLE_EQ((*table)[1].resistance_ohm, 185);
  EXPECT_FALSE(parse_thermistor_table("140,40\n150,50").ok());  // temperature must fall
  EXPECT_FALSE(parse_thermistor_table("140,40").ok());
  EXPECT_FALSE(parse_thermistor_table("140;40\n100,185").ok());
}

}  // namespace
}  // namespace cellguard::sim
