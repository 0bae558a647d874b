// Physics sanity of the simulated pack (issue 3, items 1 and 8): the rig's shape, charging,
// I^2R heating, cooling by pump and fan, open contactors, energy conservation over hours.
#include <gtest/gtest.h>

#include <cmath>

#include "sim/pack_model.h"

namespace cellguard::sim {
namespace {

PackModel closed_pack(PackConfig config = {}) {
  PackModel pack(std::move(config));
  pack.set_positive_contactor(true);
  pack.set_negative_contactor(true);
  return pack;
}

double total_resistance_ohm(const PackModel& pack) {
  double sum = 0;
  for (const ModuleState& module : pack.modules())
    for (const CellState& cell : module.cells)
      if (cell.populated) sum += cell.resistance_ohm;
  return sum;
}

TEST(SimPackModel, DefaultPackLooksLikeTheRigSampleLog) {
  PackModel pack(PackConfig{});
  ASSERT_EQ(pack.modules().size(), 8u);
  EXPECT_NEAR(pack.pack_voltage_v(), 377.8, 4.0);  // seed-rig.md: pack ≈ 377.8 V
  for (const ModuleState& module : pack.modules()) {
    EXPECT_NEAR(module.voltage_v(), 47.3, 0.6);
    for (int i = 0; i < kCellChannels; ++i) {
      const CellState& cell = module.cells[static_cast<std::size_t>(i)];
      EXPECT_EQ(cell.populated, i < 12);
      if (cell.populated)
        EXPECT_NEAR(cell.voltage_v, 3.94, 0.05);
      else
        EXPECT_EQ(cell.voltage_v, 0.0);
    }
    EXPECT_NEAR(module.max_temperature_c(), 22.0, 1.0);
  }
}

TEST(SimPackModel, ConfiguredModuleIdsArePresentAndOthersAreNot) {
  PackConfig config;
  config.module_ids = {1, 2, 5, 15, 16, 0};
  PackModel pack(config);
  ASSERT_EQ(pack.modules().size(), 4u);
  EXPECT_NE(pack.module(15), nullptr);
  EXPECT_EQ(pack.module(3), nullptr);
  EXPECT_EQ(pack.module(16), nullptr);
}

TEST(SimPackModel, SameSeedGivesTheSameRigAndAnotherSeedAnother) {
  PackConfig a, b, c;
  c.seed = 2;
  PackModel pa(a), pb(b), pc(c);
  EXPECT_EQ(pa.modules()[3].cells[7].capacity_ah, pb.modules()[3].cells[7].capacity_ah);
  EXPECT_NE(pa.modules()[3].cells[7].capacity_ah, pc.modules()[3].cells[7].capacity_ah);
}

TEST(SimPackModel, ChargingRaisesVoltageAndSoc) {
  PackModel pack = closed_pack();
  const double rest_v = pack.pack_voltage_v();
  const double soc = pack.pack_soc();
  pack.set_inverter_current_a(-50);  // negative charges (seed-rig.md)
  pack.step(0.1);
  EXPECT_GT(pack.pack_voltage_v(), rest_v);  // terminal V = OCV - I*R rises at once under charge
  pack.step(1800);
  EXPECT_NEAR(pack.pack_soc() - soc, 25.0 / 64.0, 0.02);  // 25 Ah into ~64 Ah cells
  pack.set_inverter_current_a(0);
  pack.step(0.1);
  EXPECT_GT(pack.pack_voltage_v(), rest_v + 5.0);  // OCV itself rose
  for (const ModuleState& module : pack.modules()) EXPECT_NEAR(module.charge_ah, 25.0, 0.01);
}

TEST(SimPackModel, DischargeDropsTheTerminalVoltageByIR) {
  PackModel pack = closed_pack();
  const double rest_v = pack.pack_voltage_v();
  pack.set_inverter_current_a(100);
  pack.step(0.001);
  EXPECT_NEAR(rest_v - pack.pack_voltage_v(), 100 * total_resistance_ohm(pack), 0.05);
  EXPECT_GT(pack.pack_power_w(), 0);
}

TEST(SimPackModel, OpenContactorsCarryNoCurrent) {
  PackModel pack(PackConfig{});
  pack.set_inverter_current_a(150);
  const double soc = pack.pack_soc();
  pack.step(3600);
  EXPECT_EQ(pack.pack_current_a(), 0.0);
  EXPECT_DOUBLE_EQ(pack.energy().joule_heat_j, 0.0);
  EXPECT_NEAR(pack.pack_soc(), soc, 1e-3);  // balancing bleed only
  EXPECT_NEAR(pack.max_module_temperature_c(), 22.0, 0.5);
  pack.set_positive_contactor(true);
  EXPECT_EQ(pack.pack_current_a(), 0.0);  // one contactor is not enough
  pack.set_negative_contactor(true);
  EXPECT_EQ(pack.pack_current_a(), 150.0);
}

TEST(SimPackModel, JouleHeatGrowsWithTheSquareOfTheCurrent) {
  auto rise_at = [](double current_a) {
    PackModel pack = closed_pack();
    pack.set_inverter_current_a(current_a);
    pack.step(60);
    return pack.modules()[0].temperature_c - 22.0;
  };
  const double rise_50 = rise_at(50);
  const double rise_100 = rise_at(100);
  EXPECT_GT(rise_50, 0.0);
  EXPECT_NEAR(rise_100 / rise_50, 4.0, 0.2);
}

TEST(SimPackModel, PumpAndFanCoolTheModules) {
  auto hottest_after_an_hour = [](bool cooling) {
    PackModel pack = closed_pack();
    pack.set_pump(cooling);
    pack.set_fan(cooling);
    pack.set_inverter_current_a(60);
    pack.step(3600);
    return pack.max_module_temperature_c();
  };
  const double cooled_c = hottest_after_an_hour(true);
  const double uncooled_c = hottest_after_an_hour(false);
  EXPECT_LT(cooled_c + 5.0, uncooled_c);
  EXPECT_LT(cooled_c, 35.0);
}

TEST(SimPackModel, AFailedPumpCoolsNoBetterThanNoPump) {
  PackModel pack = closed_pack();
  pack.set_pump(true);
  pack.set_fan(true);
  pack.set_pump_failed(true);
  EXPECT_FALSE(pack.pump_running());
  EXPECT_LT(pack.coolant_pressure_bar(), 0.5);
  pack.set_pump_failed(false);
  EXPECT_GT(pack.coolant_pressure_bar(), 1.0);
}

// Cycles ±120 A for six simulated hours with cooling: every joule is accounted for.
TEST(SimPackModel, EnergyIsConservedAndTemperaturesStayBoundedOverHours) {
  PackModel pack = closed_pack();
  pack.set_pump(true);
  pack.set_fan(true);
  const double stored0_j = pack.stored_energy_j();
  double hottest_c = 0;
  for (int block = 0; block < 36; ++block) {  // 36 x 10 min
    pack.set_inverter_current_a(block % 2 == 0 ? 120.0 : -120.0);
    for (int s = 0; s < 600; ++s) {
      pack.step(1.0);
      hottest_c = std::max(hottest_c, pack.max_module_temperature_c());
    }
  }
  const EnergyCounters& e = pack.energy();
  const double net_in_j = e.terminal_charge_j - e.terminal_discharge_j;
  const double heat_j = e.joule_heat_j + e.balancing_heat_j;
  const double stored_change_j = pack.stored_energy_j() - stored0_j;
  EXPECT_GT(e.terminal_discharge_j, 1e7);
  EXPECT_NEAR(net_in_j, stored_change_j + heat_j, 0.002 * e.terminal_discharge_j);
  EXPECT_NEAR(heat_j, pack.thermal_energy_j() + e.heat_to_ambient_j, 0.01 * heat_j);
  EXPECT_LT(hottest_c, 45.0);
  EXPECT_GT(pack.pack_soc(), 0.3);
}

TEST(SimPackModel, ADriftingCellReachesItsTargetAndClearsAgain) {
  PackModel pack(PackConfig{});
  ASSERT_TRUE(pack.drift_cell(3, 5, 0.01, 4.30));
  EXPECT_FALSE(pack.drift_cell(3, 13, 0.01, 4.30));  // unpopulated channel
  EXPECT_FALSE(pack.drift_cell(9, 1, 0.01, 4.30));   // absent module
  pack.step(30);
  EXPECT_NEAR(pack.module(3)->cells[4].voltage_v, pack.module(3)->cells[3].voltage_v + 0.3, 0.05);
  pack.step(100);
  EXPECT_NEAR(pack.module(3)->cells[4].voltage_v, 4.30, 0.005);
  EXPECT_TRUE(pack.module(3)->status_bits() & kStatusCellOverVoltage);
  pack.clear_faults();
  EXPECT_LT(pack.module(3)->max_cell_v(), 4.0);
}

TEST(SimPackModel, AnOverheatedModuleRisesToItsTarget) {
  PackModel pack(PackConfig{});
  ASSERT_TRUE(pack.overheat_module(2, 1.0, 70.0));
  pack.step(100);
  EXPECT_NEAR(pack.module(2)->temperature_c, 70.0, 0.5);
  EXPECT_TRUE(pack.module(2)->status_bits() & kStatusOverTemperature);
  EXPECT_NEAR(pack.module(1)->temperature_c, 22.0, 0.5);
}

TEST(SimPackModel, PrechargeRaisesTheDcLinkAndOpeningLetsItDecay) {
  PackModel pack(PackConfig{});
  EXPECT_EQ(pack.dc_link_voltage_v(), 0.0);
  pack.set_negative_contactor(true);
  pack.set_precharge_relay(true);
  pack.step(10);
  EXPECT_NEAR(pack.dc_link_voltage_v(), pack.pack_voltage_v(), 1.0);
  pack.set_negative_contactor(false);
  pack.set_precharge_relay(false);
  pack.step(30);
  EXPECT_LT(pack.dc_link_voltage_v(), 5.0);
}

TEST(SimPackModel, AHighCellIsBalanced) {
  PackConfig config;
  config.soc_spread = 0;
  PackModel pack(config);
  ASSERT_TRUE(pack.drift_cell(1, 2, 1.0, 0));  // no-op drift target below: stays
  pack.clear_faults();
  ASSERT_TRUE(pack.drift_cell(1, 2, 0.1, 4.1));
  pack.step(5);
  pack.step(1);
  EXPECT_EQ(pack.module(1)->balancing_bits(), 1u << 1);
  EXPECT_TRUE(pack.module(1)->status_bits() & kStatusBalancing);
  EXPECT_EQ(pack.module(2)->balancing_bits(), 0u);
}

}  // namespace
}  // namespace cellguard::sim
