// The simulated inverter's registers and behaviour: pure logic, no I/O, time passed in.
//
// The rig's inverter is a 60 kW bidirectional DC converter (RES-DCVC60kW-480) on Modbus
// (shared/spec/seed-rig.md, "Inverter Modbus map"). Holding registers are written with function 6
// (or 16) and read back with function 3; input registers are read with function 4; the addresses
// are raw PDU addresses. Signed values are 16-bit two's complement. Scalings: voltage raw = V·32.767,
// current raw = A·52.094 (the rig used it for reading and writing), power raw = kW·218.44,
// temperature raw = °C·109.22. Sign convention: positive current or power discharges the battery,
// negative charges it.
//
// Behaviour (the spec's where it has one; the simulator's own choices are marked "sim:"):
//   - Writes are refused until 125 is written to security_code (41024); writing any other value
//     there locks again. Writing 41024 itself is always allowed. A refused write gets the Modbus
//     exception ILLEGAL_FUNCTION (01). sim: chosen over SERVER_DEVICE_FAILURE (04) because the
//     Modbus Application Protocol v1.1b3, §7, defines 01 for "the server is in the wrong state to
//     process a request of this type"; a locked converter is exactly that.
//   - Values out of a register's range get ILLEGAL_DATA_VALUE (03): heartbeat 0..1000, mode
//     0/1/2/4, charge current limit −222..0 A, discharge 0..222 A, charge power 0..60 kW,
//     voltage limits 0..1000 V.
//   - Heartbeat (41025) sets the comm timer (30262) to its value in 0.1 s; the timer counts down in
//     simulated time. At zero the mode is forced off (41026 reads 0) and fault bit
//     kFaultCommTimeout is set until the next heartbeat write. Only a heartbeat write reloads it.
//   - The converter runs when mode ≠ off, the comm timer is > 0 and no fault bit is set. It drives
//     the current of its mode, clamped to the limits: power mode P (kW) to ±power limit, then
//     I = P/V; current mode I; voltage mode I = gain·(V_battery − V_setpoint) (sim: a proportional
//     constant-voltage loop); then I to [charge limit, discharge limit] and |V·I| to the power
//     limit. sim: the power limit (bat_max_chrg_power, 30285) applies in both directions. The
//     current ramps at ramp_a_per_s (sim) toward that target.
//   - While the converter runs, a battery voltage above bat_max_volt or below bat_min_volt stops it:
//     mode forced off, fault bit kFaultBatteryOverVoltage / kFaultBatteryUnderVoltage latched until
//     the next mode write. Running or not, the condition also shows as a warning bit.
//
// Status registers (sim: the bit layout beyond the spec's 30279 bits 4, 5 and 14 is our own):
//   30256 ambient °C, 30257 heat sink °C (first-order model of the converter's losses),
//   30262 comm timer (0.1 s), 30263 battery voltage (= pack voltage), 30264 voltage reference
//   (the setpoint in voltage mode, else the battery voltage), 30265 / 30266 / 30267 DC link voltage /
//   power / current (the pack's DC link and current), 30268 ready (1 = contactors closed, no fault,
//   battery voltage within the limits), 30272 faults (kFault*), 30273..30275 further fault words
//   (only injected bits), 30276 warnings (kWarning*), 30277..30278 further warning words,
//   30279 status (kStatus*), 30280/30281 charged energy and 30282/30283 discharged energy
//   (unsigned 32-bit, high word first, 0.1 kWh), 30285 power limit (kW·218.44).
//   Any set bit in 30272..30275 counts as a fault and stops the converter.
//
// Thread safety: none; the device (inverter_device.h) serialises access under its mutex.
#pragma once

#include <array>
#include <cstdint>
#include <span>

namespace cellguard::sim {

namespace inverter_reg {
// Holding registers (seed-rig.md), written with function 6/16.
inline constexpr std::uint16_t kSecurityCode = 41024;
inline constexpr std::uint16_t kHeartbeat = 41025;
inline constexpr std::uint16_t kOpMode = 41026;
inline constexpr std::uint16_t kOpModeSetpoint = 41027;
inline constexpr std::uint16_t kBatMaxVolt = 41028;
inline constexpr std::uint16_t kBatMinVolt = 41029;
inline constexpr std::uint16_t kBatMaxChargeCurrent = 41030;
inline constexpr std::uint16_t kBatMaxDischargeCurrent = 41031;
inline constexpr std::uint16_t kBatMaxChargePower = 41032;
inline constexpr std::uint16_t kHoldingFirst = kSecurityCode;
inline constexpr std::uint16_t kHoldingCount = 9;

// Input registers (seed-rig.md), read with function 4.
inline constexpr std::uint16_t kAmbientTemp = 30256;
inline constexpr std::uint16_t kHeatSinkTemp = 30257;
inline constexpr std::uint16_t kModbusTimer = 30262;
inline constexpr std::uint16_t kDcInputVolt = 30263;
inline constexpr std::uint16_t kVoltageRefCommand = 30264;
inline constexpr std::uint16_t kDcLinkVolt = 30265;
inline constexpr std::uint16_t kDcLinkPower = 30266;
inline constexpr std::uint16_t kDcLinkCurrent = 30267;
inline constexpr std::uint16_t kReadyToCharge = 30268;
inline constexpr std::uint16_t kFaultFirst = 30272;    // 30272..30275 fault words
inline constexpr std::uint16_t kWarningFirst = 30276;  // 30276..30278 warning words
inline constexpr std::uint16_t kStatus = 30279;
inline constexpr std::uint16_t kChargedEnergyHigh = 30280;
inline constexpr std::uint16_t kDischargedEnergyHigh = 30282;
inline constexpr std::uint16_t kPowerLimit = 30285;
inline constexpr std::uint16_t kInputFirst = kAmbientTemp;
inline constexpr std::uint16_t kInputCount = 30;  // 30256..30285
}  // namespace inverter_reg

inline constexpr std::uint16_t kSecurityCodeUnlock = 125;

// Operating modes of K_op_mode (41026).
enum class InverterMode : std::uint16_t { off = 0, power = 1, current = 2, voltage = 4 };

// Bits of 30272 (faults), 30276 (warnings) and 30279 (status).
enum InverterFaultBit : std::uint16_t {
  kFaultCommTimeout = 1u << 0,
  kFaultBatteryOverVoltage = 1u << 1,
  kFaultBatteryUnderVoltage = 1u << 2,
};
enum InverterWarningBit : std::uint16_t {
  kWarningBatteryOverVoltage = 1u << 0,
  kWarningBatteryUnderVoltage = 1u << 1,
};
enum InverterStatusBit : std::uint16_t {
  kStatusRunning = 1u << 0,
  kStatusUnlocked = 1u << 1,           // security code accepted
  kStatusPositiveContactor = 1u << 4,  // spec: 30279 bit 4
  kStatusNegativeContactor = 1u << 5,  // spec: 30279 bit 5
  kStatusFan = 1u << 14,               // spec: 30279 bit 14, cooling fan on
};

// Scalings of seed-rig.md: raw = value · scale.
inline constexpr double kVoltageScale = 32.767;
inline constexpr double kCurrentScale = 52.094;
inline constexpr double kPowerScale = 218.44;
inline constexpr double kTemperatureScale = 109.22;

// Converts with rounding and saturation to the int16 range, as two's-complement raw.
std::uint16_t to_raw(double value, double scale);
double from_raw(std::uint16_t raw, double scale);

// Modbus exception codes (Modbus Application Protocol v1.1b3, §7) the inverter answers with.
enum class ModbusException : std::uint8_t {
  none = 0,
  illegal_function = 0x01,
  illegal_data_address = 0x02,
  illegal_data_value = 0x03,
  server_device_failure = 0x04,
};

struct InverterConfig {
  // Power-on values of the limit registers. sim: the vendor sheet's defaults are not known; these
  // are the hardware's current and power ratings and the registers' whole voltage range, so a client
  // that writes no limits still gets a working converter whatever the number of modules (the rig's
  // client writes its limits at start-up: 384 / 264 V, −100 / 100 A, 30 kW).
  double power_on_max_voltage_v = 1000;
  double power_on_min_voltage_v = 0;
  double power_on_max_charge_current_a = -222;
  double power_on_max_discharge_current_a = 222;
  double power_on_max_charge_power_kw = 60;

  double rated_power_kw = 60;  // hardware limit, whatever is written
  double rated_current_a = 222;
  double ramp_a_per_s = 100;              // sim: current slew rate
  double voltage_mode_gain_a_per_v = 20;  // sim: proportional constant-voltage loop
  // sim: heat sink = ambient + losses; rises by this much at rated power, time constant below.
  double heat_sink_rise_at_rated_c = 30;
  double heat_sink_time_constant_s = 120;
  double fan_on_heat_sink_c = 40;  // fan runs while the converter runs or above this
};

// What the converter sees of the battery and DC link at one instant (from the pack model).
struct InverterInputs {
  double time_s = 0;             // simulated time, non-decreasing
  double battery_voltage_v = 0;  // pack voltage at its terminals
  double dc_link_voltage_v = 0;  // converter side of the contactors
  double pack_current_a = 0;     // current actually flowing, + discharges
  double ambient_c = 22;
  bool positive_contactor = false;
  bool negative_contactor = false;
};

// Wrong readback (fault injection): reported values are offset from the true ones.
struct InverterReadbackError {
  double current_a = 0;
  double power_kw = 0;
  double voltage_v = 0;
};

class InverterLogic {
 public:
  explicit InverterLogic(InverterConfig config = {});

  // Advances to inputs.time_s (comm timer, trips, ramp, energy, heat sink) and takes the inputs.
  void update(const InverterInputs& inputs);

  // The current the converter drives now (+ discharges), for PackModel::set_inverter_current_a.
  double current_demand_a() const { return current_a_; }
  bool running() const;
  InverterMode mode() const { return mode_; }
  bool unlocked() const { return security_code_ == kSecurityCodeUnlock; }
  double comm_timer_s() const;

  // Function 6 / 16 at the time of the last update(). A block is checked as a whole: either every
  // register is written or none (the exception of the first refused one is returned).
  ModbusException write_holding(std::uint16_t address, std::span<const std::uint16_t> values);
  ModbusException write_holding(std::uint16_t address, std::uint16_t value) {
    return write_holding(address, std::span<const std::uint16_t>(&value, 1));
  }

  // Images of the register blocks, indexed from kHoldingFirst / kInputFirst.
  std::array<std::uint16_t, inverter_reg::kHoldingCount> holding_registers() const;
  std::array<std::uint16_t, inverter_reg::kInputCount> input_registers() const;
  // One register of either block; nullopt-like false if the address is not mapped.
  bool read_register(std::uint16_t address, std::uint16_t& value) const;

  // Fault injection. set_fault_bit works on 30272..30279 (bits injected there are ORed into the
  // computed ones; any set bit in 30272..30275 stops the converter). Returns false for another
  // address or a bit outside 0..15.
  bool set_fault_bit(std::uint16_t address, int bit, bool on);
  void set_readback_error(const InverterReadbackError& error) { readback_error_ = error; }

 private:
  ModbusException check_write(std::uint16_t address, std::uint16_t value) const;
  void apply_write(std::uint16_t address, std::uint16_t value);
  std::uint16_t fault_word(int index) const;
  bool has_fault() const;
  bool voltage_within_limits() const;
  double target_current_a() const;
  double power_limit_kw() const;

  InverterConfig config_;
  InverterInputs inputs_;
  bool started_ = false;

  std::uint16_t security_code_ = 0;
  std::uint16_t heartbeat_ = 0;
  InverterMode mode_ = InverterMode::off;
  std::uint16_t setpoint_raw_ = 0;
  std::uint16_t max_voltage_raw_;
  std::uint16_t min_voltage_raw_;
  std::uint16_t max_charge_current_raw_;
  std::uint16_t max_discharge_current_raw_;
  std::uint16_t max_charge_power_raw_;

  double comm_deadline_s_ = 0;  // the comm timer reaches zero at this simulated time
  std::uint16_t latched_faults_ = 0;
  std::array<std::uint16_t, 8> injected_bits_{};  // 30272..30279
  InverterReadbackError readback_error_;

  double current_a_ = 0;
  double heat_sink_c_ = 22;
  double charged_kwh_ = 0;
  double discharged_kwh_ = 0;
};

}  // namespace cellguard::sim
