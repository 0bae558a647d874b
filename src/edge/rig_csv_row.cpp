#include "edge/rig_csv_row.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "edge/events.h"

namespace cellguard::edge {

int rig_flag_bit(safety::Quantity quantity) {
  using Q = safety::Quantity;
  switch (quantity) {
    case Q::module_max_temperature:
    case Q::module_min_temperature:
      return 0;  // pcan_isCMATempVio
    case Q::module_voltage:
      return 1;  // pcan_isCMAVolVio
    case Q::cell_voltage:
      return 2;  // pcan_isCellVolVio
    case Q::board_temperature:
      return 3;  // pcan_isArduTempHigh
    case Q::board_pressure:
      return 4;  // pcan_isArduPressViolated
    case Q::pack_current:
      return 5;  // pcan_isModbusCurrentViolated (the inverter's current)
    case Q::inverter_battery_voltage:
      return 6;  // pcan_isModbusVoltageViolated
    default:
      return -1;  // pcan_isModbusPowerViolated: no power limit
  }
}

std::uint32_t rig_flags(std::span<const safety::Reason> causes) {
  std::uint32_t flags = 0;
  for (const auto& cause : causes) {
    const bool limit =
        cause.rule == safety::RuleKind::limit_high || cause.rule == safety::RuleKind::limit_low;
    if (const int bit = rig_flag_bit(cause.quantity); limit && bit >= 0) flags |= 1u << bit;
  }
  return flags;
}

std::string rig_prefix(std::string_view name_pattern, int module_id) {
  std::string prefix(name_pattern);
  char id[8];
  std::snprintf(id, sizeof id, "%02d", module_id);
  if (const auto at = prefix.find("{id}"); at != std::string::npos)
    prefix.replace(at, 4, id);
  else
    prefix = std::string("BMU") + id + "_";
  return prefix;
}

bool rig_csv_ready(std::size_t modules_found, int modules_expected, MonoTime first_module_ns, MonoTime now_ns,
                   Duration discovery_window_ns) {
  if (modules_found == 0) return false;
  return modules_found >= static_cast<std::size_t>(std::max(modules_expected, 0)) ||
         now_ns - first_module_ns >= discovery_window_ns;
}

RigCsvRow build_rig_csv_row(const RigCsvInputs& in) {
  std::vector<std::pair<std::string, recorder::CsvValue>> row;
  const auto& messages = in.map->messages();
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const ModuleMessage& message = messages[i];
    if (message.module_id == 0 || in.modules_found.count(message.module_id) == 0) continue;
    const std::vector<double>& latest = (*in.latest_values)[i];
    if (latest.empty()) continue;  // not received: the rig logged decoded signals only
    const std::string prefix = rig_prefix(in.name_pattern, message.module_id);
    const auto& signals = message.codec->message().signals;
    for (std::size_t k = 0; k < signals.size(); ++k) {
      recorder::CsvValue value;
      if (k < latest.size()) {
        const double v = latest[k];
        // Integral signals as integers, as the rig wrote them ("3", not "3.0").
        const bool integral = signals[k].scale == std::floor(signals[k].scale) &&
                              signals[k].offset == std::floor(signals[k].offset) && v == std::floor(v) &&
                              std::fabs(v) < 9e15;
        if (integral)
          value = static_cast<std::int64_t>(v);
        else
          value = v;
      }
      row.emplace_back(prefix + signals[k].name, value);
    }
  }
  std::sort(row.begin(), row.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  auto add = [&row](const char* name, recorder::CsvValue v) { row.emplace_back(name, std::move(v)); };
  auto board = [&](int adc, double converted) {
    if (!in.board) return recorder::CsvValue();
    return in.board_converted ? recorder::CsvValue(converted) : recorder::CsvValue(std::int64_t{adc});
  };
  const auto& b = in.board;
  add("Ardu_Press", b ? board(b->pressure_adc, b->pressure.value) : recorder::CsvValue());
  add("Ardu_Temp1", b ? board(b->temp1_adc, b->temp1_c.value) : recorder::CsvValue());
  add("Ardu_Temp2", b ? board(b->temp2_adc, b->temp2_c.value) : recorder::CsvValue());
  const auto& inv = in.inverter;
  add("modbus_Power", inv ? recorder::CsvValue(inv->dc_link_power_kw) : recorder::CsvValue());
  add("modbus_Current", inv ? recorder::CsvValue(inv->dc_link_current_a) : recorder::CsvValue());
  add("modbus_Voltage", inv ? recorder::CsvValue(inv->battery_voltage_v) : recorder::CsvValue());
  for (std::size_t i = 0; i < recorder::kRigFlagCount; ++i)
    add(recorder::kRigFlagColumns[i], ((in.rig_flags >> i) & 1u) != 0);
  add("warning", in.state == safety::State::warning);
  add("dangerous", in.state == safety::State::dangerous || in.state == safety::State::safe);
  if (in.extra_columns) add("CurrentState", state_name(in.state));
  RigCsvRow out;
  out.columns.reserve(row.size());
  out.values.reserve(row.size());
  for (auto& [name, value] : row) {
    out.columns.push_back(std::move(name));
    out.values.push_back(std::move(value));
  }
  return out;
}

}  // namespace cellguard::edge
