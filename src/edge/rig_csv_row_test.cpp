// The rig CSV row: column names and values in the rig's layout (seed/sample-record-log.csv).
#include "edge/rig_csv_row.h"

#include <gtest/gtest.h>

namespace cellguard::edge {
namespace {

TEST(EdgeRigCsvRow, PrefixFromTheNamePattern) {
  EXPECT_EQ(rig_prefix("BMU{id}_", 3), "BMU03_");
  EXPECT_EQ(rig_prefix("CMA{id}.", 12), "CMA12.");
  EXPECT_EQ(rig_prefix("", 7), "BMU07_");
}

TEST(EdgeRigCsvRow, FlagsOfLimitCausesOnly) {
  safety::Reason cell;
  cell.rule = safety::RuleKind::limit_high;
  cell.quantity = safety::Quantity::cell_voltage;
  safety::Reason board;
  board.rule = safety::RuleKind::limit_low;
  board.quantity = safety::Quantity::board_pressure;
  safety::Reason stale;
  stale.rule = safety::RuleKind::module_stale;
  stale.quantity = safety::Quantity::cell_voltage;
  const std::vector<safety::Reason> causes = {cell, board, stale};
  EXPECT_EQ(rig_flags(causes), (1u << 2) | (1u << 4));
  EXPECT_EQ(rig_flag_bit(safety::Quantity::dc_link_voltage), -1);
}

// No file before the modules are found: all expected, or the discovery window since the first.
TEST(EdgeRigCsvRow, ReadyOnceTheModulesAreFound) {
  EXPECT_FALSE(rig_csv_ready(0, 2, MonoTime(), MonoTime() + 5 * kSecond, kSecond));
  EXPECT_TRUE(rig_csv_ready(2, 2, MonoTime::from_ns(100), MonoTime::from_ns(100), kSecond));
  EXPECT_FALSE(
      rig_csv_ready(1, 2, MonoTime::from_ns(100), MonoTime::from_ns(100) + kSecond - Duration(1), kSecond));
  EXPECT_TRUE(rig_csv_ready(1, 2, MonoTime::from_ns(100), MonoTime::from_ns(100) + kSecond, kSecond));
}

TEST(EdgeRigCsvRow, BoardInverterFlagsAndStateColumns) {
  ModuleMap map;
  std::vector<std::vector<double>> latest;
  RigCsvInputs in;
  in.map = &map;
  in.latest_values = &latest;
  devices::BoardReading board;
  board.temp1_adc = 512;
  board.temp2_adc = 500;
  board.pressure_adc = 100;
  board.temp1_c.value = 25.5;
  in.board = board;
  devices::InverterReadings inverter;
  inverter.dc_link_power_kw = 1.5;
  inverter.dc_link_current_a = -4;
  inverter.battery_voltage_v = 377.2;
  in.inverter = inverter;
  in.rig_flags = 1u << 2;
  in.state = safety::State::safe;
  in.extra_columns = true;
  RigCsvRow row = build_rig_csv_row(in);
  ASSERT_EQ(row.columns.size(), row.values.size());
  auto value = [&](const std::string& column) -> recorder::CsvValue {
    for (std::size_t i = 0; i < row.columns.size(); ++i)
      if (row.columns[i] == column) return row.values[i];
    ADD_FAILURE() << "no column " << column;
    return {};
  };
  EXPECT_EQ(row.columns.front(), "Ardu_Press");
  EXPECT_EQ(value("Ardu_Temp1"), recorder::CsvValue(std::int64_t{512}));  // ADC counts, as the rig logged
  EXPECT_EQ(value("modbus_Current"), recorder::CsvValue(-4.0));
  EXPECT_EQ(value("modbus_Voltage"), recorder::CsvValue(377.2));
  EXPECT_EQ(value(recorder::kRigFlagColumns[2]), recorder::CsvValue(true));
  EXPECT_EQ(value(recorder::kRigFlagColumns[0]), recorder::CsvValue(false));
  EXPECT_EQ(value("warning"), recorder::CsvValue(false));
  EXPECT_EQ(value("dangerous"), recorder::CsvValue(true));  // SAFE counts as dangerous in the rig's columns
  EXPECT_EQ(value("CurrentState"), recorder::CsvValue(std::string("safe")));
  in.board_converted = true;
  in.board->temp1_c.value = 25.5;
  row = build_rig_csv_row(in);
  EXPECT_EQ(value("Ardu_Temp1"), recorder::CsvValue(25.5));
  in.board.reset();
  in.inverter.reset();
  row = build_rig_csv_row(in);
  EXPECT_EQ(value("Ardu_Temp1"), recorder::CsvValue());
  EXPECT_EQ(value("modbus_Power"), recorder::CsvValue());
}

}  // namespace
}  // namespace cellguard::edge
