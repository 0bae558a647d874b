// The safety supervisor: pure logic that turns inputs and time into decisions.
//
// Issue 4 item 6 (plus the staleness rules of item 3, the board rule of item 4 and the inverter rule
// of item 5). It replaces the rig's once-per-loop checks (shared/spec/seed-rig.md, "Safety logic of
// the original") and fixes its flaws 1 (checked on every input, not once per loop), 2 (every cell is
// checked; a low cell is an under-voltage cause), 3 (a silent module becomes a stale cause instead of
// vanishing) and 7 (contactors open when the current is low, or after a maximum delay, not after a
// fixed 2 s).
//
// No I/O, no clock, no threads: every call takes the time as a value (a MonoTime, the caller's
// monotonic clock; configured intervals are Durations) and returns the decisions it causes. The caller
// performs them (inverter mode, relays, pump and fan) and should call tick() no later than next_deadline_ns()
// so that time-based rules (debounce expiry, staleness, board silence, contactor delay, precharge timeout)
// fire on time. Times that go backwards are clamped to the latest time seen.
//
// Inputs:
//  - samples (channel, time, value) for registered channels; each channel has a Quantity whose rule
//    (RuleConfig) gives warning/dangerous thresholds high and low, hysteresis and debounce;
//  - events: insulation fault on/off, module PDO seen, SYNC sent, board line valid, inverter link
//    result, operator reset, start request, stop request, tick.
//
// Rules (comparisons >= and <= as in the rig's table): each channel has four debounced conditions
// (warning high, dangerous high, warning low, dangerous low). A condition becomes true when its
// threshold is reached and stays reached for its debounce time (dangerous debounce may be 0); it
// clears at once when the value leaves the hysteresis band (high: value < threshold - hysteresis;
// low: value > threshold + hysteresis). The channel's level is the worst true condition.
//
// States: NORMAL and WARNING follow the worst active cause. The first dangerous cause gives
// DANGEROUS: inverter off at once, pump and fan on if hot, contactors open as soon as |pack current|
// is below the threshold (or at once if it already is), else after the maximum delay as an
// emergency. Once the contactors are commanded open the state is SAFE. SAFE is latched: only an
// operator reset leaves it, and only when no dangerous cause remains (warnings do not block it); a
// reset while causes remain is refused with the first remaining cause as the reason. After a reset
// the contactors stay open until a new start request runs the precharge sequence.
//
// Pump and fan (both on one output, as on the rig) are on while any module maximum temperature or
// board temperature is at or above hot_c, and off once all are at or below cooled_c; this holds in
// every state, SAFE included (the rig switched them off in its final state, possibly while hot).
// Voltage warnings (cell, module, inverter battery voltage) nudge the inverter: low -> small charge
// setpoint, high -> small discharge setpoint, both -> hold at 0, none left -> nudge end.
//
// Precharge (start request): close main negative and precharge relays; once a DC-link reading taken
// during the attempt is within match_tolerance_v of the battery voltage (the inverter's remote
// battery voltage channel), close main positive and open the precharge relay. No match within
// timeout_ns: open both, retry after retry_delay_ns, at most max_attempts, then lockout (start
// refused) until an operator reset. A dangerous cause aborts the sequence (contactors open).
//
// Board fault (issue 13 item 4): cellguard's board firmware opened the relays by itself (heartbeat
// timeout, ground-fault input, a reset), or an output does not read back as commanded after the
// re-sends. Dangerous at once (DANGEROUS, then SAFE as for any dangerous cause, with that cause);
// it clears when the edge reports the outputs verified again (read-back agrees), SAFE stays latched.
//
// Precharge and a slow board: settle_ns is how long the board may take to apply a relay command
// (the rig's sketch applies commands once a second). A DC-link reading counts for the match only
// when taken at least settle_ns after the step was commanded, and the timeout starts after it.
//
// Stop (issue 13 item 3): a stop request (SIGTERM, SIGINT, `edge stop`, a configuration error at
// reload) is a dangerous cause like any other, so a stop runs the trip's sequence with the trip's
// timers: inverter off at once, contactors open once |pack current| is below the threshold or after
// the maximum delay, pump and fan as the temperatures say. It never clears (the process is leaving);
// stop_complete() says when the caller may exit. Only if no relay was ever commanded closed (nothing
// flows through open contactors) does the stop open them at once instead of waiting for a current.
//
// Time-based rules count from the first input of any kind: the board watchdog (board_expected) is
// armed by it, so a board that never sends a line is dangerous board_timeout_ns after start-up.
// The pack current used for opening the contactors is the largest |value| of the latest samples of
// all pack_current channels; if any has no sample yet it is unknown and only the maximum delay opens.
//
// Thread safety: none; one Supervisor is owned and driven by one thread (the edge's event loop).
// Allocation: after create() and channel registration, sample/event/tick calls do not allocate
// (fixed tables indexed by channel and module id; the decision buffer is preallocated). status()
// and describe() allocate; they are for the operator interface.
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/time.h"

namespace cellguard::safety {

using ChannelId = std::uint32_t;

inline constexpr MonoTime kNever = MonoTime::max();
inline constexpr ChannelId kNoChannel = std::numeric_limits<ChannelId>::max();
inline constexpr int kMaxModuleId = 127;  // CANopen node ids 1..127

// What a channel measures; selects its rule in SupervisorConfig::rules.
enum class Quantity : std::uint8_t {
  cell_voltage,              // V, BMUnn.Cell_k_Voltage
  module_voltage,            // V, BMUnn.CMA_Voltage
  module_max_temperature,    // °C, BMUnn.CMA_Max_Temp (also drives pump and fan)
  module_min_temperature,    // °C, BMUnn.CMA_Min_Temp
  inverter_battery_voltage,  // V, inverter dc_input_volt (register 30263)
  board_temperature,         // °C, board Temp1/Temp2 (also drives pump and fan)
  board_pressure,            // bar (configurable unit), board Press
  pack_current,              // A, negative charges; used for contactor opening
  dc_link_voltage,           // V, inverter DC link (register 30265); used for precharge
};
inline constexpr std::size_t kQuantityCount = 9;
std::string_view to_string(Quantity quantity);

enum class State : std::uint8_t { normal, warning, dangerous, safe };
std::string_view to_string(State state);

enum class Level : std::uint8_t { normal, warning, dangerous };
std::string_view to_string(Level level);

// Limits of one quantity. An absent threshold disables that side.
struct RuleConfig {
  std::optional<double> warning_high;
  std::optional<double> dangerous_high;
  std::optional<double> warning_low;
  std::optional<double> dangerous_low;
  double hysteresis = 0;  // same unit as the quantity; applied when clearing
  Duration warning_debounce_ns{0};
  Duration dangerous_debounce_ns{0};
};

// Which relay (board output number, rig: relay1/2/3) has which role in the precharge circuit.
struct RelayRoles {
  int precharge = 3;      // rig: "precharge relay" (relay3)
  int main_positive = 1;  // rig: relay1 (assumed; the rig document does not name the poles)
  int main_negative = 2;  // rig: relay2 (assumed)
};

struct PrechargeConfig {
  RelayRoles relays;
  double match_tolerance_v = 10;                   // DC link must be within this of the battery voltage
  Duration timeout_ns = std::chrono::seconds(10);  // rig waited 10 s per step
  Duration retry_delay_ns = std::chrono::seconds(5);
  int max_attempts = 3;   // then lockout until an operator reset
  Duration settle_ns{0};  // the board applies a relay command within this (rig sketch: ~2 cycles)
};

struct SupervisorConfig {
  std::array<RuleConfig, kQuantityCount> rules;  // indexed by Quantity
  int expected_module_count = 15;
  int stale_sync_cycles = 3;       // item 3: missing PDOs for 3 SYNC cycles -> warning
  int dangerous_sync_cycles = 10;  // item 3: still missing after 10 cycles ...
  Duration dangerous_silence_ns = std::chrono::seconds(1);  // ... or 1 s -> dangerous
  Duration board_timeout_ns = std::chrono::seconds(3);      // item 4: no valid line for 3 s -> dangerous
  bool board_expected = true;
  int inverter_failure_limit = 3;  // item 5: N consecutive link failures -> dangerous
  // Issue 12 item 4: freshness of the inverter by the age of its last valid answer of each kind,
  // counted from the first input like the board watchdog. Off when no inverter is configured.
  bool inverter_expected = false;
  Duration inverter_readings_timeout_ns =
      std::chrono::seconds(2);  // no valid poll reading for this -> dangerous
  Duration inverter_heartbeat_timeout_ns =
      std::chrono::seconds(2);          // no acknowledged heartbeat for this -> dangerous
  double contactor_open_current_a = 5;  // |current| below this: open at once
  Duration contactor_max_delay_ns = std::chrono::seconds(2);  // never later than this after DANGEROUS
  // A current sample older than this counts as unknown for the opening: a stale 0 A (a silent
  // inverter or module) never lets the contactors open under load; they wait for the maximum delay.
  Duration current_max_age_ns = std::chrono::seconds(1);
  double hot_c = 30;           // pump and fan on at >= (rig CMA_Temp_Warning)
  double cooled_c = 29;        // off again at <= (rig CMA_Temp_security)
  double nudge_current_a = 2;  // rig "currentVal": small setpoint for the warning nudges
  PrechargeConfig precharge;

  RuleConfig& rule(Quantity q) { return rules[static_cast<std::size_t>(q)]; }
  const RuleConfig& rule(Quantity q) const { return rules[static_cast<std::size_t>(q)]; }
};

// The rig's limits (seed client-config.properties.json, spec limits table). Board temperature and
// pressure and pack current have no limits in the rig; they are left disabled here.
SupervisorConfig rig_defaults();

// A setting of SupervisorConfig, so that a configuration problem names the setting it concerns
// (the edge maps each to its key in the file). The rule settings (warning_high .. dangerous_debounce_ns)
// are those of the rule of ConfigProblem::quantity.
enum class ConfigField : std::uint8_t {
  warning_high,
  dangerous_high,
  warning_low,
  dangerous_low,
  hysteresis,
  warning_debounce_ns,
  dangerous_debounce_ns,
  expected_module_count,
  stale_sync_cycles,
  dangerous_sync_cycles,
  dangerous_silence_ns,
  board_timeout_ns,
  inverter_failure_limit,
  inverter_readings_timeout_ns,
  inverter_heartbeat_timeout_ns,
  contactor_open_current_a,
  contactor_max_delay_ns,
  hot_c,
  cooled_c,
  nudge_current_a,
  precharge_relay,      // precharge.relays.precharge
  main_positive_relay,  // precharge.relays.main_positive
  main_negative_relay,  // precharge.relays.main_negative
  match_tolerance_v,    // precharge.*
  precharge_timeout_ns,
  retry_delay_ns,
  max_attempts,
  settle_ns,
};
// The setting's name in SupervisorConfig: "warning_high", "stale_sync_cycles", "precharge.timeout_ns".
std::string_view to_string(ConfigField field);
// A setting of one quantity's rule (ConfigProblem::quantity says which).
bool is_rule_field(ConfigField field);

// One problem of a configuration, at the setting it concerns.
struct ConfigProblem {
  ConfigField field = ConfigField::expected_module_count;
  Quantity quantity = Quantity::cell_voltage;  // rule fields only: whose rule
  // For people, without the setting's own name: "4.3 is not inside the dangerous limit 4.2 (...)".
  std::string message;
};
// "cell_voltage.warning_high: 4.3 is not inside ...", "cooled_c: must be below hot_c (30)".
std::string to_string(const ConfigProblem& problem);

// How messages name the other settings they refer to ("must be below hot_c"); a caller with its own
// names (the edge's keys) passes its own. nullptr: to_string(ConfigField).
using ConfigFieldNames = std::string (*)(ConfigField field);

// Checks a configuration and returns every problem (empty: valid): warning inside dangerous,
// hysteresis non-negative and smaller than the gap between warning and dangerous and than the normal
// band, debounce non-negative, counts positive, timeouts positive, cooled below hot, three different
// precharge relays.
std::vector<ConfigProblem> validate(const SupervisorConfig& config, ConfigFieldNames names = nullptr);

// A registered channel.
struct ChannelSpec {
  std::string name;  // e.g. "BMU03.Cell_5_Voltage", "board.Temp1"
  Quantity quantity = Quantity::cell_voltage;
  int module_id = 0;       // 1..127 for module channels, 0 otherwise
  std::string label = {};  // for people: "cell 5 of module 3", "board temperature 1" (empty: the name)
};

// Why a cause, transition or action exists.
enum class RuleKind : std::uint8_t {
  none,
  limit_high,          // a channel at or above a high threshold
  limit_low,           // a channel at or below a low threshold (under-voltage for voltages)
  module_stale,        // no PDO for stale_sync_cycles (warning) / dangerous cycles or silence
  module_count,        // fewer modules than expected (start refused)
  board_silent,        // no valid board line for board_timeout_ns
  inverter_link,       // inverter_failure_limit consecutive link failures
  inverter_stale,      // no valid inverter reading for inverter_readings_timeout_ns (measured: age s)
  inverter_heartbeat,  // no acknowledged heartbeat for inverter_heartbeat_timeout_ns (measured: age s)
  insulation_fault,    // insulation monitor alarm
  hot,                 // a temperature at or above hot_c (pump and fan)
  cooled,              // every temperature at or below cooled_c
  contactor_current,   // |pack current| below the threshold
  contactor_delay,     // maximum delay reached with current still high or unknown
  precharge,           // precharge sequence step, match, timeout or lockout
  board_fault,         // the board opened the relays by itself, or an output does not follow (BoardFault)
  operator_request,    // reset or start requested by the operator
  state,               // a state refuses the request (e.g. start while SAFE)
  stop_request,        // the process is stopping (Reason::detail: StopOrigin)
};
std::string_view to_string(RuleKind rule);

// Who asked for a stop (Reason::detail of a stop_request).
enum class StopOrigin : std::uint8_t {
  terminate_signal = 1,  // SIGTERM
  interrupt_signal,      // SIGINT (Ctrl-C)
  operator_command,      // `cellguard edge stop`
  configuration_error,   // SIGHUP reload found errors in the configuration
  duration_elapsed,      // --duration
};
std::string_view to_string(StopOrigin origin);

// Which step of the precharge sequence a precharge reason describes (Reason::detail).
enum class PrechargeStep : std::uint8_t {
  none,
  attempt,     // an attempt started: measured = attempt, threshold = max_attempts
  matched,     // measured = DC link V, threshold = battery V
  timed_out,   // measured = DC link V (NaN: unknown), threshold = battery V
  locked_out,  // measured = attempts, threshold = max_attempts
};

// Built with designated initialisers (Reason{.rule = ..., .level = ...}); a rule sets only the fields
// it has, the others keep these defaults (which texts and events ignore for that rule).
struct Reason {
  RuleKind rule = RuleKind::none;
  Level level = Level::normal;                 // level of the cause (for limits and staleness)
  Quantity quantity = Quantity::cell_voltage;  // limit, hot, cooled, contactor and precharge rules only
  ChannelId channel = kNoChannel;              // limit, hot and cooled rules only
  int module_id = 0;                           // module rules and module channels only
  double measured = 0;                         // value, missed cycles, failure count, module count, ...
  double threshold = 0;
  MonoTime since_ns{};  // when the condition started (first sample beyond the threshold)
  std::uint8_t detail =
      0;  // stop_request: StopOrigin; precharge: PrechargeStep; module_stale: 1 = seconds rule
};

// What the board did by itself (cellguard's firmware), or an output that does not follow.
enum class BoardFault : std::uint8_t {
  none,               // the outputs read back as commanded again
  heartbeat_timeout,  // its fail-safe opened the relays: the edge's heartbeats stopped
  ground_fault,       // its fail-safe opened the relays: the ground-fault input
  watchdog_reset,     // its watchdog reset it: every output low
  reset,              // it reset otherwise (power, reset pin, brown-out): every output low
  output_mismatch,    // an output still reads back wrong after the re-sends
};
// For people: "board opened the relays: heartbeat timeout".
std::string_view to_string(BoardFault fault);

// A wall-clock reading taken together with a monotonic one (by the caller, the I/O shell), so texts
// for people show the supervisor's monotonic times as wall-clock times. mono_ns is also "now" for
// durations in texts ("silent for 1.0 s").
struct ClockPair {
  MonoTime mono_ns{};
  WallTime wall_ns{};
  WallTime to_wall(MonoTime mono) const { return wall_ns + (mono - mono_ns); }
};

// "2026-12-07 01:36:42" (UTC), the wall-clock time in texts for people.
std::string wall_text(WallTime wall_ns);

enum class DecisionKind : std::uint8_t {
  state_changed,             // from -> to
  inverter_off,              // mode off (register K_op_mode = 0)
  inverter_nudge_charge,     // small charge setpoint (setpoint_a < 0)
  inverter_nudge_discharge,  // small discharge setpoint (setpoint_a > 0)
  inverter_hold,             // warnings in both directions: setpoint 0
  inverter_nudge_end,        // no voltage warning left: the schedule resumes
  contactors_open,           // open main positive, main negative and precharge relays
  cooling_on,                // pump and fan on
  cooling_off,               // pump and fan off
  relay_set,                 // one relay of the precharge circuit (relay, role, closed)
  precharge_complete,        // main contactors closed, DC link matched
  precharge_retry,           // attempt failed; next one after retry_delay_ns
  precharge_lockout,         // max_attempts failed; start refused until reset
  start_refused,             // start request refused (reason says why)
  reset_accepted,
  reset_refused,
  module_joined,
};
std::string_view to_string(DecisionKind kind);

enum class RelayRole : std::uint8_t { precharge, main_positive, main_negative };
std::string_view to_string(RelayRole role);

struct Decision {
  DecisionKind kind = DecisionKind::state_changed;
  MonoTime time_ns{};
  Reason reason;
  State from = State::normal;             // state_changed
  State to = State::normal;               // state_changed
  double setpoint_a = 0;                  // nudges
  bool emergency = false;                 // contactors_open after the maximum delay
  RelayRole role = RelayRole::precharge;  // relay_set
  int relay = 0;                          // relay_set: board relay number
  bool closed = false;                    // relay_set
};

// Decisions of one call. Valid until the next call on the same Supervisor.
using Decisions = std::span<const Decision>;

enum class PrechargePhase : std::uint8_t { idle, precharging, waiting_retry, running, locked_out };
std::string_view to_string(PrechargePhase phase);

struct ModuleStatus {
  int module_id = 0;
  MonoTime last_seen_ns{};
  int missed_sync_cycles = 0;
  Level level = Level::normal;
};

// A snapshot for the operator interface (`cellguard edge status`).
struct Status {
  State state = State::normal;
  MonoTime state_since_ns{};
  Reason state_reason;
  std::vector<Reason> causes;  // every active warning and dangerous cause
  std::vector<ModuleStatus> modules;
  int expected_module_count = 0;
  bool cooling_on = false;
  bool contactors_closed = false;
  PrechargePhase precharge = PrechargePhase::idle;
  int precharge_attempts = 0;
  int inverter_consecutive_failures = 0;
  MonoTime inverter_last_reading_ns{};    // when inverter_expected: last valid reading (or the first input)
  MonoTime inverter_last_heartbeat_ns{};  // ... last acknowledged heartbeat (or the first input)
  bool inverter_readings_stale = false;   // older than inverter_readings_timeout_ns
};

class Supervisor {
 public:
  // Validates the configuration and preallocates the decision buffer.
  static Result<Supervisor> create(SupervisorConfig config);

  // Setup: registers a channel; ids are dense from 0. Fails on a module id outside 0..127 or a
  // module quantity without a module id.
  Result<ChannelId> add_channel(ChannelSpec spec);

  // Hot path. A sample for an unknown channel or a non-finite value is refused (no decisions).
  Result<Decisions> on_sample(ChannelId id, MonoTime time_ns, double value);

  Decisions on_insulation_fault(bool active, MonoTime time_ns);
  // A PDO of module `module_id` (CANopen node id 1..127; other ids are ignored). An id not seen
  // before joins (module_joined decision). The module's staleness counts from its last PDO.
  Decisions on_module_pdo(int module_id, MonoTime time_ns);
  // A SYNC went out: every known module that has not answered since the previous SYNC has missed a
  // cycle (item 3: 3 missed cycles -> stale warning, 10 missed cycles or 1 s of silence -> dangerous).
  Decisions on_sync_sent(MonoTime time_ns);
  Decisions on_board_line_valid(MonoTime time_ns);
  Decisions on_inverter_link(bool ok, MonoTime time_ns);
  // A valid poll reading (whole block, right byte count) / an acknowledged heartbeat write arrived.
  Decisions on_inverter_reading(MonoTime time_ns);
  Decisions on_inverter_heartbeat(MonoTime time_ns);
  // Board fault: any fault is dangerous at once (reason.measured = the BoardFault); none clears it.
  Decisions on_board_fault(BoardFault fault, MonoTime time_ns);
  Decisions on_operator_reset(MonoTime time_ns);
  // Start charging/discharging: refused (with the reason) when fewer modules than expected are
  // known, a dangerous cause is active, the state is DANGEROUS/SAFE or precharge is locked out;
  // otherwise runs the precharge sequence.
  Decisions on_start_request(MonoTime time_ns);
  // The process is stopping: the trip's sequence with a stop_request cause (see "Stop" above).
  // Repeated requests change nothing.
  Decisions on_stop_request(StopOrigin origin, MonoTime time_ns);
  // A stop was requested and the contactors are commanded open (state SAFE): the caller may leave.
  bool stop_complete() const { return stop_.level == Level::dangerous && state_ == State::safe; }
  bool stop_requested() const { return stop_.level == Level::dangerous; }
  Decisions tick(MonoTime time_ns);

  // The earliest time at which tick() may decide something (kNever if nothing is pending).
  MonoTime next_deadline_ns() const;

  // The non-limit rules (safety.cpp, one table), in the order they are evaluated and their causes
  // listed; for tests and documentation.
  struct RuleSummary {
    std::array<RuleKind, 2> kinds{};  // the kinds of its causes or decisions (none: unused)
    bool timed = false;               // time alone can trigger it (tick() at next_deadline_ns())
    bool has_cause = false;           // it keeps an active cause (status, events); else it only acts
  };
  static std::vector<RuleSummary> rule_table();

  State state() const { return state_; }
  std::vector<Reason> active_causes() const;
  // Changes whenever a cause appears, clears or changes level: the caller compares it to find out
  // cheaply whether active_causes() changed (for "limit" events) without calling it every time.
  std::uint64_t causes_version() const { return causes_version_; }
  Status status() const;
  const ChannelSpec& channel(ChannelId id) const { return channels_[id].spec; }
  std::size_t channel_count() const { return channels_.size(); }
  // One line for people, with units, names and wall-clock times:
  //   "cell 5 of module 3: 4.21 V >= 4.20 V (dangerous) since 2026-12-07 01:36:42"
  //   "module 6 silent for 1.0 s (10 SYNC cycles, dangerous) since 2026-12-07 01:36:41"
  // `now` converts the monotonic times and is "now" for durations.
  std::string describe(const Reason& reason, const ClockPair& now) const;
  // A decision with its reason: "relay 3 (precharge) opened: precharge reached 352.1 V of 360.0 V (98 %)".
  std::string describe(const Decision& decision, const ClockPair& now) const;

 private:
  // One debounced threshold comparison of a channel.
  struct Condition {
    double threshold = 0;
    bool enabled = false;
    bool high = true;
    bool active = false;
    MonoTime since_ns = kNever;  // when the raw comparison became true; kNever when false
  };
  struct Channel {
    ChannelSpec spec;
    std::array<Condition, 4> conditions;  // warning high, dangerous high, warning low, dangerous low
    Duration warning_debounce_ns{0};
    Duration dangerous_debounce_ns{0};
    double hysteresis = 0;
    double last_value = 0;
    MonoTime last_time_ns = kNever;
    Level level = Level::normal;
    Reason cause;
    bool hot = false;
    int nudge = 0;  // -1 low voltage warning, +1 high, 0 none
  };
  struct Module {
    bool known = false;
    MonoTime last_seen_ns{};
    int syncs_since_seen = 0;
    Level level = Level::normal;
    Reason cause;
  };
  struct Slot {  // a non-channel cause
    Level level = Level::normal;
    Reason cause;
  };

  // The table of non-limit rules and their functions (safety.cpp). Adding a rule is one entry
  // there, plus its RuleKind and its text in describe().
  struct Rules;

  explicit Supervisor(SupervisorConfig config);
  void advance(MonoTime time_ns);
  bool step_condition(Condition& c, bool raw, Duration debounce_ns);
  void evaluate_channel(Channel& ch, ChannelId id);
  void refresh_channel(Channel& ch, ChannelId id);
  void set_level(Level& level, Reason& stored, Level next, const Reason& reason);
  void update_module(Module& m, int id);
  void check_time_rules();
  void refresh_inverter_freshness();
  void update_state(const Reason& trigger);
  void change_state(State next, const Reason& reason);
  void enter_dangerous(const Reason& reason);
  void try_open_contactors();
  void open_contactors(bool emergency, const Reason& reason);
  void update_nudge(const Reason& reason);
  void update_precharge();
  void start_precharge_attempt(const Reason& reason);
  void relay(RelayRole role, bool closed, const Reason& reason);
  Decision& emit(DecisionKind kind, const Reason& reason);
  template <typename Visit>
  void for_each_cause(Visit visit) const;
  bool worst_dangerous_cause(Reason& out) const;
  bool worst_cause(Reason& out) const;
  double pack_current_abs(bool& known) const;
  double latest_value(Quantity q, bool& known, MonoTime& newest_ns) const;
  Decisions finish();

  SupervisorConfig config_;
  std::vector<Channel> channels_;
  std::array<Module, kMaxModuleId + 1> modules_{};
  Slot board_, inverter_, insulation_, inverter_fresh_, board_fault_, stop_;
  std::array<bool, 3> relay_closed_{};  // by RelayRole: commanded closed since the last opening
  std::array<int, 3> level_counts_{};   // causes per Level (index 0 unused)
  std::array<int, 3> nudge_counts_{};   // channels with a low (0) / high (2) voltage warning
  std::array<std::vector<ChannelId>, kQuantityCount> by_quantity_;
  std::vector<int> known_module_ids_;  // in joining order
  int known_modules_ = 0;
  std::uint64_t causes_version_ = 0;
  int pending_conditions_ = 0;              // conditions past their threshold, waiting for the debounce
  MonoTime debounce_deadline_ns_ = kNever;  // earliest end of a pending debounce (may be early, never late)
  int hot_count_ = 0;
  int nudge_direction_ = 0;  // current nudge: -1 charge, +1 discharge, 2 hold, 0 none
  State state_ = State::normal;
  MonoTime state_since_ns_{};
  Reason state_reason_;
  bool started_ = false;
  MonoTime now_ns_{};
  MonoTime last_board_line_ns_{};
  int inverter_failures_ = 0;
  MonoTime inverter_first_failure_ns_{};
  MonoTime last_inverter_reading_ns_{};
  MonoTime last_inverter_heartbeat_ns_{};
  bool cooling_on_ = false;
  bool contactors_closed_ = false;
  bool contactors_pending_ = false;
  MonoTime dangerous_since_ns_{};
  Reason dangerous_reason_;
  PrechargePhase precharge_ = PrechargePhase::idle;
  int precharge_attempts_ = 0;
  MonoTime precharge_deadline_ns_ = kNever;
  MonoTime precharge_started_ns_{};
  std::vector<Decision> out_;
};

}  // namespace cellguard::safety
