// The rig's thermistor characteristic: one table for the edge (devices/board_link.h converts ADC
// counts to °C with it) and the simulator (sim/board_protocol.h turns the pack's temperatures into
// counts with it), so both always use the same curve. Lives in core/ because devices/ and sim/ must
// not depend on each other.
//
// Thread safety: the table is immutable after first use.
#pragma once

#include <vector>

namespace cellguard {

// One row of a thermistor characteristic.
struct ThermistorPoint {
  double temperature_c = 0;
  double resistance_ohm = 0;
};

// The values of seed/thermistor-TempSensor.csv (°C, Ω), rows by falling temperature and rising
// resistance. The spec calls the last row (−40 °C, 100700 Ω) suspicious; it is kept, so edge and
// simulator use the rig's curve as it is.
const std::vector<ThermistorPoint>& rig_thermistor_table();

}  // namespace cellguard
