// The simulated SunSpec device: its register image walks as a SunSpec chain, its points against
// the official definitions (CELLGUARD_SUNSPEC_DIR; skipped without it), its writes and its demand,
// and its Modbus TCP server read by a plain libmodbus client.
#include "sim/sunspec_device.h"

#include <gtest/gtest.h>
#include <modbus/modbus.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "sim/pack_model.h"
#include "sunspec/sunspec.h"

namespace cellguard::sim {
namespace {

namespace ss = sunspec;

std::uint16_t reg(const SunSpecLogic& logic, const ss::Point& p) {
  return logic.registers()[logic.model_address(p.model) - logic.first() + p.offset];
}

TEST(SunSpecSim, ImageIsAChainAtEachBase) {
  for (const std::uint16_t base : ss::kBaseAddresses) {
    SunSpecSimConfig config;
    config.base = base;
    const SunSpecLogic logic(config);
    auto chain = ss::parse_model_chain(logic.first(), logic.registers());
    ASSERT_TRUE(chain.ok()) << chain.error().message;
    EXPECT_EQ(chain->base, base);
    ASSERT_EQ(chain->models.size(), 4u);
    for (const auto& m : ss::kModelLengths) {
      ASSERT_NE(chain->find(m.id), nullptr) << m.id;
      EXPECT_EQ(chain->find(m.id)->length, m.length);
      EXPECT_EQ(chain->find(m.id)->address, logic.model_address(m.id));
    }
    const auto common = chain->find(ss::common::kId);
    EXPECT_EQ(ss::decode_string(logic.registers().subspan(common->address - base + ss::common::Mn.offset,
                                                          ss::common::Mn.size)),
              "cellguard");
  }
}

// The model lengths the simulator lays out are the official ones (the points are checked in sunspec_test).
TEST(SunSpecSim, ModelLengthsAreTheOfficialOnes) {
  const char* dir = std::getenv("CELLGUARD_SUNSPEC_DIR");
  if (dir == nullptr || *dir == '\0')
    GTEST_SKIP() << "set CELLGUARD_SUNSPEC_DIR to the SunSpec model definitions (shared/corpus/sunspec)";
  const SunSpecLogic logic;
  auto chain = ss::parse_model_chain(logic.first(), logic.registers());
  ASSERT_TRUE(chain.ok());
  for (const auto& m : chain->models) {
    std::ifstream in(std::filesystem::path(dir) / ("model_" + std::to_string(m.id) + ".json"));
    ASSERT_TRUE(in) << m.id;
    const auto doc = nlohmann::json::parse(in);
    int total = 0;
    for (const auto& p : doc.at("group").at("points")) total += p.at("size").get<int>();
    EXPECT_EQ(m.length, total - 2) << "model " << m.id;
  }
}

TEST(SunSpecSim, WritesAndDemand) {
  SunSpecLogic logic;
  const auto addr = [&](const ss::Point& p) {
    return static_cast<std::uint16_t>(logic.model_address(p.model) + p.offset);
  };
  EXPECT_EQ(logic.write(addr(ss::battery::V), 1), ModbusException::illegal_data_address);  // read-only
  EXPECT_EQ(logic.write(addr(ss::battery::SetInvState), 7), ModbusException::illegal_data_value);
  EXPECT_EQ(logic.write(addr(ss::storage::StorCtl_Mod), 4), ModbusException::illegal_data_value);
  EXPECT_EQ(logic.write(addr(ss::storage::OutWRte), 1001), ModbusException::illegal_data_value);
  SunSpecInputs in{0, 350, 350, 0, 25, true};
  logic.update(in);
  EXPECT_EQ(reg(logic, ss::inverter::St), static_cast<std::uint16_t>(ss::inverter::State::off));
  EXPECT_EQ(reg(logic, ss::battery::V), 3500);  // 0.1 V
  EXPECT_EQ(reg(logic, ss::battery::State), static_cast<std::uint16_t>(ss::battery::BankState::connected));
  // 10 % of 60 kW discharging: 6 kW, 17.14 A at 350 V.
  ASSERT_EQ(logic.write(addr(ss::storage::OutWRte), 100), ModbusException::none);
  ASSERT_EQ(logic.write(addr(ss::storage::StorCtl_Mod), 3), ModbusException::none);
  logic.update(in);
  EXPECT_EQ(logic.current_demand_a(), 0);  // not started
  ASSERT_EQ(logic.write(addr(ss::battery::SetInvState), 3), ModbusException::none);
  logic.update(in);
  EXPECT_NEAR(logic.power_demand_w(), 6000, 1e-6);
  EXPECT_NEAR(logic.current_demand_a(), 6000.0 / 350, 1e-9);
  EXPECT_EQ(reg(logic, ss::inverter::St), static_cast<std::uint16_t>(ss::inverter::State::mppt));
  // The controller heartbeat stops changing: after 5 s the device stops itself.
  ASSERT_EQ(logic.write(addr(ss::battery::CtrlHb), 1), ModbusException::none);
  in.time_s = 3;
  logic.update(in);
  EXPECT_TRUE(logic.started());
  in.time_s = 8.5;
  logic.update(in);
  EXPECT_FALSE(logic.started());
  EXPECT_TRUE(logic.heartbeat_lost());
  EXPECT_EQ(logic.current_demand_a(), 0);
  EXPECT_EQ(reg(logic, ss::battery::SetInvState),
            static_cast<std::uint16_t>(ss::battery::InverterCommand::stopped));
  EXPECT_EQ(logic.registers()[logic.model_address(ss::battery::kId) - logic.first() +
                              ss::battery::Evt1.offset + 1] &
                1u,
            1u);
  // Off: stopped, no demand.
  ASSERT_EQ(logic.write(addr(ss::battery::SetInvState), 3), ModbusException::none);
  logic.update(in);
  EXPECT_GT(logic.current_demand_a(), 0);
  ASSERT_EQ(logic.write(addr(ss::battery::SetInvState), 1), ModbusException::none);
  logic.update(in);
  EXPECT_EQ(logic.current_demand_a(), 0);
}

TEST(SunSpecSim, ServesTheMapOverTcp) {
  PackModel pack{PackConfig{}};
  auto device = SunSpecDevice::create(pack);
  auto endpoint = device->start_tcp({});
  ASSERT_TRUE(endpoint.ok()) << endpoint.error().message;
  const std::string text = *endpoint;
  const auto colon = text.rfind(':');
  modbus_t* ctx = modbus_new_tcp(text.substr(0, colon).c_str(), std::stoi(text.substr(colon + 1)));
  ASSERT_NE(ctx, nullptr);
  ASSERT_EQ(modbus_connect(ctx), 0) << modbus_strerror(errno);
  std::uint16_t marker[2] = {};
  ASSERT_EQ(modbus_read_registers(ctx, 40000, 2, marker), 2) << modbus_strerror(errno);
  EXPECT_EQ(marker[0], ss::kMarkerHigh);
  EXPECT_EQ(marker[1], ss::kMarkerLow);
  std::uint16_t nothing[2] = {};
  EXPECT_EQ(modbus_read_registers(ctx, 0, 2, nothing), -1);  // nothing at base 0
  EXPECT_EQ(errno, EMBXILADD);
  const std::uint16_t set_inv = static_cast<std::uint16_t>(device->logic().model_address(ss::battery::kId) +
                                                           ss::battery::SetInvState.offset);
  EXPECT_EQ(modbus_write_register(ctx, set_inv, 3), 1);
  EXPECT_TRUE(device->logic().started());
  EXPECT_EQ(modbus_write_register(ctx, 40000, 1), -1);  // the marker is read-only
  EXPECT_EQ(errno, EMBXILADD);
  modbus_close(ctx);
  modbus_free(ctx);
  EXPECT_GE(device->requests(), 4u);
  device->stop();
}

}  // namespace
}  // namespace cellguard::sim
