// Shared by the process tests: the project's data/edge/rig.toml pointed at a running `cellguard sim`.
// Sets the edge id, the simulator's CAN and Modbus TCP endpoints, the project DBC, the board device,
// the expected modules (with the pack's voltage limits scaled from the rig's 8 modules), no schedule,
// a recording and an operator socket in `dir`. Tests change what else they need in the table.
#pragma once

#include <toml++/toml.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "support/cellguard_process.h"

namespace cellguard::testing {

inline toml::table rig_edge_config(const nlohmann::json& sim_ready, const std::filesystem::path& dir,
                                   int modules, const std::string& edge_id, const std::string& board_device) {
  auto parsed = toml::parse_file((source_dir() / "data/edge/rig.toml").string());
#if TOML_EXCEPTIONS
  toml::table config = std::move(parsed);
#else
  toml::table config = std::move(parsed).table();
#endif
  const double scale = modules / 8.0;  // the rig's pack limits are for 8 modules
  config["edge"].as_table()->insert_or_assign("id", edge_id);
  config["can"].as_table()->insert_or_assign("url", sim_ready["can"].get<std::string>());
  config["can"].as_table()->insert_or_assign("dbc", (source_dir() / "data/cellguard-rig.dbc").string());
  config["modules"].as_table()->insert_or_assign("expected", modules);
  config["board"].as_table()->insert_or_assign("device", board_device);
  config["inverter"].as_table()->insert_or_assign(
      "url", "tcp:" + sim_ready["inverter_tcp"].get<std::string>() + "?slave=2");
  auto* limits = config["inverter"]["limits"].as_table();
  limits->insert_or_assign("max_voltage_v", 384 * scale);
  limits->insert_or_assign("min_voltage_v", 264 * scale);
  auto* battery = config["safety"]["limits"]["inverter_battery_voltage"].as_table();
  battery->insert_or_assign("warning_high", 384 * scale);
  battery->insert_or_assign("dangerous_high", 390 * scale);
  battery->insert_or_assign("warning_low", 268 * scale);
  battery->insert_or_assign("dangerous_low", 264 * scale);
  battery->insert_or_assign("hysteresis", 0.2 * scale);
  config["schedule"].as_table()->erase("file");
  config["recording"].as_table()->insert_or_assign("path", (dir / "edge.sqlite").string());
  config["operator"].as_table()->insert_or_assign("socket", (dir / "edge.sock").string());
  return config;
}

}  // namespace cellguard::testing
