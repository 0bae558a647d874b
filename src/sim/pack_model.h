// The simulated battery pack: the physics behind every device of `cellguard sim`.
//
// A PackModel is the rig's battery (shared/spec/seed-rig.md, "Hardware"): up to 15 modules in series
// (node ids 1..15, any subset present), each with 14 cell channels of which the first
// `populated_cells` hold a cell (an unpopulated channel reads 0 V, which the DBC encodes as raw 0,
// i.e. 2.2 V) and 7 temperature sensors. Per cell: state of charge, OCV(SOC) from a table, internal
// resistance, capacity, with a seeded cell-to-cell spread; terminal voltage = OCV - I*R.
// Per module: heat from I^2*R (and balancing bleed), exchange with a coolant loop whose conductance
// depends on the pump, the coolant's exchange with ambient air depending on the fan.
//
// Sign convention (seed-rig.md, "Sign convention"): positive current discharges the pack, negative
// current charges it.
//
// The model is pure: no I/O, no clock. Time passes only through step(dt_s). The devices act on it
// through setters (the inverter sets its current demand; the sensor board switches contactors,
// precharge relay, pump and fan) and read it through getters.
//
// Thread safety: none. The simulator owns one PackModel on its event-loop thread; devices that run
// blocking I/O on a worker thread post their reads and writes to that thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace cellguard::sim {

inline constexpr int kMaxModules = 15;         // node ids 1..15 (the rig's DBC has 15 BMU slots)
inline constexpr int kCellChannels = 14;       // Cell_1..14_Voltage per module
inline constexpr int kTemperatureSensors = 7;  // CMA_Temp1..7 per module

// One point of an open-circuit-voltage curve; a curve lists points by rising SOC (0..1).
struct OcvPoint {
  double soc = 0;        // 0..1
  double voltage_v = 0;  // open-circuit cell voltage at that SOC
};

// A generic NMC cell curve (3.0 V empty .. 4.2 V full).
std::vector<OcvPoint> default_nmc_ocv_curve();

struct PackConfig {
  std::vector<int> module_ids = {1, 2, 3, 4, 5, 6, 7, 8};  // the rig's sample log had 8 modules
  int populated_cells = 12;                                // per module (the rig's `cellVoltageNum`), 1..14
  std::vector<OcvPoint> ocv_curve = default_nmc_ocv_curve();
  double cell_capacity_ah = 64.0;
  double cell_resistance_ohm = 0.0012;
  double initial_soc = 0.78;  // cells ≈ 3.94 V, pack ≈ 378 V as in the rig's sample log
  // Seeded spread: each cell's capacity, resistance and initial SOC vary by up to ± this fraction.
  double capacity_spread = 0.02;
  double resistance_spread = 0.10;
  double soc_spread = 0.01;
  std::uint64_t seed = 1;
  double soh_pct = 98.0;

  // Thermal (lumped): one mass per module, one coolant loop, ambient air.
  double ambient_c = 22.0;
  double module_heat_capacity_j_per_k = 14000.0;   // ~12 cells of ~1 kg plus housing
  double coolant_heat_capacity_j_per_k = 40000.0;  // ~10 l of water/glycol
  double module_to_coolant_w_per_k_pump_on = 25.0;
  double module_to_coolant_w_per_k_pump_off = 2.0;   // stagnant coolant
  double module_to_ambient_w_per_k = 1.5;            // housing, always
  double coolant_to_ambient_w_per_k_fan_on = 400.0;  // radiator with fan
  double coolant_to_ambient_w_per_k_fan_off = 25.0;
  double coolant_pressure_bar_pump_on = 1.8;
  double coolant_pressure_bar_pump_off = 0.1;

  // Passive balancing: a cell more than `balancing_threshold_v` above its module's lowest cell
  // bleeds `balancing_current_a` through its resistor (heat into the module).
  bool balancing_enabled = true;
  double balancing_threshold_v = 0.015;
  double balancing_current_a = 0.1;

  // DC link (inverter side of the contactors): charges through the precharge resistor, follows the
  // pack when the main contactors close, decays when isolated.
  double precharge_time_constant_s = 1.5;
  double dc_link_decay_time_constant_s = 5.0;
};

struct CellState {
  double soc = 0;  // 0..1 (may leave the range under abuse; OCV is clamped to the table)
  double capacity_ah = 0;
  double resistance_ohm = 0;
  double voltage_v = 0;  // terminal voltage (OCV - I*R + injected drift); 0 if unpopulated
  double drift_v = 0;    // injected by a fault (cell drift), added to the terminal voltage
  bool populated = false;
  bool balancing = false;
};

// Module status bits, as the simulated BMU reports them in CMA_Status (pdo2). The rig's DBC leaves
// CMA_Status undescribed; these are the simulator's own, documented in data/cellguard-rig.dbc.
enum ModuleStatusBit : std::uint16_t {
  kStatusCellOverVoltage = 1u << 0,   // a cell ≥ 4.25 V
  kStatusCellUnderVoltage = 1u << 1,  // a cell ≤ 2.50 V
  kStatusOverTemperature = 1u << 2,   // a sensor ≥ 60 °C
  kStatusBalancing = 1u << 3,         // at least one cell bleeds
};

struct ModuleState {
  int node_id = 0;  // 1..15
  std::array<CellState, kCellChannels> cells{};
  std::array<double, kTemperatureSensors> sensor_offset_c{};  // fixed seeded sensor spread
  double temperature_c = 0;                                   // lumped module temperature
  double charge_ah = 0;  // Ah counters as the BMU reports them (Charge/Discharge_Ah_from_BMU)
  double discharge_ah = 0;
  double soh_pct = 100;
  // Injected over-temperature: rises the module temperature by rate until target (fault injection).
  double overheat_rate_c_per_s = 0;
  double overheat_target_c = 0;

  double voltage_v() const;   // sum of the populated cells' terminal voltages
  double soc() const;         // mean SOC of the populated cells, 0..1
  double min_cell_v() const;  // populated cells only
  double max_cell_v() const;
  double sensor_c(int sensor) const {
    return temperature_c + sensor_offset_c[static_cast<std::size_t>(sensor)];
  }
  double min_temperature_c() const;
  double max_temperature_c() const;
  std::uint16_t balancing_bits() const;  // bit i = channel i+1 bleeding
  std::uint16_t status_bits() const;     // ModuleStatusBit
};

// Energy bookkeeping since construction, for tests and the inverter's kWh counters.
struct EnergyCounters {
  double terminal_charge_j = 0;     // energy into the pack at its terminals while charging
  double terminal_discharge_j = 0;  // energy out of the pack at its terminals while discharging
  double joule_heat_j = 0;          // I^2*R heat generated in cells
  double balancing_heat_j = 0;      // heat of the balancing resistors
  double heat_to_ambient_j = 0;     // from modules and coolant to ambient air
};

class PackModel {
 public:
  explicit PackModel(PackConfig config);

  // Advances simulated time by dt_s (> 0; large steps are split internally to stay stable).
  void step(double dt_s);

  // --- inputs from the inverter device ---
  // Current the converter drives into the DC link: positive discharges, negative charges. It flows
  // only while the main contactors are closed (see pack_current_a()).
  void set_inverter_current_a(double current_a) { inverter_current_a_ = current_a; }
  double inverter_current_a() const { return inverter_current_a_; }

  // --- inputs from the sensor board ---
  void set_positive_contactor(bool closed) { positive_contactor_ = closed; }
  void set_negative_contactor(bool closed) { negative_contactor_ = closed; }
  void set_precharge_relay(bool closed) { precharge_relay_ = closed; }
  void set_pump(bool on) { pump_on_ = on; }
  void set_fan(bool on) { fan_on_ = on; }
  bool positive_contactor() const { return positive_contactor_; }
  bool negative_contactor() const { return negative_contactor_; }
  bool precharge_relay() const { return precharge_relay_; }
  bool pump_commanded() const { return pump_on_; }
  bool fan_commanded() const { return fan_on_; }
  // True if both main contactors are closed: the only state in which pack current flows.
  bool contactors_closed() const { return positive_contactor_ && negative_contactor_; }
  // True if the pump actually circulates coolant (commanded and not failed).
  bool pump_running() const { return pump_on_ && !pump_failed_; }

  // --- environment and faults ---
  void set_ambient_c(double ambient_c) { ambient_c_ = ambient_c; }
  void set_pump_failed(bool failed) { pump_failed_ = failed; }
  void set_insulation_fault(bool fault) { insulation_fault_ = fault; }
  // Cell drift: the cell's voltage moves by rate_v_per_s until it reaches target_v (then holds).
  // Returns false if the module is not present or the cell is not populated (1-based cell).
  bool drift_cell(int node_id, int cell, double rate_v_per_s, double target_v);
  // Module over-temperature: its temperature rises by rate until target_c, on top of the physics.
  bool overheat_module(int node_id, double rate_c_per_s, double target_c);
  // Removes cell drifts and over-temperature injections (temperatures then relax physically).
  void clear_faults();

  // --- outputs ---
  double time_s() const { return time_s_; }
  double pack_voltage_v() const;  // sum of module voltages, at the battery terminals
  double pack_current_a() const { return contactors_closed() ? inverter_current_a_ : 0.0; }
  double pack_power_w() const { return pack_voltage_v() * pack_current_a(); }  // > 0 discharging
  double pack_soc() const;                                                     // mean of modules, 0..1
  double dc_link_voltage_v() const { return dc_link_voltage_v_; }
  double ambient_c() const { return ambient_c_; }
  double coolant_c() const { return coolant_c_; }
  double coolant_pressure_bar() const;
  bool insulation_fault() const { return insulation_fault_; }
  bool pump_failed() const { return pump_failed_; }
  double max_module_temperature_c() const;

  const std::vector<ModuleState>& modules() const { return modules_; }
  // The module with this node id, or nullptr if it is not present.
  const ModuleState* module(int node_id) const;
  const PackConfig& config() const { return config_; }
  const EnergyCounters& energy() const { return energy_; }
  // Chemical energy stored in all cells now (∫OCV dQ from SOC 0), for conservation checks.
  double stored_energy_j() const;
  // Heat stored in modules and coolant relative to ambient at construction.
  double thermal_energy_j() const;

 private:
  void substep(double dt_s);
  void update_voltages();
  double ocv_v(double soc) const;
  double ocv_integral_v(double soc) const;  // ∫_0^soc OCV(s) ds
  ModuleState* find_module(int node_id);

  struct Drift {
    int node_id = 0;
    int cell = 0;  // 1-based
    double rate_v_per_s = 0;
    double target_v = 0;
  };

  PackConfig config_;
  std::vector<ModuleState> modules_;
  double time_s_ = 0;
  double inverter_current_a_ = 0;
  bool positive_contactor_ = false;
  bool negative_contactor_ = false;
  bool precharge_relay_ = false;
  bool pump_on_ = false;
  bool fan_on_ = false;
  bool pump_failed_ = false;
  bool insulation_fault_ = false;
  double ambient_c_ = 22;
  double initial_ambient_c_ = 22;
  double coolant_c_ = 22;
  double dc_link_voltage_v_ = 0;
  EnergyCounters energy_;
  std::vector<Drift> drifts_;
};

}  // namespace cellguard::sim
