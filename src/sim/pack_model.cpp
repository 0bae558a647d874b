#include "sim/pack_model.h"

#include <algorithm>
#include <cmath>
#include <random>

namespace cellguard::sim {
namespace {

constexpr double kSecondsPerHour = 3600.0;
constexpr double kMaxSubstepS = 1.0;  // thermal time constants are minutes; 1 s keeps Euler exact enough
// Module fault thresholds behind CMA_Status (see ModuleStatusBit).
constexpr double kStatusOverVoltageV = 4.25;
constexpr double kStatusUnderVoltageV = 2.50;
constexpr double kStatusOverTemperatureC = 60.0;

// Uniform in [-1, 1] from the raw engine bits, so a seed gives the same rig on every library.
double spread(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

}  // namespace

std::vector<OcvPoint> default_nmc_ocv_curve() {
  // A typical NMC/graphite curve at 25 °C (rest OCV, mid-life cell).
  return {{0.00, 3.000}, {0.05, 3.420}, {0.10, 3.510}, {0.20, 3.590}, {0.30, 3.640},
          {0.40, 3.690}, {0.50, 3.750}, {0.60, 3.820}, {0.70, 3.890}, {0.80, 3.960},
          {0.90, 4.060}, {0.95, 4.120}, {1.00, 4.200}};
}

double ModuleState::voltage_v() const {
  double sum_v = 0;
  for (const CellState& cell : cells) sum_v += cell.populated ? cell.voltage_v : 0.0;
  return sum_v;
}

double ModuleState::soc() const {
  double sum = 0;
  int count = 0;
  for (const CellState& cell : cells) {
    if (!cell.populated) continue;
    sum += cell.soc;
    ++count;
  }
  return count ? sum / count : 0.0;
}

double ModuleState::min_cell_v() const {
  double min_v = 1e9;
  for (const CellState& cell : cells)
    if (cell.populated) min_v = std::min(min_v, cell.voltage_v);
  return min_v == 1e9 ? 0.0 : min_v;
}

double ModuleState::max_cell_v() const {
  double max_v = 0;
  for (const CellState& cell : cells)
    if (cell.populated) max_v = std::max(max_v, cell.voltage_v);
  return max_v;
}

double ModuleState::min_temperature_c() const {
  double min_c = sensor_c(0);
  for (int i = 1; i < kTemperatureSensors; ++i) min_c = std::min(min_c, sensor_c(i));
  return min_c;
}

double ModuleState::max_temperature_c() const {
  double max_c = sensor_c(0);
  for (int i = 1; i < kTemperatureSensors; ++i) max_c = std::max(max_c, sensor_c(i));
  return max_c;
}

std::uint16_t ModuleState::balancing_bits() const {
  std::uint16_t bits = 0;
  for (int i = 0; i < kCellChannels; ++i)
    if (cells[static_cast<std::size_t>(i)].balancing) bits = static_cast<std::uint16_t>(bits | (1u << i));
  return bits;
}

std::uint16_t ModuleState::status_bits() const {
  std::uint16_t bits = 0;
  if (max_cell_v() >= kStatusOverVoltageV) bits |= kStatusCellOverVoltage;
  if (min_cell_v() <= kStatusUnderVoltageV) bits |= kStatusCellUnderVoltage;
  if (max_temperature_c() >= kStatusOverTemperatureC) bits |= kStatusOverTemperature;
  if (balancing_bits() != 0) bits |= kStatusBalancing;
  return bits;
}

PackModel::PackModel(PackConfig config) : config_(std::move(config)) {
  if (config_.ocv_curve.size() < 2) config_.ocv_curve = default_nmc_ocv_curve();
  config_.populated_cells = std::clamp(config_.populated_cells, 1, kCellChannels);
  ambient_c_ = initial_ambient_c_ = coolant_c_ = config_.ambient_c;
  std::mt19937_64 rng(config_.seed);
  std::vector<int> ids = config_.module_ids;
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  for (int id : ids) {
    if (id < 1 || id > kMaxModules) continue;
    ModuleState module;
    module.node_id = id;
    module.temperature_c = config_.ambient_c;
    module.soh_pct = config_.soh_pct;
    for (int i = 0; i < kCellChannels; ++i) {
      CellState& cell = module.cells[static_cast<std::size_t>(i)];
      cell.populated = i < config_.populated_cells;
      cell.capacity_ah = config_.cell_capacity_ah * (1.0 + config_.capacity_spread * spread(rng));
      cell.resistance_ohm = config_.cell_resistance_ohm * (1.0 + config_.resistance_spread * spread(rng));
      cell.soc = std::clamp(config_.initial_soc + config_.soc_spread * spread(rng), 0.0, 1.0);
    }
    for (double& offset_c : module.sensor_offset_c) offset_c = 0.6 * spread(rng);
    modules_.push_back(module);
  }
  update_voltages();
}

double PackModel::ocv_v(double soc) const {
  const std::vector<OcvPoint>& curve = config_.ocv_curve;
  if (soc <= curve.front().soc) return curve.front().voltage_v;
  if (soc >= curve.back().soc) return curve.back().voltage_v;
  auto upper = std::upper_bound(curve.begin(), curve.end(), soc,
                                [](double s, const OcvPoint& p) { return s < p.soc; });
  const OcvPoint& b = *upper;
  const OcvPoint& a = *(upper - 1);
  return a.voltage_v + (b.voltage_v - a.voltage_v) * (soc - a.soc) / (b.soc - a.soc);
}

double PackModel::ocv_integral_v(double soc) const {
  // Piecewise-linear OCV integrates exactly by trapezoids; outside the table it is held constant.
  const std::vector<OcvPoint>& curve = config_.ocv_curve;
  double sum = 0;
  double previous_soc = 0;
  double previous_v = ocv_v(0);
  auto add_to = [&](double s) {
    double v = ocv_v(s);
    sum += 0.5 * (previous_v + v) * (s - previous_soc);
    previous_soc = s;
    previous_v = v;
  };
  if (soc < 0) return soc * curve.front().voltage_v;
  for (const OcvPoint& point : curve) {
    if (point.soc <= 0) continue;
    if (point.soc >= soc) break;
    add_to(point.soc);
  }
  add_to(soc);
  return sum;
}

void PackModel::update_voltages() {
  const double current_a = pack_current_a();
  for (ModuleState& module : modules_) {
    for (CellState& cell : module.cells) {
      cell.voltage_v =
          cell.populated ? ocv_v(cell.soc) - current_a * cell.resistance_ohm + cell.drift_v : 0.0;
    }
  }
}

void PackModel::step(double dt_s) {
  if (!(dt_s > 0)) return;
  const int substeps = static_cast<int>(std::ceil(dt_s / kMaxSubstepS));
  const double sub_dt_s = dt_s / substeps;
  for (int i = 0; i < substeps; ++i) substep(sub_dt_s);
}

void PackModel::substep(double dt_s) {
  const double current_a = pack_current_a();
  const double module_to_coolant_w_per_k =
      pump_running() ? config_.module_to_coolant_w_per_k_pump_on : config_.module_to_coolant_w_per_k_pump_off;
  const double coolant_to_ambient_w_per_k =
      fan_on_ ? config_.coolant_to_ambient_w_per_k_fan_on : config_.coolant_to_ambient_w_per_k_fan_off;
  double heat_into_coolant_w = 0;
  double terminal_power_w = 0;  // > 0: delivered by the pack (discharging)

  for (ModuleState& module : modules_) {
    // Passive balancing decision on the previous voltages (a BMU decides on what it measured).
    const double min_v = module.min_cell_v();
    double module_heat_w = 0;
    for (CellState& cell : module.cells) {
      if (!cell.populated) continue;
      cell.balancing = config_.balancing_enabled && cell.voltage_v - min_v > config_.balancing_threshold_v;
      const double ocv = ocv_v(cell.soc);
      const double bleed_a = cell.balancing ? config_.balancing_current_a : 0.0;
      // seed-rig.md: terminal V = OCV - I*R, positive I discharging.
      terminal_power_w += current_a * (ocv - current_a * cell.resistance_ohm);
      const double joule_w = current_a * current_a * cell.resistance_ohm;
      const double bleed_w = ocv * bleed_a;
      module_heat_w += joule_w + bleed_w;
      energy_.joule_heat_j += joule_w * dt_s;
      energy_.balancing_heat_j += bleed_w * dt_s;
      cell.soc -= (current_a + bleed_a) * dt_s / (cell.capacity_ah * kSecondsPerHour);
    }
    const double ah = std::abs(current_a) * dt_s / kSecondsPerHour;
    (current_a < 0 ? module.charge_ah : module.discharge_ah) += ah;

    const double to_coolant_w = module_to_coolant_w_per_k * (module.temperature_c - coolant_c_);
    const double to_ambient_w = config_.module_to_ambient_w_per_k * (module.temperature_c - ambient_c_);
    heat_into_coolant_w += to_coolant_w;
    energy_.heat_to_ambient_j += to_ambient_w * dt_s;
    module.temperature_c +=
        (module_heat_w - to_coolant_w - to_ambient_w) * dt_s / config_.module_heat_capacity_j_per_k;
    if (module.overheat_rate_c_per_s > 0 && module.temperature_c < module.overheat_target_c) {
      module.temperature_c =
          std::min(module.overheat_target_c, module.temperature_c + module.overheat_rate_c_per_s * dt_s);
    }
  }
  const double coolant_to_ambient_w = coolant_to_ambient_w_per_k * (coolant_c_ - ambient_c_);
  energy_.heat_to_ambient_j += coolant_to_ambient_w * dt_s;
  coolant_c_ += (heat_into_coolant_w - coolant_to_ambient_w) * dt_s / config_.coolant_heat_capacity_j_per_k;

  if (terminal_power_w >= 0) {
    energy_.terminal_discharge_j += terminal_power_w * dt_s;
  } else {
    energy_.terminal_charge_j -= terminal_power_w * dt_s;
  }

  // Injected cell drifts move toward their target (fault injection, see drift_cell()).
  for (auto& drift : drifts_) {
    ModuleState* module = find_module(drift.node_id);
    if (module == nullptr) continue;
    CellState& cell = module->cells[static_cast<std::size_t>(drift.cell - 1)];
    const double undrifted_v = cell.voltage_v - cell.drift_v;
    const double step_v = drift.rate_v_per_s * dt_s;
    if (drift.rate_v_per_s > 0) {
      if (undrifted_v + cell.drift_v < drift.target_v)
        cell.drift_v = std::min(cell.drift_v + step_v, drift.target_v - undrifted_v);
    } else if (undrifted_v + cell.drift_v > drift.target_v) {
      cell.drift_v = std::max(cell.drift_v + step_v, drift.target_v - undrifted_v);
    }
  }

  // DC link: follows the pack through the contactors, charges through the precharge resistor.
  const double pack_v = pack_voltage_v();
  if (contactors_closed()) {
    dc_link_voltage_v_ = pack_v;
  } else if (precharge_relay_ && negative_contactor_) {
    dc_link_voltage_v_ +=
        (pack_v - dc_link_voltage_v_) * (1.0 - std::exp(-dt_s / config_.precharge_time_constant_s));
  } else {
    dc_link_voltage_v_ *= std::exp(-dt_s / config_.dc_link_decay_time_constant_s);
  }

  time_s_ += dt_s;
  update_voltages();
}

ModuleState* PackModel::find_module(int node_id) {
  for (ModuleState& module : modules_)
    if (module.node_id == node_id) return &module;
  return nullptr;
}

const ModuleState* PackModel::module(int node_id) const {
  for (const ModuleState& module : modules_)
    if (module.node_id == node_id) return &module;
  return nullptr;
}

bool PackModel::drift_cell(int node_id, int cell, double rate_v_per_s, double target_v) {
  ModuleState* module = find_module(node_id);
  if (module == nullptr || cell < 1 || cell > kCellChannels ||
      !module->cells[static_cast<std::size_t>(cell - 1)].populated)
    return false;
  std::erase_if(drifts_, [&](const Drift& d) { return d.node_id == node_id && d.cell == cell; });
  drifts_.push_back({node_id, cell, rate_v_per_s, target_v});
  return true;
}

bool PackModel::overheat_module(int node_id, double rate_c_per_s, double target_c) {
  ModuleState* module = find_module(node_id);
  if (module == nullptr) return false;
  module->overheat_rate_c_per_s = rate_c_per_s;
  module->overheat_target_c = target_c;
  return true;
}

void PackModel::clear_faults() {
  drifts_.clear();
  for (ModuleState& module : modules_) {
    module.overheat_rate_c_per_s = 0;
    for (CellState& cell : module.cells) cell.drift_v = 0;
  }
  pump_failed_ = false;
  insulation_fault_ = false;
  update_voltages();
}

double PackModel::pack_voltage_v() const {
  double sum_v = 0;
  for (const ModuleState& module : modules_) sum_v += module.voltage_v();
  return sum_v;
}

double PackModel::pack_soc() const {
  if (modules_.empty()) return 0;
  double sum = 0;
  for (const ModuleState& module : modules_) sum += module.soc();
  return sum / static_cast<double>(modules_.size());
}

double PackModel::coolant_pressure_bar() const {
  return pump_running() ? config_.coolant_pressure_bar_pump_on : config_.coolant_pressure_bar_pump_off;
}

double PackModel::max_module_temperature_c() const {
  double max_c = ambient_c_;
  for (const ModuleState& module : modules_) max_c = std::max(max_c, module.temperature_c);
  return max_c;
}

double PackModel::stored_energy_j() const {
  double sum_j = 0;
  for (const ModuleState& module : modules_)
    for (const CellState& cell : module.cells)
      if (cell.populated) sum_j += cell.capacity_ah * kSecondsPerHour * ocv_integral_v(cell.soc);
  return sum_j;
}

double PackModel::thermal_energy_j() const {
  double sum_j = config_.coolant_heat_capacity_j_per_k * (coolant_c_ - initial_ambient_c_);
  for (const ModuleState& module : modules_)
    sum_j += config_.module_heat_capacity_j_per_k * (module.temperature_c - initial_ambient_c_);
  return sum_j;
}

}  // namespace cellguard::sim
