// The simulated inverter's register logic with time as a value (shared/spec/seed-rig.md,
// "Inverter Modbus map").
#include "sim/inverter_registers.h"

#include <gtest/gtest.h>

#include <array>
#include <cmath>

namespace cellguard::sim {
namespace {

namespace reg = inverter_reg;

InverterInputs battery_at(double time_s, double voltage_v = 377.8, double current_a = 0) {
  InverterInputs inputs;
  inputs.time_s = time_s;
  inputs.battery_voltage_v = voltage_v;
  inputs.dc_link_voltage_v = voltage_v;
  inputs.pack_current_a = current_a;
  inputs.ambient_c = 25;
  inputs.positive_contactor = true;
  inputs.negative_contactor = true;
  return inputs;
}

std::uint16_t input(const InverterLogic& logic, std::uint16_t address) {
  std::uint16_t value = 0;
  EXPECT_TRUE(logic.read_register(address, value)) << address;
  return value;
}

// The rig's start-up sequence (seed-rig.md, "Inverter start-up") up to the mode.
void unlock_and_arm(InverterLogic& logic, std::uint16_t heartbeat = 333) {
  ASSERT_EQ(logic.write_holding(reg::kSecurityCode, kSecurityCodeUnlock), ModbusException::none);
  ASSERT_EQ(logic.write_holding(reg::kHeartbeat, heartbeat), ModbusException::none);
}

TEST(InverterRegisters, ScalingsAreTheSpecsWithTwosComplement) {
  EXPECT_EQ(to_raw(384, kVoltageScale), 12583);
  EXPECT_EQ(to_raw(-100, kCurrentScale), static_cast<std::uint16_t>(-5209));
  EXPECT_EQ(to_raw(30, kPowerScale), 6553);
  EXPECT_EQ(to_raw(25, kTemperatureScale), 2731);
  EXPECT_NEAR(from_raw(static_cast<std::uint16_t>(-5209), kCurrentScale), -99.99, 0.01);
  EXPECT_EQ(to_raw(5000, kVoltageScale), 32767);  // saturates
}

TEST(InverterRegisters, WritesAreRefusedWithIllegalFunctionUntilTheSecurityCode) {
  InverterLogic logic;
  logic.update(battery_at(0));
  EXPECT_EQ(logic.write_holding(reg::kOpMode, 2), ModbusException::illegal_function);
  EXPECT_EQ(logic.write_holding(reg::kHeartbeat, 100), ModbusException::illegal_function);
  EXPECT_EQ(logic.write_holding(reg::kSecurityCode, 124), ModbusException::none);  // always writable
  EXPECT_EQ(logic.write_holding(reg::kOpMode, 2), ModbusException::illegal_function);
  EXPECT_EQ(logic.write_holding(reg::kSecurityCode, 125), ModbusException::none);
  EXPECT_EQ(logic.write_holding(reg::kOpMode, 2), ModbusException::none);
  EXPECT_EQ(logic.write_holding(reg::kSecurityCode, 0), ModbusException::none);  // locks again
  EXPECT_EQ(logic.write_holding(reg::kOpMode, 0), ModbusException::illegal_function);
}

TEST(InverterRegisters, ABlockWriteStartingWithTheSecurityCodeIsAccepted) {
  InverterLogic logic;
  logic.update(battery_at(0));
  const std::array<std::uint16_t, 3> block = {125, 50, 2};
  EXPECT_EQ(logic.write_holding(reg::kSecurityCode, block), ModbusException::none);
  EXPECT_EQ(logic.mode(), InverterMode::current);
  // Refused blocks change nothing.
  const std::array<std::uint16_t, 2> past_the_end = {0, 0};  // 41032, 41033
  EXPECT_EQ(logic.write_holding(reg::kBatMaxChargePower, past_the_end),
            ModbusException::illegal_data_address);
  const std::array<std::uint16_t, 2> bad_heartbeat = {40, 2000};
  EXPECT_EQ(logic.write_holding(reg::kHeartbeat, bad_heartbeat), ModbusException::illegal_data_value);
  EXPECT_EQ(logic.holding_registers()[1], 50);
}

TEST(InverterRegisters, OutOfRangeValuesAreIllegalDataValue) {
  InverterLogic logic;
  logic.update(battery_at(0));
  unlock_and_arm(logic);
  EXPECT_EQ(logic.write_holding(reg::kHeartbeat, 1001), ModbusException::illegal_data_value);
  EXPECT_EQ(logic.write_holding(reg::kOpMode, 3), ModbusException::illegal_data_value);
  EXPECT_EQ(logic.write_holding(reg::kBatMaxChargeCurrent, to_raw(10, kCurrentScale)),
            ModbusException::illegal_data_value);
  EXPECT_EQ(logic.write_holding(reg::kBatMaxDischargeCurrent, to_raw(-10, kCurrentScale)),
            ModbusException::illegal_data_value);
  EXPECT_EQ(logic.write_holding(reg::kBatMaxChargePower, to_raw(61, kPowerScale)),
            ModbusException::illegal_data_value);
  EXPECT_EQ(logic.write_holding(40000, 1), ModbusException::illegal_data_address);
}

TEST(InverterRegisters, HeartbeatExpiresAtTheRightSimulatedTimeAndForcesModeOff) {
  InverterLogic logic;
  logic.update(battery_at(10.0));
  unlock_and_arm(logic, 50);  // 5.0 s
  ASSERT_EQ(logic.write_holding(reg::kOpMode, 2), ModbusException::none);
  ASSERT_EQ(logic.write_holding(reg::kOpModeSetpoint, to_raw(10, kCurrentScale)), ModbusException::none);
  EXPECT_EQ(input(logic, reg::kModbusTimer), 50);
  logic.update(battery_at(12.5));
  EXPECT_EQ(input(logic, reg::kModbusTimer), 25);
  logic.update(battery_at(14.95));
  EXPECT_EQ(input(logic, reg::kModbusTimer), 1);
  EXPECT_EQ(logic.mode(), InverterMode::current);
  EXPECT_TRUE(logic.running());
  logic.update(battery_at(15.0));
  EXPECT_EQ(input(logic, reg::kModbusTimer), 0);
  EXPECT_EQ(logic.mode(), InverterMode::off);
  EXPECT_EQ(logic.holding_registers()[2], 0);  // K_op_mode reads off
  EXPECT_EQ(logic.current_demand_a(), 0);
  EXPECT_NE(input(logic, reg::kFaultFirst) & kFaultCommTimeout, 0);
}

TEST(InverterRegisters, RewritingTheHeartbeatKeepsTheConverterRunning) {
  InverterLogic logic;
  logic.update(battery_at(0));
  unlock_and_arm(logic, 20);
  ASSERT_EQ(logic.write_holding(reg::kOpMode, 2), ModbusException::none);
  for (double t = 1; t <= 60; t += 1) {
    logic.update(battery_at(t));
    ASSERT_EQ(logic.write_holding(reg::kHeartbeat, 20), ModbusException::none);
    ASSERT_TRUE(logic.running()) << t;
  }
}

TEST(InverterRegisters, CurrentSetpointFollowsTheSignConventionAndRamps) {
  InverterLogic logic;
  logic.update(battery_at(0));
  unlock_and_arm(logic);
  ASSERT_EQ(logic.write_holding(reg::kOpMode, 2), ModbusException::none);
  ASSERT_EQ(logic.write_holding(reg::kOpModeSetpoint, to_raw(-50, kCurrentScale)), ModbusException::none);
  logic.update(battery_at(0.1));
  EXPECT_NEAR(logic.current_demand_a(), -10, 1e-9);  // ramp 100 A/s
  logic.update(battery_at(1.0));
  EXPECT_NEAR(logic.current_demand_a(), -50, 0.01);  // negative: charging
}

TEST(InverterRegisters, CurrentSetpointIsClampedToTheLimits) {
  InverterLogic logic;
  logic.update(battery_at(0));
  unlock_and_arm(logic);
  ASSERT_EQ(logic.write_holding(reg::kBatMaxChargeCurrent, to_raw(-100, kCurrentScale)),
            ModbusException::none);
  ASSERT_EQ(logic.write_holding(reg::kBatMaxDischargeCurrent, to_raw(80, kCurrentScale)),
            ModbusException::none);
  ASSERT_EQ(logic.write_holding(reg::kOpMode, 2), ModbusException::none);
  ASSERT_EQ(logic.write_holding(reg::kOpModeSetpoint, to_raw(-150, kCurrentScale)), ModbusException::none);
  logic.update(battery_at(10));
  EXPECT_NEAR(logic.current_demand_a(), -100, 0.02);
  ASSERT_EQ(logic.write_holding(reg::kOpModeSetpoint, to_raw(150, kCurrentScale)), ModbusException::none);
  logic.update(battery_at(20));
  EXPECT_NEAR(logic.current_demand_a(), 80, 0.02);
}

TEST(InverterRegisters, PowerSetpointIsClampedToThePowerLimitInBothDirections) {
  InverterLogic logic;
  logic.update(battery_at(0, 400));
  unlock_and_arm(logic);
  ASSERT_EQ(logic.write_holding(reg::kBatMaxChargePower, to_raw(30, kPowerScale)), ModbusException::none);
  ASSERT_EQ(logic.write_holding(reg::kOpMode, 1), ModbusException::none);
  ASSERT_EQ(logic.write_holding(reg::kOpModeSetpoint, to_raw(-50, kPowerScale)), ModbusException::none);
  logic.update(battery_at(10, 400));
  EXPECT_NEAR(logic.current_demand_a(), -75, 0.05);  // −30 kW at 400 V
  ASSERT_EQ(logic.write_holding(reg::kOpModeSetpoint, to_raw(20, kPowerScale)), ModbusException::none);
  logic.update(battery_at(20, 400));
  EXPECT_NEAR(logic.current_demand_a(), 50, 0.05);
  EXPECT_EQ(input(logic, reg::kPowerLimit), to_raw(30, kPowerScale));
}

TEST(InverterRegisters, CurrentIsAlsoLimitedByPower) {
  InverterLogic logic;
  logic.update(battery_at(0, 300));
  unlock_and_arm(logic);
  ASSERT_EQ(logic.write_holding(reg::kBatMaxChargePower, to_raw(15, kPowerScale)), ModbusException::none);
  ASSERT_EQ(logic.write_holding(reg::kOpMode, 2), ModbusException::none);
  ASSERT_EQ(logic.write_holding(reg::kOpModeSetpoint, to_raw(200, kCurrentScale)), ModbusException::none);
  logic.update(battery_at(10, 300));
  EXPECT_NEAR(logic.current_demand_a(), 50, 0.05);  // 15 kW / 300 V
}

TEST(InverterRegisters, VoltageModeChargesBelowAndDischargesAboveTheSetpoint) {
  InverterLogic logic;
  logic.update(battery_at(0, 370));
  unlock_and_arm(logic);
  ASSERT_EQ(logic.write_holding(reg::kOpMode, 4), ModbusException::none);
  ASSERT_EQ(logic.write_holding(reg::kOpModeSetpoint, to_raw(372, kVoltageScale)), ModbusException::none);
  logic.update(battery_at(10, 370));
  EXPECT_LT(logic.current_demand_a(), 0);
  EXPECT_EQ(input(logic, reg::kVoltageRefCommand), to_raw(372, kVoltageScale));
  logic.update(battery_at(20, 374));
  EXPECT_GT(logic.current_demand_a(), 0);
}

TEST(InverterRegisters, BatteryVoltageAboveTheLimitStopsTheConverterUntilTheModeIsWrittenAgain) {
  InverterLogic logic;
  logic.update(battery_at(0, 380));
  unlock_and_arm(logic);
  ASSERT_EQ(logic.write_holding(reg::kBatMaxVolt, to_raw(384, kVoltageScale)), ModbusException::none);
  ASSERT_EQ(logic.write_holding(reg::kBatMinVolt, to_raw(264, kVoltageScale)), ModbusException::none);
  ASSERT_EQ(logic.write_holding(reg::kOpMode, 2), ModbusException::none);
  ASSERT_EQ(logic.write_holding(reg::kOpModeSetpoint, to_raw(-20, kCurrentScale)), ModbusException::none);
  logic.update(battery_at(1, 383));
  EXPECT_TRUE(logic.running());
  EXPECT_EQ(input(logic, reg::kReadyToCharge), 1);
  logic.update(battery_at(2, 384.5));
  EXPECT_FALSE(logic.running());
  EXPECT_EQ(logic.mode(), InverterMode::off);
  EXPECT_EQ(logic.current_demand_a(), 0);
  EXPECT_NE(input(logic, reg::kFaultFirst) & kFaultBatteryOverVoltage, 0);
  EXPECT_NE(input(logic, reg::kWarningFirst) & kWarningBatteryOverVoltage, 0);
  EXPECT_EQ(input(logic, reg::kReadyToCharge), 0);
  logic.update(battery_at(3, 381));
  EXPECT_FALSE(logic.running());  // latched
  ASSERT_EQ(logic.write_holding(reg::kOpMode, 2), ModbusException::none);
  logic.update(battery_at(4, 381));
  EXPECT_TRUE(logic.running());
  EXPECT_EQ(input(logic, reg::kFaultFirst), 0);
}

TEST(InverterRegisters, BatteryVoltageBelowTheLimitStopsTheConverter) {
  InverterLogic logic;
  logic.update(battery_at(0, 300));
  unlock_and_arm(logic);
  ASSERT_EQ(logic.write_holding(reg::kBatMinVolt, to_raw(264, kVoltageScale)), ModbusException::none);
  ASSERT_EQ(logic.write_holding(reg::kOpMode, 2), ModbusException::none);
  ASSERT_EQ(logic.write_holding(reg::kOpModeSetpoint, to_raw(20, kCurrentScale)), ModbusException::none);
  logic.update(battery_at(1, 263));
  EXPECT_FALSE(logic.running());
  EXPECT_NE(input(logic, reg::kFaultFirst) & kFaultBatteryUnderVoltage, 0);
}

TEST(InverterRegisters, PowerOnLimitsLetPacksOfAnyModuleCountRun) {
  for (const double pack_v : {47.0, 377.8, 709.0}) {  // 1, 8 and 15 modules
    InverterLogic logic;
    logic.update(battery_at(0, pack_v));
    unlock_and_arm(logic);
    ASSERT_EQ(logic.write_holding(reg::kOpMode, 2), ModbusException::none);
    ASSERT_EQ(logic.write_holding(reg::kOpModeSetpoint, to_raw(10, kCurrentScale)), ModbusException::none);
    logic.update(battery_at(1, pack_v));
    EXPECT_TRUE(logic.running()) << pack_v;
  }
}

TEST(InverterRegisters, StatusRegistersFollowThePack) {
  InverterLogic logic;
  InverterInputs inputs = battery_at(0, 377.8, -40);
  inputs.negative_contactor = false;
  logic.update(inputs);
  EXPECT_EQ(input(logic, reg::kDcInputVolt), to_raw(377.8, kVoltageScale));
  EXPECT_EQ(input(logic, reg::kDcLinkVolt), to_raw(377.8, kVoltageScale));
  EXPECT_EQ(input(logic, reg::kDcLinkCurrent), to_raw(-40, kCurrentScale));
  EXPECT_EQ(input(logic, reg::kDcLinkPower), to_raw(-377.8 * 40 / 1000, kPowerScale));
  EXPECT_EQ(input(logic, reg::kAmbientTemp), to_raw(25, kTemperatureScale));
  const std::uint16_t status = input(logic, reg::kStatus);
  EXPECT_NE(status & kStatusPositiveContactor, 0);
  EXPECT_EQ(status & kStatusNegativeContactor, 0);
  EXPECT_EQ(input(logic, reg::kReadyToCharge), 0);  // a contactor is open
}

TEST(InverterRegisters, EnergyCountersIntegrateTheDcLinkPower) {
  InverterLogic logic;
  logic.update(battery_at(0, 400, -50));    // 20 kW charging
  logic.update(battery_at(360, 400, -50));  // 0.1 h → 2.0 kWh
  EXPECT_EQ(input(logic, reg::kChargedEnergyHigh), 0);
  EXPECT_EQ(input(logic, reg::kChargedEnergyHigh + 1), 20);  // 0.1 kWh units
  EXPECT_EQ(input(logic, reg::kDischargedEnergyHigh + 1), 0);
  logic.update(battery_at(540, 400, 25));  // 10 kW for 0.05 h → 0.5 kWh
  EXPECT_EQ(input(logic, reg::kDischargedEnergyHigh + 1), 5);
}

TEST(InverterRegisters, RunningConverterHeatsTheHeatSinkAndRunsTheFan) {
  InverterLogic logic;
  logic.update(battery_at(0, 400));
  EXPECT_EQ(input(logic, reg::kStatus) & kStatusFan, 0);
  unlock_and_arm(logic, 1000);
  ASSERT_EQ(logic.write_holding(reg::kOpMode, 2), ModbusException::none);
  ASSERT_EQ(logic.write_holding(reg::kOpModeSetpoint, to_raw(100, kCurrentScale)), ModbusException::none);
  for (double t = 1; t <= 90; t += 1) {
    logic.update(battery_at(t, 400, logic.current_demand_a()));
  }
  EXPECT_NE(input(logic, reg::kStatus) & kStatusFan, 0);
  EXPECT_GT(from_raw(input(logic, reg::kHeatSinkTemp), kTemperatureScale), 30);
}

TEST(InverterRegisters, InjectedFaultBitStopsTheConverterAndShows) {
  InverterLogic logic;
  logic.update(battery_at(0));
  unlock_and_arm(logic);
  ASSERT_EQ(logic.write_holding(reg::kOpMode, 2), ModbusException::none);
  ASSERT_EQ(logic.write_holding(reg::kOpModeSetpoint, to_raw(10, kCurrentScale)), ModbusException::none);
  logic.update(battery_at(1));
  EXPECT_TRUE(logic.running());
  ASSERT_TRUE(logic.set_fault_bit(30273, 3, true));
  logic.update(battery_at(2));
  EXPECT_FALSE(logic.running());
  EXPECT_EQ(input(logic, 30273), 1u << 3);
  EXPECT_EQ(logic.current_demand_a(), 0);
  ASSERT_TRUE(logic.set_fault_bit(30273, 3, false));
  logic.update(battery_at(3));
  EXPECT_TRUE(logic.running());
  EXPECT_FALSE(logic.set_fault_bit(30280, 0, true));
  // A warning or status bit does not stop it.
  ASSERT_TRUE(logic.set_fault_bit(reg::kWarningFirst, 7, true));
  logic.update(battery_at(4));
  EXPECT_TRUE(logic.running());
  EXPECT_NE(input(logic, reg::kWarningFirst) & (1u << 7), 0);
}

TEST(InverterRegisters, WrongReadbackOffsetsTheReportedValuesOnly) {
  InverterLogic logic;
  logic.update(battery_at(0, 377.8, 10));
  logic.set_readback_error({5, 2, 0});
  EXPECT_EQ(input(logic, reg::kDcLinkCurrent), to_raw(15, kCurrentScale));
  EXPECT_EQ(input(logic, reg::kDcLinkPower), to_raw(377.8 * 10 / 1000 + 2, kPowerScale));
  EXPECT_EQ(input(logic, reg::kDcInputVolt), to_raw(377.8, kVoltageScale));
}

}  // namespace
}  // namespace cellguard::sim
