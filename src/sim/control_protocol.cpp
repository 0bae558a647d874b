#include "sim/control_protocol.h"

#include <algorithm>
#include <cmath>

namespace cellguard::sim {
namespace {

using nlohmann::json;

std::string reply_error(const std::string& message) { return json{{"ok", false}, {"error", message}}.dump(); }

int depth_of(const json& value) {
  if (!value.is_structured()) return 0;
  int deepest = 0;
  for (const json& child : value) deepest = std::max(deepest, depth_of(child));
  return deepest + 1;
}

}  // namespace

Result<FaultCommand> fault_from_json(const json& request) {
  FaultCommand command;
  auto fault = request.find("fault");
  if (fault == request.end() || !fault->is_string() || fault->get_ref<const std::string&>().empty())
    return Error(ErrorCode::invalid_argument, "a fault request needs \"fault\":\"<kind>\"");
  command.kind = fault->get<std::string>();
  for (auto it = request.begin(); it != request.end(); ++it) {
    if (it.key() == "cmd" || it.key() == "fault") continue;
    if (it->is_boolean()) {
      command.numbers[it.key()] = it->get<bool>() ? 1.0 : 0.0;
    } else if (it->is_number()) {
      command.numbers[it.key()] = it->get<double>();
    } else {
      return Error(ErrorCode::invalid_argument, "parameter " + it.key() + " must be a number or a boolean");
    }
  }
  return command;
}

json status_json(const PackModel& pack, const CanopenModules& modules, const FaultDispatcher& faults) {
  json module_list = json::array();
  for (const ModuleState& m : pack.modules()) {
    const ModuleFaults* f = modules.faults(m.node_id);
    json cells = json::array();
    for (const CellState& cell : m.cells) cells.push_back(cell.populated ? cell.voltage_v : 0.0);
    module_list.push_back({{"id", m.node_id},
                           {"voltage_v", m.voltage_v()},
                           {"soc_pct", 100 * m.soc()},
                           {"min_cell_v", m.min_cell_v()},
                           {"max_cell_v", m.max_cell_v()},
                           {"cell_v", cells},
                           {"temperature_c", m.temperature_c},
                           {"max_temperature_c", m.max_temperature_c()},
                           {"status", m.status_bits()},
                           {"balancing", m.balancing_bits()},
                           {"charge_ah", m.charge_ah},
                           {"discharge_ah", m.discharge_ah},
                           {"silent", f && f->silent},
                           {"frozen", f && f->frozen},
                           {"garbage", f && f->garbage},
                           {"truncated", f && f->truncated}});
  }
  const ModuleCounters& c = modules.counters();
  const EnergyCounters& e = pack.energy();
  return {{"time_s", pack.time_s()},
          {"pack_voltage_v", pack.pack_voltage_v()},
          {"pack_current_a", pack.pack_current_a()},
          {"inverter_current_a", pack.inverter_current_a()},
          {"pack_soc_pct", 100 * pack.pack_soc()},
          {"dc_link_voltage_v", pack.dc_link_voltage_v()},
          {"positive_contactor", pack.positive_contactor()},
          {"negative_contactor", pack.negative_contactor()},
          {"precharge_relay", pack.precharge_relay()},
          {"pump", pack.pump_commanded()},
          {"fan", pack.fan_commanded()},
          {"pump_running", pack.pump_running()},
          {"pump_failed", pack.pump_failed()},
          {"coolant_c", pack.coolant_c()},
          {"coolant_pressure_bar", pack.coolant_pressure_bar()},
          {"ambient_c", pack.ambient_c()},
          {"insulation_fault", pack.insulation_fault()},
          {"bus_error_storm", faults.storm().active(pack.time_s())},
          {"energy_j",
           {{"terminal_charge", e.terminal_charge_j},
            {"terminal_discharge", e.terminal_discharge_j},
            {"joule_heat", e.joule_heat_j},
            {"balancing_heat", e.balancing_heat_j}}},
          {"can",
           {{"syncs", c.syncs},
            {"pdos_sent", c.pdos_sent},
            {"sdo_requests", c.sdo_requests},
            {"sdo_aborts", c.sdo_aborts},
            {"emergencies", c.emergencies}}},
          {"faults_applied", faults.history()},
          {"modules", module_list}};
}

void ControlHandler::add_status(std::string name, std::function<json()> provider) {
  status_providers_.emplace_back(std::move(name), std::move(provider));
}

std::string ControlHandler::handle(std::string_view line, double now_s) {
  if (line.size() > kMaxControlLineBytes) return reply_error("request longer than 4096 bytes");
  json request = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (request.is_discarded() || !request.is_object()) return reply_error("request is not a JSON object");
  if (depth_of(request) > kMaxControlDepth) return reply_error("request nested too deeply");
  auto cmd = request.find("cmd");
  if (cmd == request.end() || !cmd->is_string()) return reply_error("request needs \"cmd\"");
  const std::string& name = cmd->get_ref<const std::string&>();
  if (name == "fault") {
    Result<FaultCommand> command = fault_from_json(request);
    if (!command) return reply_error(command.error().message);
    if (Result<void> applied = faults_.apply(*command, now_s); !applied)
      return reply_error(applied.error().message);
    return json{{"ok", true}}.dump();
  }
  if (name == "status") {
    json status = status_json(pack_, modules_, faults_);
    for (const auto& [device, provider] : status_providers_) status[device] = provider();
    return json{{"ok", true}, {"status", std::move(status)}}.dump();
  }
  if (name == "faults") return json{{"ok", true}, {"faults", faults_.kinds()}}.dump();
  if (name == "drive") {
    for (auto it = request.begin(); it != request.end(); ++it) {
      const std::string& key = it.key();
      if (key == "cmd") continue;
      const bool is_flag = key == "contactors" || key == "precharge" || key == "pump" || key == "fan";
      if (is_flag && !it->is_boolean()) return reply_error(key + " must be true or false");
      if (key == "current_a" && (!it->is_number() || std::abs(it->get<double>()) > 1000))
        return reply_error("current_a must be a number within ±1000");
      if (!is_flag && key != "current_a") return reply_error("drive does not know " + key);
    }
    for (auto it = request.begin(); it != request.end(); ++it) {
      const std::string& key = it.key();
      if (key == "contactors") {
        pack_.set_positive_contactor(it->get<bool>());
        pack_.set_negative_contactor(it->get<bool>());
      } else if (key == "precharge") {
        pack_.set_precharge_relay(it->get<bool>());
      } else if (key == "pump") {
        pack_.set_pump(it->get<bool>());
      } else if (key == "fan") {
        pack_.set_fan(it->get<bool>());
      } else if (key == "current_a") {
        pack_.set_inverter_current_a(it->get<double>());
      }
    }
    return json{{"ok", true}}.dump();
  }
  return reply_error("unknown cmd '" + name + "' (fault, status, faults, drive)");
}

}  // namespace cellguard::sim
