// The rig's wide CSV record (recording.csv_dir), one row a second in the rig's layout
// (seed/sample-record-log.csv): BMUnn_<signal> for every decoded signal of every module found
// (sorted by name, as the rig wrote them), the board (ADC counts unless csv_board = "converted"),
// the inverter, the pcan_is* violation flags, warning, dangerous (CurrentState with
// csv_extra_columns). Pure: the latest values in, one row out; edge.cpp writes it on a timer.
#pragma once

#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "devices/board_link.h"
#include "devices/inverter_client.h"
#include "edge/edge_time.h"
#include "edge/module_map.h"
#include "recorder/rig_csv.h"
#include "safety/safety.h"

namespace cellguard::edge {

// The rig's violation flag (bit of recorder::kRigFlagColumns) a limit on this quantity raises, or -1.
int rig_flag_bit(safety::Quantity quantity);
// The flags of the active causes: bit i set when a limit cause raises recorder::kRigFlagColumns[i].
std::uint32_t rig_flags(std::span<const safety::Reason> causes);

// The rig's CSV column prefix of a module's signals ("BMU03_"), from modules.name_pattern
// ("BMU{id}_"; without "{id}" the rig's own "BMUnn_").
std::string rig_prefix(std::string_view name_pattern, int module_id);

// No file before the modules are found (all expected, or the discovery window since the first):
// a file with the board alone and then another with the modules is a stray for the lab's tools.
bool rig_csv_ready(std::size_t modules_found, int modules_expected, MonoTime first_module_ns, MonoTime now_ns,
                   Duration discovery_window_ns);

struct RigCsvInputs {
  const ModuleMap* map = nullptr;
  const std::vector<std::vector<double>>* latest_values = nullptr;  // per map message, as decoded
  std::set<int> modules_found;
  std::string name_pattern;
  std::optional<devices::BoardReading> board;
  bool board_converted = false;  // csv_board = "converted": engineering values, not ADC counts
  std::optional<devices::InverterReadings> inverter;
  std::uint32_t rig_flags = 0;
  safety::State state = safety::State::normal;
  bool extra_columns = false;  // CurrentState
};

struct RigCsvRow {
  std::vector<std::string> columns;
  std::vector<recorder::CsvValue> values;
};

RigCsvRow build_rig_csv_row(const RigCsvInputs& in);

}  // namespace cellguard::edge
