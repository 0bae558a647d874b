// The channel catalogue: one row per measured fact of a device, with every name the fact goes by.
// A board value used to have three names kept in three places (the supervisor's `board.Temp1`, the
// recording's `board.temp1_c`, the rig CSV's `Ardu_Temp1`); here they are one row, and the edge,
// the recorder hints and the tests read them from it.
//
// Row fields: the fact for people; the supervised channel (name and quantity; empty name: recorded
// only); the recording channel and its unit; the rig's CSV column (empty: none); where the value is
// in the device's reading. Board rows also name the raw ADC count's recording channel: the rig's CSV
// column carries the count or the converted value ([recording] csv_board).
//
// The power-device catalogue is the same for every model (power_device.h): they all fill
// InverterReadings; a model without a quantity reports 0 there (its header says which).
#pragma once

#include <array>
#include <optional>
#include <string_view>

#include "devices/board_link.h"
#include "devices/power_device.h"
#include "safety/safety.h"

namespace cellguard::devices {

struct BoardChannel {
  std::string_view fact;
  std::string_view supervised;
  safety::Quantity quantity;
  std::string_view record;
  std::string_view unit;
  std::string_view raw_record;  // the ADC count, unit "count"
  std::string_view rig_column;
  Conversion BoardReading::*value;
  int BoardReading::*raw;
};

inline constexpr std::array<BoardChannel, 3> kBoardChannels = {{
    {"board temperature 1", "board.Temp1", safety::Quantity::board_temperature, "board.temp1_c", "degC",
     "board.temp1_adc", "Ardu_Temp1", &BoardReading::temp1_c, &BoardReading::temp1_adc},
    {"board temperature 2", "board.Temp2", safety::Quantity::board_temperature, "board.temp2_c", "degC",
     "board.temp2_adc", "Ardu_Temp2", &BoardReading::temp2_c, &BoardReading::temp2_adc},
    {"board pressure", "board.Press", safety::Quantity::board_pressure, "board.pressure", "bar",
     "board.pressure_adc", "Ardu_Press", &BoardReading::pressure, &BoardReading::pressure_adc},
}};

struct PowerChannel {
  std::string_view fact;
  std::string_view supervised;  // empty: recorded only
  std::optional<safety::Quantity> quantity;
  std::string_view record;
  std::string_view unit;
  std::string_view rig_column;
  double InverterReadings::*value;
};

inline constexpr std::array<PowerChannel, 6> kPowerChannels = {{
    {"inverter battery voltage", "inverter.battery_voltage", safety::Quantity::inverter_battery_voltage,
     "inverter.battery_voltage_v", "V", "modbus_Voltage", &InverterReadings::battery_voltage_v},
    {"inverter DC link voltage", "inverter.dc_link_voltage", safety::Quantity::dc_link_voltage,
     "inverter.dc_link_voltage_v", "V", "", &InverterReadings::dc_link_voltage_v},
    {"inverter DC link current", "inverter.dc_link_current", safety::Quantity::pack_current,
     "inverter.dc_link_current_a", "A", "modbus_Current", &InverterReadings::dc_link_current_a},
    {"inverter DC link power", "", std::nullopt, "inverter.dc_link_power_kw", "kW", "modbus_Power",
     &InverterReadings::dc_link_power_kw},
    {"inverter heat sink temperature", "", std::nullopt, "inverter.heatsink_c", "degC", "",
     &InverterReadings::heatsink_c},
    {"inverter ambient temperature", "", std::nullopt, "inverter.ambient_c", "degC", "",
     &InverterReadings::ambient_c},
}};

}  // namespace cellguard::devices
