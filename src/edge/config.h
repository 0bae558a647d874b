// The edge's configuration: one TOML file (data/edge/rig.toml reproduces the rig), validated
// completely at load, with errors that name the file, line, column and key.
//
// Paths inside the file (DBC, thermistor table, schedule, recording, CSV folder) are relative to
// the file's own folder, never to the working directory (rig flaw 6). Device endpoints may be
// overridden on the command line (EndpointOverrides). The SHA-256 of the file's bytes identifies the
// configuration in logs, status and recordings.
//
// Load in two stages: load_edge_config() checks syntax, types, units and ranges and everything that
// needs no other file; check_edge_config() also loads the DBC, thermistor table and schedule and
// checks that every signal the rules name exists in the DBC. `cellguard edge check-config` and the
// edge's start-up run both and report every problem, not just the first.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/time.h"
#include "devices/board_link.h"
#include "devices/inverter_client.h"
#include "devices/outputs.h"
#include "safety/safety.h"
#include "schedule/schedule.h"

namespace cellguard::edge {

struct CanSection {
  std::string url = "socketcan:can0";  // can/bus.h URL
  std::string dbc_path;                // absolute after load (resolved against the file's folder)
  Duration sync_period_ns =
      std::chrono::milliseconds(100);  // rig: 100 ms; 0 = do not send SYNC (cyclic modules)
  std::uint32_t sync_id = 0x080;
  bool sync_counter = true;  // 1-byte Sync_Count payload (CiA 301 counter 1..240)
  // Sent to every module found, to COB-ID sdo_request_base + node id (rig: 0x600, `2F 05 18 01 00 00 00 00`).
  std::uint32_t sdo_request_base = 0x600;
  std::vector<std::vector<std::uint8_t>> startup_sdo;
};

struct ModulesSection {
  enum class Discovery : std::uint8_t { canopen, name_pattern };
  Discovery discovery = Discovery::canopen;
  // name_pattern: a message name prefix with `{id}` for the module number, e.g. "BMU{id}_"
  // (matches BMU01_pdo1 -> module 1).
  std::string name_pattern = "BMU{id}_";
  // canopen: the PDO COB-ID bases; a frame's node id is its offset from the nearest base below it
  // (1..127). Default: the rig's eight (the standard TPDO1..4 bases and the rig's 0x190..0x490, so
  // 0x191 is pdo5 of node 1, not TPDO1 of node 17).
  std::vector<std::uint32_t> pdo_bases = {0x180, 0x280, 0x380, 0x480, 0x190, 0x290, 0x390, 0x490};
  int expected = 15;
  int cells = 12;  // populated cell channels (rig cellVoltageNum)
  // Signal names of the supervised quantities (within each module's messages); `{cell}` is 1..cells.
  std::string cell_voltage_signal = "Cell_{cell}_Voltage";
  std::string module_voltage_signal = "CMA_Voltage";
  std::string max_temperature_signal = "CMA_Max_Temp";
  std::string min_temperature_signal = "CMA_Min_Temp";
  std::string current_signal = "CMA_Current";
};

struct BoardSection {
  bool enabled = true;
  devices::BoardLinkConfig link;      // device, baud, conversion (table loaded by check)
  std::string thermistor_table_path;  // empty: the rig's table
  bool ground_fault_input = false;    // lines carry Ardu_GndFault (insulation monitor)
};

struct OutputsSection {
  enum class Driver : std::uint8_t { board, gpio };
  Driver driver = Driver::board;
  devices::OutputPins board_pins = devices::kRigBoardPins;
  devices::GpioConfig gpio;
};

struct InverterSection {
  bool enabled = true;
  devices::PowerDeviceModel model = devices::PowerDeviceModel::rig;  // the register map it speaks
  std::string url = "rtu:/dev/ttyUSB0?baud=19200&slave=2";
  devices::InverterClientConfig client;  // endpoint parsed from url
};

struct ScheduleSection {
  std::string path;  // empty: no schedule
  schedule::EndAction at_end = schedule::EndAction::loop;
  bool autostart = false;           // start when the precharge completes
  double readback_tolerance = 0.5;  // A or kW
  Duration readback_timeout_ns = std::chrono::seconds(10);
  std::optional<schedule::Schedule> loaded;  // set by check_edge_config() when path is set and valid
};

struct RecordingSection {
  std::string path;  // SQLite file; empty: no recording
  // 16 GiB: 7 days of the full 15-module rig (measured 94 MiB an hour with noisy values, uplink_bench
  // drain), the uplink's backlog bound when the server is unreachable (docs/benchmarks.md).
  std::uint64_t max_bytes = 16ull << 30;
  Duration max_age_ns = std::chrono::hours(30 * 24);
  std::string csv_dir;               // rig-layout CSV files; empty: off
  bool csv_board_converted = false;  // Ardu_* in degC/bar instead of the rig's ADC counts
  bool csv_extra_columns = false;    // also columns the rig did not log (CurrentState)
};

// Streaming the recording to `cellguard server` (uplink/sender.h). Needs the recording.
struct UplinkSection {
  std::string host;  // empty: no uplink
  std::uint16_t port = 6699;
  std::string ca_path, cert_path, key_path;  // PEM files (absolute after load)
  bool plaintext = false;                    // loopback servers only (tests, demos)
  Duration keepalive_ns = std::chrono::seconds(1);
  Duration dead_after_ns = std::chrono::seconds(5);
  Duration backoff_max_ns = std::chrono::seconds(5);
  bool enabled() const { return !host.empty(); }
};

struct OperatorSection {
  std::string socket_path;  // empty: ipc::default_runtime_dir()/cellguard-edge-<id>.sock
  std::string group;        // non-empty: socket 0660 for this group (else 0600)
  std::string events_path;  // JSON lines; empty: off (--events overrides)
};

// Where a key's value is written (1-based; 0 when unknown).
struct KeyLocation {
  int line = 0;
  int column = 0;
};

struct EdgeConfig {
  std::string source_path;  // absolute path of the file
  std::string sha256;       // hex of the file's bytes
  std::string edge_id = "edge";
  CanSection can;
  ModulesSection modules;
  BoardSection board;
  OutputsSection outputs;
  InverterSection inverter;
  ScheduleSection schedule;
  safety::SupervisorConfig safety;  // rules, staleness, contactors, cooling, precharge
  RecordingSection recording;
  UplinkSection uplink;
  OperatorSection operator_interface;
  // Dotted key -> location of every key and table read, so that check_edge_config() can name the
  // line of the key that named a file.
  std::map<std::string, KeyLocation, std::less<>> key_locations;
};

// One problem found in a configuration: "rig.toml:42:1: safety.limits.cell_voltage.warning_high:
// 4.3 is not inside the dangerous limit 4.2".
struct ConfigProblem {
  std::string file;
  int line = 0;  // 0 when unknown (e.g. a missing key)
  int column = 0;
  std::string key;  // dotted path
  std::string message;
  std::string to_string() const;
};

// Every problem in one go; ok when `problems` is empty.
struct ConfigCheck {
  std::vector<ConfigProblem> problems;
  bool ok() const { return problems.empty(); }
  std::string to_string() const;  // one problem per line
};

// Parses and validates a file's text; `path` names it in messages and anchors relative paths.
// On problems, the returned EdgeConfig is unusable.
ConfigCheck parse_edge_config(std::string_view text, const std::string& path, EdgeConfig& out);
ConfigCheck load_edge_config(const std::string& path, EdgeConfig& out);

// The file's key of a supervisor setting ("modules.stale_cycles", "safety.limits.cell_voltage.hysteresis"
// for quantity cell_voltage): where the problems of safety::validate() are reported.
std::string supervisor_setting_key(safety::ConfigField field, safety::Quantity quantity);

// Lower-case hex SHA-256 of some bytes (configuration and DBC fingerprints).
std::string sha256_hex(std::string_view bytes);

// Stage two: loads the DBC, the thermistor table (into board.link.conversion) and the schedule, and
// checks every signal name against the DBC and the schedule against the inverter limits.
ConfigCheck check_edge_config(EdgeConfig& config);

// Command-line overrides of the device endpoints (empty: keep the file's).
struct EndpointOverrides {
  std::string can;       // socketcan:can0 | socketcand://host:port/can0 | inproc:NAME
  std::string board;     // /dev/ttyACM0 ("none": no board)
  std::string inverter;  // rtu:/dev/ttyUSB0?baud=19200&slave=2 | tcp:host:port?slave=2 ("none": no inverter)
  std::string gpio;      // gpiochip0 (switches the outputs to GPIO)
};
ConfigCheck apply_overrides(EdgeConfig& config, const EndpointOverrides& overrides);

}  // namespace cellguard::edge
