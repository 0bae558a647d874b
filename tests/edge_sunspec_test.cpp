// The second power-device model end to end (issue 14 item 2): `cellguard sim --sunspec` presents a
// SunSpec storage inverter (models 1, 103, 124, 802) on Modbus TCP; `cellguard edge` configured with
// [inverter] model = "sunspec" finds it by its "SunS" marker, reads and supervises its measurements,
// runs a power schedule on it and, on `edge stop`, commands it off (SetInvState INVERTER_STOPPED)
// before the contactors open. Both are real processes; every wait is on a condition with a deadline.
#include <gtest/gtest.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/cellguard_process.h"
#include "support/child_process.h"
#include "support/rig_edge_config.h"

namespace cellguard {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::ChildProcess;
using testing::JsonLinesTail;
using testing::wait_until;
using namespace std::chrono_literals;

bool is_action(const json& e, const char* action) {
  return e.value("kind", "") == "action" && e.value("action", "") == action;
}

TEST(EdgeSunSpec, ReadsSupervisesDrivesAndStopsASunSpecDevice) {
  const fs::path dir = fs::temp_directory_path() / ("cellguard-edge-sunspec-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const int modules = 8;
  ChildProcess sim({testing::binary(), "sim", "--modules", std::to_string(modules), "--control",
                    (dir / "sim.sock").string(), "--board-link", (dir / "board").string(), "--initial-soc",
                    "50", "--sunspec", "--inverter-tcp-port", "0"},
                   (dir / "sim.log").string());
  ASSERT_TRUE(sim.ready()) << sim.log();
  json ready = sim.ready_line();
  ASSERT_TRUE(ready.contains("sunspec_tcp")) << ready.dump();
  EXPECT_FALSE(ready.contains("inverter_tcp")) << "the SunSpec device replaces the rig's inverter";
  ready["inverter_tcp"] = ready["sunspec_tcp"];

  toml::table config = testing::rig_edge_config(ready, dir, modules, "sunspec", (dir / "board").string());
  auto* inverter = config["inverter"].as_table();
  inverter->insert_or_assign("model", "sunspec");
  for (const char* rig_only : {"registers", "scales", "codes"}) inverter->erase(rig_only);
  std::ofstream(dir / "schedule.csv") << "Interval [s],Power [kW]\n30,-3\n";
  config["schedule"].as_table()->insert_or_assign("file", (dir / "schedule.csv").string());
  config["operator"].as_table()->insert_or_assign("events", (dir / "events.jsonl").string());
  const std::string config_path = (dir / "edge.toml").string();
  std::ofstream(config_path) << config << "\n";

  ChildProcess edge({testing::binary(), "edge", "--config", config_path}, (dir / "edge.log").string());
  ASSERT_TRUE(edge.ready()) << edge.log();
  JsonLinesTail events((dir / "events.jsonl").string());
  const std::string edge_socket = (dir / "edge.sock").string();
  auto status = [&] { return testing::request(edge_socket, {{"cmd", "status"}})["status"]; };
  auto sim_status = [&] {
    return testing::request((dir / "sim.sock").string(), {{"cmd", "status"}})["status"];
  };
  auto logs = [&] { return "--- edge ---\n" + edge.log() + "\n--- sim ---\n" + sim.log(); };

  // Found by its marker, started up, read and supervised.
  ASSERT_TRUE(wait_until([&] { return status()["inverter"].value("phase", "") == "running"; }, 20s))
      << status().dump(2) << logs();
  ASSERT_TRUE(events.wait_for(
      [](const json& e) {
        return e.value("link", "") == "inverter" &&
               e.value("message", "").find("SunSpec map at 40000: models 1, 103, 124, 802") !=
                   std::string::npos;
      },
      5s))
      << logs();
  ASSERT_TRUE(wait_until([&] { return status()["inverter"].contains("last"); }, 5s)) << status().dump(2);
  const double pack_v = sim_status().value("pack_voltage_v", 0.0);
  EXPECT_NEAR(status()["inverter"]["last"].value("battery_voltage_v", 0.0), pack_v, 1.0)
      << sim_status().dump(2);
  EXPECT_EQ(status()["state"], "normal") << status().dump(2);

  // A power schedule drives it (the precharge needs every module): -3 kW (charging), read back from the
  // device's DC power.
  ASSERT_TRUE(wait_until([&] { return status()["modules"].value("found", 0) == modules; }, 10s))
      << status().dump(2);
  json answer = testing::request(edge_socket, {{"cmd", "schedule"}, {"action", "start"}});
  ASSERT_TRUE(answer.value("ok", false)) << answer.dump() << logs();
  auto readback = events.wait_for([](const json& e) { return e.value("event", "") == "readback_ok"; }, 20s);
  ASSERT_TRUE(readback) << logs();
  EXPECT_NEAR((*readback)["measured"].get<double>(), -3, 0.3);
  EXPECT_TRUE(sim_status()["sunspec"].value("started", false)) << sim_status().dump(2);
  EXPECT_NEAR(sim_status()["sunspec"].value("power_demand_w", 0.0), -3000, 1) << sim_status().dump(2);

  // A stop: inverter off first (written to the device), then the contactors open.
  EXPECT_TRUE(testing::request(edge_socket, {{"cmd", "stop"}}).value("ok", false));
  auto off = events.wait_for([](const json& e) { return is_action(e, "inverter_off"); }, 10s);
  ASSERT_TRUE(off) << logs();
  auto written = events.wait_for(
      [](const json& e) {
        return e.value("link", "") == "inverter" && e.value("event", "") == "command_written" &&
               e.value("message", "").find("mode off") != std::string::npos;
      },
      10s);
  ASSERT_TRUE(written) << logs();
  EXPECT_LE((*off)["t"].get<double>(), (*written)["t"].get<double>());
  ASSERT_TRUE(wait_until([&] { return !edge.running(); }, 10s)) << logs();
  EXPECT_EQ(edge.stop(), 0) << logs();
  const json after = sim_status();
  EXPECT_FALSE(after["sunspec"].value("started", true)) << after.dump(2);
  EXPECT_NEAR(after.value("pack_current_a", 99.0), 0.0, 0.5) << after.dump(2);
  for (const char* relay : {"relay1", "relay2", "relay3"})
    EXPECT_FALSE(after["board"]["outputs"].value(relay, true)) << relay;
  if (!::testing::Test::HasFailure()) fs::remove_all(dir);
}

}  // namespace
}  // namespace cellguard
