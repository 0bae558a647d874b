// The channel catalogue: one source per fact, so every name is unique across the devices, every
// supervised channel has its quantity, and the rows reach the reading they name.
#include "devices/channels.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace cellguard::devices {
namespace {

TEST(ChannelCatalogue, EveryNameIsUniqueAndComplete) {
  std::set<std::string_view> supervised, records, columns;
  auto unique = [](std::set<std::string_view>& seen, std::string_view name) {
    if (name.empty()) return;
    EXPECT_TRUE(seen.insert(name).second) << name << " appears twice";
  };
  for (const auto& c : kBoardChannels) {
    EXPECT_FALSE(c.supervised.empty()) << c.fact;
    EXPECT_TRUE(c.record.starts_with("board.") && c.raw_record.starts_with("board.")) << c.fact;
    EXPECT_FALSE(c.unit.empty()) << c.fact;
    EXPECT_TRUE(c.rig_column.starts_with("Ardu_")) << c.fact;
    unique(supervised, c.supervised);
    unique(records, c.record);
    unique(records, c.raw_record);
    unique(columns, c.rig_column);
  }
  for (const auto& c : kPowerChannels) {
    EXPECT_EQ(c.supervised.empty(), !c.quantity.has_value()) << c.fact;
    EXPECT_TRUE(c.record.starts_with("inverter.")) << c.fact;
    EXPECT_FALSE(c.unit.empty()) << c.fact;
    EXPECT_TRUE(c.rig_column.empty() || c.rig_column.starts_with("modbus_")) << c.fact;
    unique(supervised, c.supervised);
    unique(records, c.record);
    unique(columns, c.rig_column);
  }
  // The rig's CSV columns of the devices (seed-rig.md): three of the board, three of the inverter.
  EXPECT_EQ(columns, (std::set<std::string_view>{"Ardu_Temp1", "Ardu_Temp2", "Ardu_Press", "modbus_Voltage",
                                                 "modbus_Current", "modbus_Power"}));
}

TEST(ChannelCatalogue, RowsReadTheValueTheyName) {
  InverterReadings r;
  r.battery_voltage_v = 1;
  r.dc_link_voltage_v = 2;
  r.dc_link_current_a = 3;
  r.dc_link_power_kw = 4;
  r.heatsink_c = 5;
  r.ambient_c = 6;
  double expected = 1;
  for (const auto& c : kPowerChannels) EXPECT_EQ(r.*c.value, expected++) << c.fact;
  BoardReading b;
  b.temp1_c.value = 21;
  b.temp1_adc = 500;
  b.pressure.value = 1.5;
  b.pressure_adc = 300;
  EXPECT_EQ((b.*kBoardChannels[0].value).value, 21);
  EXPECT_EQ(b.*kBoardChannels[0].raw, 500);
  EXPECT_EQ((b.*kBoardChannels[2].value).value, 1.5);
  EXPECT_EQ(b.*kBoardChannels[2].raw, 300);
  EXPECT_EQ(kBoardChannels[0].supervised, "board.Temp1");
  EXPECT_EQ(kBoardChannels[0].record, "board.temp1_c");
  EXPECT_EQ(kBoardChannels[0].rig_column, "Ardu_Temp1");
}

}  // namespace
}  // namespace cellguard::devices
