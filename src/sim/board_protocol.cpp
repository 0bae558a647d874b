#include "sim/board_protocol.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>

namespace cellguard::sim {

namespace {

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t' || text.front() == '\r')) {
    text.remove_prefix(1);
  }
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) {
    text.remove_suffix(1);
  }
  return text;
}

std::optional<double> parse_double(std::string_view text) {
  text = trim(text);
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

double adc_volts(int counts) { return counts / kBoardAdcFullScale * kBoardSupplyV; }

int volts_to_counts(double volts) {
  const double counts = std::round(volts / kBoardSupplyV * kBoardAdcFullScale);
  return static_cast<int>(std::clamp(counts, 0.0, static_cast<double>(kBoardAdcMax)));
}

bool is_digit(char byte) { return byte >= '0' && byte <= '9'; }

}  // namespace

Result<std::vector<ThermistorPoint>> parse_thermistor_table(std::string_view csv) {
  std::vector<ThermistorPoint> table;
  int line_number = 0;
  while (!csv.empty()) {
    ++line_number;
    const std::size_t newline = csv.find('\n');
    std::string_view line = csv.substr(0, newline);
    csv.remove_prefix(newline == std::string_view::npos ? csv.size() : newline + 1);
    line = trim(line);
    if (line.empty()) {
      continue;
    }
    const std::size_t comma = line.find(',');
    const auto temperature =
        comma == std::string_view::npos ? std::nullopt : parse_double(line.substr(0, comma));
    const auto resistance =
        comma == std::string_view::npos ? std::nullopt : parse_double(line.substr(comma + 1));
    if (!temperature || !resistance || *resistance <= 0) {
      return Error(ErrorCode::parse_error,
                   "thermistor table:" + std::to_string(line_number) + ": expected `°C,Ω` with Ω > 0");
    }
    if (!table.empty() &&
        (*temperature >= table.back().temperature_c || *resistance <= table.back().resistance_ohm)) {
      return Error(ErrorCode::parse_error, "thermistor table:" + std::to_string(line_number) +
                                               ": rows must have falling °C and rising Ω");
    }
    table.push_back({*temperature, *resistance});
  }
  if (table.size() < 2) {
    return Error(ErrorCode::parse_error, "thermistor table: needs at least 2 rows");
  }
  return table;
}

double thermistor_resistance_ohm(const std::vector<ThermistorPoint>& table, double temperature_c) {
  if (table.empty()) {
    return 0;
  }
  if (temperature_c >= table.front().temperature_c) {
    return table.front().resistance_ohm;
  }
  if (temperature_c <= table.back().temperature_c) {
    return table.back().resistance_ohm;
  }
  for (std::size_t i = 1; i < table.size(); ++i) {
    const ThermistorPoint& hot = table[i - 1];
    const ThermistorPoint& cold = table[i];
    if (temperature_c >= cold.temperature_c) {
      const double fraction = (temperature_c - hot.temperature_c) / (cold.temperature_c - hot.temperature_c);
      return hot.resistance_ohm + fraction * (cold.resistance_ohm - hot.resistance_ohm);
    }
  }
  return table.back().resistance_ohm;
}

int thermistor_counts(double resistance_ohm) {
  // Divider: V = 5·R/(2200+R), the inverse of R = 2200·V/(5−V).
  const double r = std::max(resistance_ohm, 0.0);
  return volts_to_counts(kBoardSupplyV * r / (kThermistorSeriesOhm + r));
}

double rig_thermistor_temperature_c(const std::vector<ThermistorPoint>& table, int counts) {
  const double volts = adc_volts(counts);
  if (volts >= kBoardSupplyV || table.empty()) {
    return -1;  // open circuit: more resistance than the table holds
  }
  const double r = kThermistorSeriesOhm * volts / (kBoardSupplyV - volts);
  if (r < table.front().resistance_ohm) {
    return 140;
  }
  if (r > table.back().resistance_ohm) {
    return -1;
  }
  for (std::size_t i = 1; i < table.size(); ++i) {
    const ThermistorPoint& hot = table[i - 1];
    const ThermistorPoint& cold = table[i];
    if (r <= cold.resistance_ohm) {
      const double fraction = (r - hot.resistance_ohm) / (cold.resistance_ohm - hot.resistance_ohm);
      return hot.temperature_c + fraction * (cold.temperature_c - hot.temperature_c);
    }
  }
  return table.back().temperature_c;
}

int pressure_counts(double pressure_bar, double full_scale_bar) {
  const double fraction = std::clamp(pressure_bar / full_scale_bar, 0.0, 1.0);
  return volts_to_counts(0.5 + fraction * 4.0);
}

double rig_pressure_bar(int counts, double full_scale_bar) {
  const double volts = adc_volts(counts);
  if (volts < 0.5) {
    return 0;
  }
  if (volts > 4.5) {
    return full_scale_bar;
  }
  return (volts - 0.5) / 4.0 * full_scale_bar;
}

std::string format_board_line(const BoardReading& reading) {
  std::string line = "Ardu_Temp1:" + std::to_string(reading.temp1_counts) +
                     ",Ardu_Temp2:" + std::to_string(reading.temp2_counts) +
                     ",Ardu_Press:" + std::to_string(reading.pressure_counts);
  if (reading.ground_fault) {
    line += *reading.ground_fault ? ",Ardu_GndFault:1" : ",Ardu_GndFault:0";
  }
  line += "\r\n";
  return line;
}

void CommandParser::restart_after(char byte) {
  ++malformed_bytes_;
  state_ = State::pin;
  pin_ = 0;
  pin_digits_ = 0;
  // A digit may start the next pair (e.g. the `12` of a too-long value `112:1`); keep it.
  if (is_digit(byte)) {
    pin_ = byte - '0';
    pin_digits_ = 1;
  }
}

std::vector<PinCommand> CommandParser::feed(std::string_view bytes) {
  std::vector<PinCommand> commands;
  for (const char byte : bytes) {
    switch (state_) {
      case State::pin:
        if (is_digit(byte)) {
          if (pin_digits_ == 2) {
            restart_after(byte);
          } else {
            pin_ = pin_ * 10 + (byte - '0');
            ++pin_digits_;
          }
        } else if (byte == ':' && pin_digits_ > 0) {
          state_ = State::value;
        } else if ((byte == '&' || byte == '\r' || byte == '\n' || byte == ' ') && pin_digits_ == 0) {
          // separator between pairs
        } else {
          ++malformed_bytes_;
          pin_ = 0;
          pin_digits_ = 0;
        }
        break;
      case State::value:
        if (byte == '0' || byte == '1') {
          commands.push_back({pin_, byte == '1'});
          state_ = State::pin;
          pin_ = 0;
          pin_digits_ = 0;
        } else {
          restart_after(byte);
        }
        break;
    }
  }
  return commands;
}

std::string format_pin_commands(const std::vector<PinCommand>& commands) {
  std::string text;
  for (const PinCommand& command : commands) {
    if (!text.empty()) {
      text += '&';
    }
    text += std::to_string(command.pin) + (command.high ? ":1" : ":0");
  }
  return text;
}

}  // namespace cellguard::sim
