// The rig's sensor board (an Arduino on USB serial), as the simulator speaks it: pure functions.
//
// shared/spec/seed-rig.md, "Arduino serial protocol (9600 baud, 8N1)":
//   - board to host, once a second: `Ardu_Temp1:<adc>,Ardu_Temp2:<adc>,Ardu_Press:<adc>` CR LF, with
//     10-bit ADC counts (0..1023);
//   - host to board: `pin:value` pairs joined by `&`, no terminator, at most 30 characters, sent back
//     to back (so `6:1&7:1` followed by `5:0` may arrive as `6:1&7:15:0`).
// Conversions (the rig's formulas, which the edge applies; the simulator inverts them):
//   thermistor: V = adc/1024·5; R = 2200·V/(5−V) Ω; °C by linear interpolation in a (°C, Ω) table;
//   pressure:   V = adc/1024·5; below 0.5 V → 0; above 4.5 V → full scale (150); else (V−0.5)/4·150.
//
// Nothing here does I/O or reads a clock; see board_device.h for the pseudo-terminal.
// Thread safety: plain values and functions; a CommandParser is used by one thread at a time.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/thermistor.h"

namespace cellguard::sim {

inline constexpr int kBoardAdcMax = 1023;           // 10-bit ADC
inline constexpr double kBoardAdcFullScale = 1024;  // the rig divides by 1024, not 1023
inline constexpr double kBoardSupplyV = 5.0;
inline constexpr double kThermistorSeriesOhm = 2200;  // divider resistor of the rig's formula

// The rig's thermistor characteristic (seed/thermistor-TempSensor.csv) is core/thermistor.h's, the
// same table the edge converts with.
using cellguard::rig_thermistor_table;
using cellguard::ThermistorPoint;

// Parses a table in the rig's CSV layout (`°C,Ω` per line, no header; blank lines ignored). Requires
// ≥ 2 rows, temperature strictly falling and resistance strictly rising. Errors name the line.
Result<std::vector<ThermistorPoint>> parse_thermistor_table(std::string_view csv);

// Resistance of the thermistor at `temperature_c` by linear interpolation between the table's rows
// (the exact inverse of the rig's interpolation); clamped to the table's ends outside its range.
double thermistor_resistance_ohm(const std::vector<ThermistorPoint>& table, double temperature_c);

// ADC counts the rig's divider gives for a thermistor resistance: adc = 1024·R/(2200+R), rounded,
// clamped to 0..1023.
int thermistor_counts(double resistance_ohm);

// The rig's forward conversion, as the edge does it, for round-trip tests. Outside the table the
// original returned 140 °C (too little resistance) or −1 (too much); so does this.
double rig_thermistor_temperature_c(const std::vector<ThermistorPoint>& table, int counts);

// Pressure transfer of the rig (0.5..4.5 V over 0..full scale). Counts for a pressure, rounded,
// clamped to 0..1023; and the rig's forward conversion.
int pressure_counts(double pressure_bar, double full_scale_bar = 150.0);
double rig_pressure_bar(int counts, double full_scale_bar = 150.0);

// One line of the board's report.
struct BoardReading {
  int temp1_counts = 0;
  int temp2_counts = 0;
  int pressure_counts = 0;
  // Extension (not on the rig's board): the insulation monitor's ground-fault alarm, appended as
  // `,Ardu_GndFault:<0|1>` only when set. Off by default so the line is byte-for-byte the rig's.
  std::optional<bool> ground_fault;
};

// `Ardu_Temp1:512,Ardu_Temp2:498,Ardu_Press:102\r\n` (plus the extension field when present).
std::string format_board_line(const BoardReading& reading);

// One `pin:value` pair: the board calls digitalWrite(pin, value != 0).
struct PinCommand {
  int pin = 0;
  bool high = false;

  friend bool operator==(const PinCommand&, const PinCommand&) = default;
};

// Incremental parser of the host's command stream. Commands have no terminator and are sent back to
// back, so the stream is parsed by grammar, not by message: `pin` is 1..2 decimal digits, `value`
// exactly one digit 0 or 1 (what the rig sends; digitalWrite takes LOW/HIGH), pairs separated by
// `&`; a pin may follow a value directly. CR, LF and spaces are ignored between pairs. Anything
// else discards the pair being read and counts as a malformed byte; parsing resumes at the next
// byte that can start a pair.
class CommandParser {
 public:
  // Feeds received bytes; returns the pairs completed by them, in order.
  std::vector<PinCommand> feed(std::string_view bytes);

  // Bytes rejected since construction (garbage, values other than 0/1, pins of 3+ digits).
  std::uint64_t malformed_bytes() const { return malformed_bytes_; }

 private:
  enum class State { pin, value };
  void restart_after(char byte);

  State state_ = State::pin;
  int pin_ = 0;
  int pin_digits_ = 0;
  std::uint64_t malformed_bytes_ = 0;
};

// Formats pairs as the rig's host does (`6:1&7:1`), for tests and tools.
std::string format_pin_commands(const std::vector<PinCommand>& commands);

}  // namespace cellguard::sim
