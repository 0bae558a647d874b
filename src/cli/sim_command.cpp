// `cellguard sim`: the rig simulator (issue 3), and `cellguard sim ctl`: its control client.

#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "ipc/line_socket.h"
#include "sim/board_sim_device.h"
#include "sim/control_protocol.h"
#include "sim/inverter_sim_device.h"
#include "sim/simulator.h"
#include "sim/sunspec_sim_device.h"

namespace cellguard::cli {
namespace {

struct SimArgs {
  int modules = 8;
  std::string module_ids;  // "1,2,5": overrides --modules
  int cells = 12;
  std::string dbc;
  std::string can;
  std::string can_address = "127.0.0.1";
  int can_port = 0;
  double speed = 1;
  double cyclic_ms = 0;
  std::string scenario;
  std::uint64_t seed = 1;
  std::string control;
  double duration_s = 0;
  double initial_soc_pct = 78;
  double ambient_c = 22;
  double capacity_ah = 64;
  // The sensor board on a pty and the inverter on Modbus (RTU on a pty and TCP).
  bool no_board = false;
  bool no_inverter = false;
  bool sunspec = false;  // the SunSpec storage inverter on Modbus TCP instead of the rig's inverter
  sim::BoardPins pins;
  bool board_ground_fault = false;
  std::string board_link;
  int inverter_slave = 2;
  std::string inverter_tcp_address = "127.0.0.1";
  int inverter_tcp_port = 0;
};

struct CtlArgs {
  std::string socket;
  std::vector<std::string> words;  // status | faults | fault KIND k=v... | drive k=v... | JSON
};

Result<std::vector<int>> parse_ids(const std::string& text) {
  std::vector<int> ids;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    char* end = nullptr;
    const long id = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || id < 1 || id > sim::kMaxModules)
      return Error(ErrorCode::invalid_argument, "--module-ids: '" + item + "' is not a node id 1..15");
    ids.push_back(static_cast<int>(id));
  }
  if (ids.empty()) return Error(ErrorCode::invalid_argument, "--module-ids: no ids");
  return ids;
}

int run_sim(const SimArgs& args) {
  sim::SimOptions options;
  if (!args.module_ids.empty()) {
    Result<std::vector<int>> ids = parse_ids(args.module_ids);
    if (!ids) {
      std::fprintf(stderr, "cellguard sim: %s\n", ids.error().message.c_str());
      return 2;
    }
    options.pack.module_ids = *ids;
  } else {
    options.pack.module_ids.clear();
    for (int id = 1; id <= args.modules; ++id) options.pack.module_ids.push_back(id);
  }
  options.pack.populated_cells = args.cells;
  options.pack.seed = args.seed;
  options.pack.initial_soc = args.initial_soc_pct / 100.0;
  options.pack.ambient_c = args.ambient_c;
  options.pack.cell_capacity_ah = args.capacity_ah;
  options.dbc_path = args.dbc;
  options.can_url = args.can;
  options.can_listen_address = args.can_address;
  options.can_port = static_cast<std::uint16_t>(args.can_port);
  options.speed = args.speed;
  options.cyclic_ms = args.cyclic_ms;
  options.scenario_path = args.scenario;
  options.control_path = args.control;
  options.duration_s = args.duration_s;
  if (!args.no_board) {
    sim::BoardConfig board;
    board.pins = args.pins;
    board.report_ground_fault = args.board_ground_fault;
    options.devices.push_back(sim::make_board_sim_device(board, args.board_link));
  }
  if (!args.no_inverter && args.sunspec) {
    sim::SunSpecSimOptions sunspec;
    sunspec.tcp.host = args.inverter_tcp_address;
    sunspec.tcp.port = args.inverter_tcp_port;
    options.devices.push_back(sim::make_sunspec_sim_device(sunspec));
  } else if (!args.no_inverter) {
    sim::InverterSimOptions inverter;
    inverter.rtu_config.slave_id = args.inverter_slave;
    inverter.tcp_config.host = args.inverter_tcp_address;
    inverter.tcp_config.port = args.inverter_tcp_port;
    options.devices.push_back(sim::make_inverter_sim_device(inverter));
  }
  return sim::run_simulator(std::move(options));
}

// "k=v" words as JSON members: numbers, true/false, else strings.
Result<nlohmann::json> members_of(const std::vector<std::string>& words, std::size_t first) {
  nlohmann::json members = nlohmann::json::object();
  for (std::size_t i = first; i < words.size(); ++i) {
    const std::string& word = words[i];
    const std::size_t eq = word.find('=');
    if (eq == std::string::npos || eq == 0)
      return Error(ErrorCode::invalid_argument, "expected key=value, got '" + word + "'");
    const std::string key = word.substr(0, eq);
    const std::string value = word.substr(eq + 1);
    char* end = nullptr;
    const double number = std::strtod(value.c_str(), &end);
    if (value == "true" || value == "on")
      members[key] = true;
    else if (value == "false" || value == "off")
      members[key] = false;
    else if (!value.empty() && *end == '\0')
      members[key] = number;
    else
      members[key] = value;
  }
  return members;
}

Result<std::string> request_of(const std::vector<std::string>& words) {
  if (words.empty())
    return Error(ErrorCode::invalid_argument, "nothing to send (status, faults, fault KIND ..., drive ...)");
  if (words[0].starts_with("{")) return words[0];
  nlohmann::json request;
  if (words[0] == "status" || words[0] == "faults") {
    request = {{"cmd", words[0]}};
  } else if (words[0] == "fault") {
    if (words.size() < 2)
      return Error(ErrorCode::invalid_argument, "fault needs a kind, e.g. fault cell_drift module=3 cell=5");
    Result<nlohmann::json> members = members_of(words, 2);
    if (!members) return members.error();
    request = std::move(*members);
    request["cmd"] = "fault";
    request["fault"] = words[1];
  } else if (words[0] == "drive") {
    Result<nlohmann::json> members = members_of(words, 1);
    if (!members) return members.error();
    request = std::move(*members);
    request["cmd"] = "drive";
  } else {
    return Error(ErrorCode::invalid_argument, "unknown request '" + words[0] + "'");
  }
  return request.dump();
}

// Sends one request line and prints the response line. Exit code 0 if the response says ok.
int run_ctl(const CtlArgs& args) {
  Result<std::string> request = request_of(args.words);
  if (!request) {
    std::fprintf(stderr, "cellguard sim ctl: %s\n", request.error().message.c_str());
    return 2;
  }
  std::string path = args.socket;
  if (path.empty()) {
    const char* env = std::getenv("CELLGUARD_SIM_CONTROL");
    path = env ? env : "";
  }
  if (path.empty()) {
    std::fprintf(stderr, "cellguard sim ctl: give --socket PATH (the \"control\" of the ready line)\n");
    return 2;
  }
  Result<std::string> answer = ipc::request_line(path, *request);
  if (!answer) {
    std::fprintf(stderr, "cellguard sim ctl: %s\n", answer.error().message.c_str());
    return 1;
  }
  const std::string response = *answer + "\n";
  std::fputs(response.c_str(), stdout);
  const nlohmann::json parsed = nlohmann::json::parse(response, nullptr, false);
  return parsed.is_object() && parsed.value("ok", false) ? 0 : 1;
}

}  // namespace

void register_sim(CLI::App& app, Action& action) {
  auto args = std::make_shared<SimArgs>();
  CLI::App* sim =
      app.add_subcommand("sim", "Simulate the rig: battery modules on CAN, faults, control socket");
  sim->add_option("--modules", args->modules, "Modules with node ids 1..N")->check(CLI::Range(1, 15));
  sim->add_option("--module-ids", args->module_ids, "Node ids of the present modules, e.g. 1,2,5");
  sim->add_option("--cells", args->cells, "Populated cell channels per module (of 14)")
      ->check(CLI::Range(1, 14));
  sim->add_option("--dbc", args->dbc,
                  "DBC to encode the PDOs with (default: the built-in cellguard-rig.dbc)");
  sim->add_option("--can", args->can, "Use this bus instead of the socketcand server, e.g. socketcan:vcan0");
  sim->add_option("--can-address", args->can_address, "socketcand server listen address");
  sim->add_option("--can-port", args->can_port, "socketcand server port (0: any free port)")
      ->check(CLI::Range(0, 65535));
  sim->add_option("--speed", args->speed, "Simulated seconds per real second")->check(CLI::PositiveNumber);
  sim->add_option("--cyclic-ms", args->cyclic_ms,
                  "Also send PDOs every MS simulated ms without SYNC (0: off)");
  sim->add_option("--scenario", args->scenario, "Fault scenario (TOML, timed steps)");
  sim->add_option("--seed", args->seed, "Seed of the cell-to-cell spread and garbage frames");
  sim->add_option("--control", args->control,
                  "Control socket path (default: in $XDG_RUNTIME_DIR/cellguard, /run/cellguard as root or "
                  "/tmp/cellguard-<uid>)");
  sim->add_option("--duration", args->duration_s,
                  "Stop after this many simulated seconds (0: run until signalled)");
  sim->add_option("--initial-soc", args->initial_soc_pct, "Initial state of charge, %")
      ->check(CLI::Range(0.0, 100.0));
  sim->add_option("--ambient", args->ambient_c, "Ambient temperature, °C")->check(CLI::Range(-40.0, 80.0));
  sim->add_option("--capacity", args->capacity_ah, "Cell capacity, Ah")->check(CLI::PositiveNumber);
  sim->add_flag("--no-board", args->no_board, "Do not simulate the sensor board");
  sim->add_flag("--no-inverter", args->no_inverter,
                "Do not simulate the inverter (`ctl drive` sets the current)");
  sim->add_flag("--sunspec", args->sunspec,
                "Simulate a SunSpec storage inverter (models 1, 103, 124, 802 at 40000, Modbus TCP) instead "
                "of the rig's "
                "inverter; its endpoint is the ready line's sunspec_tcp");
  sim->add_option("--pin-pump", args->pins.pump, "Board pin of the pump");
  sim->add_option("--pin-fan", args->pins.fan, "Board pin of the fan");
  sim->add_option("--pin-relay1", args->pins.relay1, "Board pin of relay 1 (positive contactor)");
  sim->add_option("--pin-relay2", args->pins.relay2, "Board pin of relay 2 (negative contactor)");
  sim->add_option("--pin-relay3", args->pins.relay3, "Board pin of relay 3 (precharge)");
  sim->add_option("--board-link", args->board_link,
                  "Keep a symbolic link at PATH pointing at the board's pty (like /dev/serial/by-id; absent "
                  "while unplugged)");
  sim->add_flag("--board-ground-fault", args->board_ground_fault,
                "Board lines carry Ardu_GndFault (not on the rig)");
  sim->add_option("--inverter-slave", args->inverter_slave, "Modbus RTU slave address")
      ->check(CLI::Range(1, 247));
  sim->add_option("--inverter-tcp-address", args->inverter_tcp_address, "Modbus TCP listen address");
  sim->add_option("--inverter-tcp-port", args->inverter_tcp_port, "Modbus TCP port (0: any free port)")
      ->check(CLI::Range(0, 65535));

  auto ctl_args = std::make_shared<CtlArgs>();
  CLI::App* ctl = sim->add_subcommand("ctl", "Send a request to a running simulator's control socket");
  ctl->add_option("--socket", ctl_args->socket, "Control socket (default: $CELLGUARD_SIM_CONTROL)");
  ctl->add_option("request", ctl_args->words,
                  "status | faults | fault KIND key=value... | drive key=value... | a JSON request")
      ->required();
  // The parent's callback runs after the child's: `sim ctl` must not start a simulator.
  sim->final_callback([args, ctl, ctl_args, &action] {
    if (ctl->parsed()) {
      action = [ctl_args] { return run_ctl(*ctl_args); };
    } else {
      action = [args] { return run_sim(*args); };
    }
  });
}

}  // namespace cellguard::cli
