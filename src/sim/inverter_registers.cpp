#include "sim/inverter_registers.h"

#include <algorithm>
#include <cmath>
#include <cstddef>

namespace cellguard::sim {

namespace {

namespace reg = inverter_reg;

constexpr double kCommTimerTickS = 0.1;  // heartbeat and 30262 count in 0.1 s (seed-rig.md)
constexpr std::uint16_t kHeartbeatMax = 1000;
constexpr double kVoltageLimitMaxV = 1000;  // sim: the raw range (32767 ≈ 1000 V)
constexpr double kMinVoltageForPowerV = 1;  // below this a power setpoint drives no current

std::int16_t as_signed(std::uint16_t raw) { return static_cast<std::int16_t>(raw); }

bool within_raw(std::uint16_t raw, double low, double high, double scale) {
  const double value = as_signed(raw);
  return value >= std::round(low * scale) && value <= std::round(high * scale);
}

std::uint32_t tenth_kwh(double kwh) {
  const double tenths = std::floor(std::max(kwh, 0.0) * 10);
  return tenths >= 4294967295.0 ? 4294967295u : static_cast<std::uint32_t>(tenths);
}

}  // namespace

std::uint16_t to_raw(double value, double scale) {
  const double raw = std::clamp(std::round(value * scale), -32768.0, 32767.0);
  return static_cast<std::uint16_t>(static_cast<std::int16_t>(raw));
}

double from_raw(std::uint16_t raw, double scale) { return as_signed(raw) / scale; }

InverterLogic::InverterLogic(InverterConfig config)
    : config_(config),
      max_voltage_raw_(to_raw(config.power_on_max_voltage_v, kVoltageScale)),
      min_voltage_raw_(to_raw(config.power_on_min_voltage_v, kVoltageScale)),
      max_charge_current_raw_(to_raw(config.power_on_max_charge_current_a, kCurrentScale)),
      max_discharge_current_raw_(to_raw(config.power_on_max_discharge_current_a, kCurrentScale)),
      max_charge_power_raw_(to_raw(config.power_on_max_charge_power_kw, kPowerScale)) {}

double InverterLogic::comm_timer_s() const { return std::max(0.0, comm_deadline_s_ - inputs_.time_s); }

std::uint16_t InverterLogic::fault_word(int index) const {
  const std::uint16_t computed = index == 0 ? latched_faults_ : 0;
  return static_cast<std::uint16_t>(computed | injected_bits_[static_cast<std::size_t>(index)]);
}

bool InverterLogic::has_fault() const {
  for (int i = 0; i < 4; ++i) {
    if (fault_word(i) != 0) {
      return true;
    }
  }
  return false;
}

bool InverterLogic::running() const {
  return mode_ != InverterMode::off && comm_timer_s() > 0 && !has_fault();
}

bool InverterLogic::voltage_within_limits() const {
  const double v = inputs_.battery_voltage_v;
  return v <= from_raw(max_voltage_raw_, kVoltageScale) && v >= from_raw(min_voltage_raw_, kVoltageScale);
}

double InverterLogic::power_limit_kw() const {
  return std::clamp(from_raw(max_charge_power_raw_, kPowerScale), 0.0, config_.rated_power_kw);
}

double InverterLogic::target_current_a() const {
  const double v = inputs_.battery_voltage_v;
  const double power_limit_kw = this->power_limit_kw();
  double current_a = 0;
  switch (mode_) {
    case InverterMode::off:
      return 0;
    case InverterMode::power: {
      const double power_kw =
          std::clamp(from_raw(setpoint_raw_, kPowerScale), -power_limit_kw, power_limit_kw);
      current_a = v > kMinVoltageForPowerV ? power_kw * 1000 / v : 0;
      break;
    }
    case InverterMode::current:
      current_a = from_raw(setpoint_raw_, kCurrentScale);
      break;
    case InverterMode::voltage:
      // Above the setpoint discharge, below it charge (negative), proportionally.
      current_a = config_.voltage_mode_gain_a_per_v * (v - from_raw(setpoint_raw_, kVoltageScale));
      break;
  }
  const double charge_limit_a =
      std::max(from_raw(max_charge_current_raw_, kCurrentScale), -config_.rated_current_a);
  const double discharge_limit_a =
      std::min(from_raw(max_discharge_current_raw_, kCurrentScale), config_.rated_current_a);
  current_a = std::clamp(current_a, std::min(charge_limit_a, 0.0), std::max(discharge_limit_a, 0.0));
  if (v > kMinVoltageForPowerV) {
    const double power_current_a = power_limit_kw * 1000 / v;
    current_a = std::clamp(current_a, -power_current_a, power_current_a);
  }
  return current_a;
}

void InverterLogic::update(const InverterInputs& inputs) {
  double dt_s = 0;
  if (!started_) {
    heat_sink_c_ = inputs.ambient_c;
    started_ = true;
  } else {
    dt_s = std::max(0.0, inputs.time_s - inputs_.time_s);
  }
  const double previous_time_s = inputs_.time_s;
  inputs_ = inputs;
  inputs_.time_s = std::max(inputs.time_s, previous_time_s);

  // Energy through the DC link during the step just ended (+ out of the battery).
  const double power_kw = inputs_.dc_link_voltage_v * inputs_.pack_current_a / 1000;
  if (power_kw > 0) {
    discharged_kwh_ += power_kw * dt_s / 3600;
  } else {
    charged_kwh_ += -power_kw * dt_s / 3600;
  }
  const double heat_target_c =
      inputs_.ambient_c + config_.heat_sink_rise_at_rated_c * std::abs(power_kw) / config_.rated_power_kw;
  heat_sink_c_ += (heat_target_c - heat_sink_c_) * (1 - std::exp(-dt_s / config_.heat_sink_time_constant_s));

  // seed-rig.md: "the converter stops when it is not refreshed in time".
  if (mode_ != InverterMode::off && comm_timer_s() <= 0) {
    mode_ = InverterMode::off;
    latched_faults_ |= kFaultCommTimeout;
  }
  // Battery voltage limits stop a running converter (bat_max_volt / bat_min_volt).
  if (running() && !voltage_within_limits()) {
    latched_faults_ |= inputs_.battery_voltage_v > from_raw(max_voltage_raw_, kVoltageScale)
                           ? kFaultBatteryOverVoltage
                           : kFaultBatteryUnderVoltage;
    mode_ = InverterMode::off;
  }

  if (!running()) {
    current_a_ = 0;  // a stop is immediate
    return;
  }
  const double target_a = target_current_a();
  const double max_change_a = config_.ramp_a_per_s * dt_s;
  current_a_ += std::clamp(target_a - current_a_, -max_change_a, max_change_a);
}

ModbusException InverterLogic::check_write(std::uint16_t address, std::uint16_t value) const {
  switch (address) {
    case reg::kSecurityCode:
    case reg::kOpModeSetpoint:  // any value; clamped to the limits when used
      return ModbusException::none;
    case reg::kHeartbeat:
      return value <= kHeartbeatMax ? ModbusException::none : ModbusException::illegal_data_value;
    case reg::kOpMode:
      return value == 0 || value == 1 || value == 2 || value == 4 ? ModbusException::none
                                                                  : ModbusException::illegal_data_value;
    case reg::kBatMaxVolt:
    case reg::kBatMinVolt:
      return within_raw(value, 0, kVoltageLimitMaxV, kVoltageScale) ? ModbusException::none
                                                                    : ModbusException::illegal_data_value;
    case reg::kBatMaxChargeCurrent:
      return within_raw(value, -config_.rated_current_a, 0, kCurrentScale)
                 ? ModbusException::none
                 : ModbusException::illegal_data_value;
    case reg::kBatMaxDischargeCurrent:
      return within_raw(value, 0, config_.rated_current_a, kCurrentScale)
                 ? ModbusException::none
                 : ModbusException::illegal_data_value;
    case reg::kBatMaxChargePower:
      return within_raw(value, 0, config_.rated_power_kw, kPowerScale) ? ModbusException::none
                                                                       : ModbusException::illegal_data_value;
    default:
      return ModbusException::illegal_data_address;
  }
}

void InverterLogic::apply_write(std::uint16_t address, std::uint16_t value) {
  switch (address) {
    case reg::kSecurityCode:
      security_code_ = value;
      break;
    case reg::kHeartbeat:
      heartbeat_ = value;
      comm_deadline_s_ = inputs_.time_s + value * kCommTimerTickS;
      latched_faults_ &= static_cast<std::uint16_t>(~kFaultCommTimeout);
      break;
    case reg::kOpMode:
      mode_ = static_cast<InverterMode>(value);
      latched_faults_ &= static_cast<std::uint16_t>(~(kFaultBatteryOverVoltage | kFaultBatteryUnderVoltage));
      break;
    case reg::kOpModeSetpoint:
      setpoint_raw_ = value;
      break;
    case reg::kBatMaxVolt:
      max_voltage_raw_ = value;
      break;
    case reg::kBatMinVolt:
      min_voltage_raw_ = value;
      break;
    case reg::kBatMaxChargeCurrent:
      max_charge_current_raw_ = value;
      break;
    case reg::kBatMaxDischargeCurrent:
      max_discharge_current_raw_ = value;
      break;
    case reg::kBatMaxChargePower:
      max_charge_power_raw_ = value;
      break;
    default:
      break;
  }
}

ModbusException InverterLogic::write_holding(std::uint16_t address, std::span<const std::uint16_t> values) {
  // Checked as a whole first; a security code inside the block unlocks the registers after it.
  bool unlocked_so_far = unlocked();
  for (std::size_t i = 0; i < values.size(); ++i) {
    const auto reg_address = static_cast<std::uint16_t>(address + i);
    if (reg_address == reg::kSecurityCode) {
      unlocked_so_far = values[i] == kSecurityCodeUnlock;
    } else if (!unlocked_so_far &&
               check_write(reg_address, values[i]) != ModbusException::illegal_data_address) {
      return ModbusException::illegal_function;
    }
    const ModbusException exception = check_write(reg_address, values[i]);
    if (exception != ModbusException::none) {
      return exception;
    }
  }
  for (std::size_t i = 0; i < values.size(); ++i) {
    apply_write(static_cast<std::uint16_t>(address + i), values[i]);
  }
  return ModbusException::none;
}

std::array<std::uint16_t, inverter_reg::kHoldingCount> InverterLogic::holding_registers() const {
  return {
      security_code_,       heartbeat_,       static_cast<std::uint16_t>(mode_), setpoint_raw_,
      max_voltage_raw_,     min_voltage_raw_, max_charge_current_raw_,           max_discharge_current_raw_,
      max_charge_power_raw_};
}

std::array<std::uint16_t, inverter_reg::kInputCount> InverterLogic::input_registers() const {
  std::array<std::uint16_t, reg::kInputCount> r{};
  auto at = [&r](std::uint16_t address) -> std::uint16_t& { return r[address - reg::kInputFirst]; };
  const double battery_v = inputs_.battery_voltage_v + readback_error_.voltage_v;
  const double dc_link_v = inputs_.dc_link_voltage_v + readback_error_.voltage_v;
  const double power_kw =
      inputs_.dc_link_voltage_v * inputs_.pack_current_a / 1000 + readback_error_.power_kw;
  const double current_a = inputs_.pack_current_a + readback_error_.current_a;

  at(reg::kAmbientTemp) = to_raw(inputs_.ambient_c, kTemperatureScale);
  at(reg::kHeatSinkTemp) = to_raw(heat_sink_c_, kTemperatureScale);
  at(reg::kModbusTimer) = static_cast<std::uint16_t>(std::ceil(comm_timer_s() / kCommTimerTickS - 1e-9));
  at(reg::kDcInputVolt) = to_raw(battery_v, kVoltageScale);
  at(reg::kVoltageRefCommand) =
      mode_ == InverterMode::voltage ? setpoint_raw_ : to_raw(battery_v, kVoltageScale);
  at(reg::kDcLinkVolt) = to_raw(dc_link_v, kVoltageScale);
  at(reg::kDcLinkPower) = to_raw(power_kw, kPowerScale);
  at(reg::kDcLinkCurrent) = to_raw(current_a, kCurrentScale);
  const bool contactors = inputs_.positive_contactor && inputs_.negative_contactor;
  at(reg::kReadyToCharge) = contactors && !has_fault() && voltage_within_limits() ? 1 : 0;
  for (int i = 0; i < 4; ++i) {
    at(static_cast<std::uint16_t>(reg::kFaultFirst + i)) = fault_word(i);
  }
  std::uint16_t warnings = 0;
  if (inputs_.battery_voltage_v > from_raw(max_voltage_raw_, kVoltageScale))
    warnings |= kWarningBatteryOverVoltage;
  if (inputs_.battery_voltage_v < from_raw(min_voltage_raw_, kVoltageScale))
    warnings |= kWarningBatteryUnderVoltage;
  at(reg::kWarningFirst) = warnings;
  std::uint16_t status = 0;
  if (running()) status |= kStatusRunning;
  if (unlocked()) status |= kStatusUnlocked;
  if (inputs_.positive_contactor) status |= kStatusPositiveContactor;
  if (inputs_.negative_contactor) status |= kStatusNegativeContactor;
  if (running() || heat_sink_c_ >= config_.fan_on_heat_sink_c) status |= kStatusFan;
  at(reg::kStatus) = status;
  for (int i = 4; i < 8; ++i) {  // fault words 0..3 include theirs already
    at(static_cast<std::uint16_t>(reg::kFaultFirst + i)) |= injected_bits_[static_cast<std::size_t>(i)];
  }
  const std::uint32_t charged = tenth_kwh(charged_kwh_);
  const std::uint32_t discharged = tenth_kwh(discharged_kwh_);
  at(reg::kChargedEnergyHigh) = static_cast<std::uint16_t>(charged >> 16);
  at(reg::kChargedEnergyHigh + 1) = static_cast<std::uint16_t>(charged & 0xFFFF);
  at(reg::kDischargedEnergyHigh) = static_cast<std::uint16_t>(discharged >> 16);
  at(reg::kDischargedEnergyHigh + 1) = static_cast<std::uint16_t>(discharged & 0xFFFF);
  at(reg::kPowerLimit) = to_raw(power_limit_kw(), kPowerScale);
  return r;
}

bool InverterLogic::read_register(std::uint16_t address, std::uint16_t& value) const {
  if (address >= reg::kHoldingFirst && address < reg::kHoldingFirst + reg::kHoldingCount) {
    value = holding_registers()[address - reg::kHoldingFirst];
    return true;
  }
  if (address >= reg::kInputFirst && address < reg::kInputFirst + reg::kInputCount) {
    value = input_registers()[address - reg::kInputFirst];
    return true;
  }
  return false;
}

bool InverterLogic::set_fault_bit(std::uint16_t address, int bit, bool on) {
  if (address < reg::kFaultFirst || address > reg::kStatus || bit < 0 || bit > 15) {
    return false;
  }
  std::uint16_t& word = injected_bits_[address - reg::kFaultFirst];
  const auto mask = static_cast<std::uint16_t>(1u << bit);
  word = on ? static_cast<std::uint16_t>(word | mask) : static_cast<std::uint16_t>(word & ~mask);
  return true;
}

}  // namespace cellguard::sim
