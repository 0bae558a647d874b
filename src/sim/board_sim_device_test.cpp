// The sensor board and the inverter as `cellguard sim` devices: started through SimDevice::start
// with the simulator's real fault dispatcher and control handler; ready-line entries, fault kinds
// (issue 3, item 6) and status.
#include "sim/board_sim_device.h"

#include <gtest/gtest.h>
#include <modbus/modbus.h>

#include <asio.hpp>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "dbc/codec.h"
#include "dbc/dbc.h"
#include "sim/canopen_modules.h"
#include "sim/control_protocol.h"
#include "sim/faults.h"
#include "sim/inverter_sim_device.h"
#include "sim/pack_model.h"
#include "sim/rig_dbc.h"

namespace cellguard::sim {
namespace {

struct Simulator {
  Simulator() {
    auto parsed = dbc::parse_dbc(builtin_rig_dbc());
    EXPECT_TRUE(parsed.ok());
    auto codec = std::make_shared<const dbc::DatabaseCodec>(std::move(parsed->database));
    auto created = CanopenModules::create(codec, pack);
    EXPECT_TRUE(created.ok());
    modules = std::move(created.value());
    faults = std::make_unique<FaultDispatcher>(pack, *modules);
    control = std::make_unique<ControlHandler>(pack, *modules, *faults);
  }
  Result<void> start(SimDevice& device) { return device.start(io, pack, *faults, *control, ready); }
  Result<void> fault(const std::string& kind, std::map<std::string, double> numbers = {}) {
    return faults->apply(FaultCommand{kind, std::move(numbers)}, pack.time_s());
  }
  nlohmann::json status() {
    return nlohmann::json::parse(control->handle(R"({"cmd":"status"})", pack.time_s()))["status"];
  }

  asio::io_context io;
  PackModel pack{PackConfig{}};
  std::unique_ptr<CanopenModules> modules;
  std::unique_ptr<FaultDispatcher> faults;
  std::unique_ptr<ControlHandler> control;
  nlohmann::json ready = nlohmann::json::object();
};

TEST(SimDevices, BoardAndInverterAddTheirEndpointsToTheReadyLine) {
  Simulator sim;
  auto board = make_board_sim_device();
  auto inverter = make_inverter_sim_device();
  ASSERT_TRUE(sim.start(*board).ok());
  ASSERT_TRUE(sim.start(*inverter).ok());
  EXPECT_EQ(sim.ready["board"].get<std::string>().rfind("/dev/pts/", 0), 0u);
  EXPECT_EQ(sim.ready["inverter_rtu"].get<std::string>().rfind("/dev/pts/", 0), 0u);
  EXPECT_EQ(sim.ready["inverter_tcp"].get<std::string>().rfind("127.0.0.1:", 0), 0u);
  sim.pack.step(0.1);
  board->after_step();
  inverter->after_step();
  board->stop();
  inverter->stop();
}

TEST(SimDevices, BoardUnpluggedFaultClosesAndReopensThePty) {
  Simulator sim;
  auto board = make_board_sim_device();
  ASSERT_TRUE(sim.start(*board).ok());
  ASSERT_TRUE(sim.fault("board_unplugged", {{"on", 1}}).ok());
  EXPECT_TRUE(sim.status()["board"]["unplugged"].get<bool>());
  EXPECT_EQ(sim.status()["board"]["path"], "");
  ASSERT_TRUE(sim.fault("board_unplugged", {{"on", 0}}).ok());
  EXPECT_FALSE(sim.status()["board"]["unplugged"].get<bool>());
  EXPECT_NE(sim.status()["board"]["path"], "");
  ASSERT_TRUE(sim.fault("board_unplugged").ok());
  ASSERT_TRUE(sim.fault("clear").ok());  // replugs
  EXPECT_FALSE(sim.status()["board"]["unplugged"].get<bool>());
}

TEST(SimDevices, InverterFaultsActOnTheModbusServerAndClearResetsThem) {
  Simulator sim;
  InverterSimOptions options;
  options.rtu = false;
  auto inverter = make_inverter_sim_device(options);
  ASSERT_TRUE(sim.start(*inverter).ok());
  EXPECT_FALSE(sim.ready.contains("inverter_rtu"));
  const std::string endpoint = sim.ready["inverter_tcp"];
  modbus_t* ctx = modbus_new_tcp("127.0.0.1", std::stoi(endpoint.substr(endpoint.rfind(':') + 1)));
  ASSERT_NE(ctx, nullptr);
  ASSERT_EQ(modbus_connect(ctx), 0);
  modbus_set_response_timeout(ctx, 0, 300000);
  std::uint16_t value = 0;

  ASSERT_TRUE(sim.fault("inverter_fault_bit", {{"register", 30273}, {"bit", 2}}).ok());
  ASSERT_EQ(modbus_read_input_registers(ctx, 30273, 1, &value), 1);
  EXPECT_EQ(value, 1u << 2);
  EXPECT_FALSE(sim.fault("inverter_fault_bit", {{"register", 40000}}).ok());

  ASSERT_TRUE(sim.fault("inverter_wrong_readback", {{"current_a", 3}}).ok());
  ASSERT_EQ(modbus_read_input_registers(ctx, inverter_reg::kDcLinkCurrent, 1, &value), 1);
  EXPECT_NEAR(from_raw(value, kCurrentScale), 3, 0.02);

  ASSERT_TRUE(sim.fault("inverter_not_answering").ok());
  EXPECT_EQ(modbus_read_input_registers(ctx, 30273, 1, &value), -1);
  ASSERT_TRUE(sim.fault("clear").ok());
  modbus_flush(ctx);
  modbus_close(ctx);
  ASSERT_EQ(modbus_connect(ctx), 0);  // a fresh connection: the dropped answer's request is gone
  ASSERT_EQ(modbus_read_input_registers(ctx, 30273, 1, &value), 1);
  EXPECT_EQ(value, 0);
  ASSERT_EQ(modbus_read_input_registers(ctx, inverter_reg::kDcLinkCurrent, 1, &value), 1);
  EXPECT_NEAR(from_raw(value, kCurrentScale), 0, 0.02);

  ASSERT_TRUE(sim.fault("inverter_delay", {{"ms", 10}}).ok());
  EXPECT_FALSE(sim.fault("inverter_delay", {{"ms", -1}}).ok());
  ASSERT_TRUE(sim.fault("inverter_timeouts", {{"every", 0}}).ok());
  ASSERT_TRUE(sim.fault("inverter_crc_errors", {{"every", 0}}).ok());
  const auto status = sim.status()["inverter"];
  EXPECT_EQ(status["tcp"], endpoint);
  EXPECT_GE(status["unanswered"].get<int>(), 1);
  modbus_close(ctx);
  modbus_free(ctx);
  inverter->stop();
}

}  // namespace
}  // namespace cellguard::sim
