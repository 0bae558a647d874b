// The safety supervisor; see safety.h for the contract and shared/spec/seed-rig.md for the rig.
#include "safety/safety.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <utility>

namespace cellguard::safety {
namespace {

constexpr std::size_t kWarningHigh = 0;
constexpr std::size_t kDangerousHigh = 1;
constexpr std::size_t kWarningLow = 2;
constexpr std::size_t kDangerousLow = 3;
constexpr std::size_t kDecisionCapacity = 256;

bool is_module_quantity(Quantity q) {
  return q == Quantity::cell_voltage || q == Quantity::module_voltage ||
         q == Quantity::module_max_temperature || q == Quantity::module_min_temperature;
}
bool is_voltage_quantity(Quantity q) {  // drives the charge/discharge nudges (seed-rig.md actions)
  return q == Quantity::cell_voltage || q == Quantity::module_voltage ||
         q == Quantity::inverter_battery_voltage;
}
bool is_hot_quantity(Quantity q) {  // drives pump and fan
  return q == Quantity::module_max_temperature || q == Quantity::board_temperature;
}
double seconds(Duration d) { return to_seconds(d); }

std::string number_text(double value) {  // shortest round-trip text: 4.2, 0.02, 1e+20
  char text[32];
  auto [end, ec] = std::to_chars(text, text + sizeof text, value);
  return ec == std::errc() ? std::string(text, end) : std::string("?");
}
// A difference of two settings: 2.8 - 2.7 is 0.1, not 0.09999999999999964.
std::string difference_text(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.9g", value);
  return text;
}

// Collects the problems of one configuration, each at its setting.
class ConfigChecker {
 public:
  explicit ConfigChecker(ConfigFieldNames names)
      : names_(names ? names : [](ConfigField f) { return std::string(to_string(f)); }) {}

  void problem(ConfigField field, std::string message) {
    problems_.push_back({field, quantity_, std::move(message)});
  }
  std::string name(ConfigField field) const { return names_(field); }
  void rule_of(Quantity q) { quantity_ = q; }
  std::vector<ConfigProblem> take() { return std::move(problems_); }

 private:
  ConfigFieldNames names_;
  Quantity quantity_ = Quantity::cell_voltage;
  std::vector<ConfigProblem> problems_;
};

void check_rule(ConfigChecker& c, const RuleConfig& rule, Quantity q) {
  using F = ConfigField;
  c.rule_of(q);
  if (!(rule.hysteresis >= 0) || !std::isfinite(rule.hysteresis))
    c.problem(F::hysteresis, "must be finite and >= 0");
  if (rule.warning_debounce_ns < Duration::zero()) c.problem(F::warning_debounce_ns, "must be >= 0");
  if (rule.dangerous_debounce_ns < Duration::zero()) c.problem(F::dangerous_debounce_ns, "must be >= 0");
  bool finite = true;
  for (auto [t, field] :
       {std::pair{&rule.warning_high, F::warning_high}, std::pair{&rule.dangerous_high, F::dangerous_high},
        std::pair{&rule.warning_low, F::warning_low}, std::pair{&rule.dangerous_low, F::dangerous_low}}) {
    if (t->has_value() && !std::isfinite(**t)) {
      c.problem(field, "must be finite");
      finite = false;
    }
  }
  if (!finite) return;  // the comparisons below would only repeat it
  const auto& wh = rule.warning_high;
  const auto& dh = rule.dangerous_high;
  const auto& wl = rule.warning_low;
  const auto& dl = rule.dangerous_low;
  const double hysteresis = rule.hysteresis;
  if (wh && dh) {
    if (!(*wh < *dh)) {
      c.problem(F::warning_high, number_text(*wh) + " is not inside the dangerous limit " + number_text(*dh) +
                                     " (must be below " + c.name(F::dangerous_high) + ")");
    } else if (!(hysteresis < *dh - *wh)) {
      c.problem(F::hysteresis, number_text(hysteresis) + " must be smaller than the gap " +
                                   c.name(F::dangerous_high) + " - " + c.name(F::warning_high) + " (" +
                                   difference_text(*dh - *wh) + ")");
    }
  }
  if (wl && dl) {
    if (!(*wl > *dl)) {
      c.problem(F::warning_low, number_text(*wl) + " is not inside the dangerous limit " + number_text(*dl) +
                                    " (must be above " + c.name(F::dangerous_low) + ")");
    } else if (!(hysteresis < *wl - *dl)) {
      c.problem(F::hysteresis, number_text(hysteresis) + " must be smaller than the gap " +
                                   c.name(F::warning_low) + " - " + c.name(F::dangerous_low) + " (" +
                                   difference_text(*wl - *dl) + ")");
    }
  }
  const auto& top = wh ? wh : dh;
  const auto& bottom = wl ? wl : dl;
  if (top && bottom && !(*bottom < *top)) {
    c.problem(wl ? F::warning_low : F::dangerous_low,
              number_text(*bottom) + " must be below the high threshold " + number_text(*top));
  }
  // Hysteresis wider than the whole band would never let a condition clear.
  if (top && bottom && *bottom < *top && !(hysteresis < *top - *bottom)) {
    c.problem(F::hysteresis, number_text(hysteresis) + " must be smaller than the normal band (" +
                                 difference_text(*top - *bottom) + ")");
  }
}

}  // namespace

std::string_view to_string(Quantity quantity) {
  switch (quantity) {
    case Quantity::cell_voltage:
      return "cell_voltage";
    case Quantity::module_voltage:
      return "module_voltage";
    case Quantity::module_max_temperature:
      return "module_max_temperature";
    case Quantity::module_min_temperature:
      return "module_min_temperature";
    case Quantity::inverter_battery_voltage:
      return "inverter_battery_voltage";
    case Quantity::board_temperature:
      return "board_temperature";
    case Quantity::board_pressure:
      return "board_pressure";
    case Quantity::pack_current:
      return "pack_current";
    case Quantity::dc_link_voltage:
      return "dc_link_voltage";
  }
  return "?";
}

std::string_view to_string(State state) {
  switch (state) {
    case State::normal:
      return "NORMAL";
    case State::warning:
      return "WARNING";
    case State::dangerous:
      return "DANGEROUS";
    case State::safe:
      return "SAFE";
  }
  return "?";
}

std::string_view to_string(Level level) {
  switch (level) {
    case Level::normal:
      return "normal";
    case Level::warning:
      return "warning";
    case Level::dangerous:
      return "dangerous";
  }
  return "?";
}

std::string_view to_string(RuleKind rule) {
  switch (rule) {
    case RuleKind::none:
      return "none";
    case RuleKind::limit_high:
      return "limit_high";
    case RuleKind::limit_low:
      return "limit_low";
    case RuleKind::module_stale:
      return "module_stale";
    case RuleKind::module_count:
      return "module_count";
    case RuleKind::board_silent:
      return "board_silent";
    case RuleKind::inverter_link:
      return "inverter_link";
    case RuleKind::inverter_stale:
      return "inverter_stale";
    case RuleKind::inverter_heartbeat:
      return "inverter_heartbeat";
    case RuleKind::insulation_fault:
      return "insulation_fault";
    case RuleKind::hot:
      return "hot";
    case RuleKind::cooled:
      return "cooled";
    case RuleKind::contactor_current:
      return "contactor_current";
    case RuleKind::contactor_delay:
      return "contactor_delay";
    case RuleKind::precharge:
      return "precharge";
    case RuleKind::board_fault:
      return "board_fault";
    case RuleKind::operator_request:
      return "operator_request";
    case RuleKind::state:
      return "state";
    case RuleKind::stop_request:
      return "stop_request";
  }
  return "?";
}

std::string_view to_string(StopOrigin origin) {
  switch (origin) {
    case StopOrigin::terminate_signal:
      return "SIGTERM";
    case StopOrigin::interrupt_signal:
      return "SIGINT";
    case StopOrigin::operator_command:
      return "operator command `edge stop`";
    case StopOrigin::configuration_error:
      return "configuration error at reload";
    case StopOrigin::duration_elapsed:
      return "--duration elapsed";
  }
  return "?";
}

std::string_view to_string(DecisionKind kind) {
  switch (kind) {
    case DecisionKind::state_changed:
      return "state_changed";
    case DecisionKind::inverter_off:
      return "inverter_off";
    case DecisionKind::inverter_nudge_charge:
      return "inverter_nudge_charge";
    case DecisionKind::inverter_nudge_discharge:
      return "inverter_nudge_discharge";
    case DecisionKind::inverter_hold:
      return "inverter_hold";
    case DecisionKind::inverter_nudge_end:
      return "inverter_nudge_end";
    case DecisionKind::contactors_open:
      return "contactors_open";
    case DecisionKind::cooling_on:
      return "cooling_on";
    case DecisionKind::cooling_off:
      return "cooling_off";
    case DecisionKind::relay_set:
      return "relay_set";
    case DecisionKind::precharge_complete:
      return "precharge_complete";
    case DecisionKind::precharge_retry:
      return "precharge_retry";
    case DecisionKind::precharge_lockout:
      return "precharge_lockout";
    case DecisionKind::start_refused:
      return "start_refused";
    case DecisionKind::reset_accepted:
      return "reset_accepted";
    case DecisionKind::reset_refused:
      return "reset_refused";
    case DecisionKind::module_joined:
      return "module_joined";
  }
  return "?";
}

std::string_view to_string(RelayRole role) {
  switch (role) {
    case RelayRole::precharge:
      return "precharge";
    case RelayRole::main_positive:
      return "main_positive";
    case RelayRole::main_negative:
      return "main_negative";
  }
  return "?";
}

std::string_view to_string(PrechargePhase phase) {
  switch (phase) {
    case PrechargePhase::idle:
      return "idle";
    case PrechargePhase::precharging:
      return "precharging";
    case PrechargePhase::waiting_retry:
      return "waiting_retry";
    case PrechargePhase::running:
      return "running";
    case PrechargePhase::locked_out:
      return "locked_out";
  }
  return "?";
}

SupervisorConfig rig_defaults() {
  // Thresholds: seed-rig.md limits table (client-config.properties.json). Hysteresis and debounce
  // are cellguard's choices (the rig had neither): warnings must hold 300 ms (3 rig PDO cycles),
  // dangerous levels count at once.
  constexpr Duration kWarningDebounceNs = std::chrono::milliseconds(300);
  SupervisorConfig c;
  c.rule(Quantity::cell_voltage) = {4.1, 4.2, 2.8, 2.7, 0.02, kWarningDebounceNs, Duration::zero()};
  c.rule(Quantity::module_voltage) = {48.0, 49.0, 34.0, 33.0, 0.5, kWarningDebounceNs, Duration::zero()};
  c.rule(Quantity::module_max_temperature) = {
      30.0, 50.0, std::nullopt, std::nullopt, 1.0, kWarningDebounceNs, Duration::zero()};
  c.rule(Quantity::inverter_battery_voltage) = {384.0,           390.0, 268.0, 264.0, 2.0, kWarningDebounceNs,
                                                Duration::zero()};
  c.expected_module_count = 15;
  return c;
}

std::string_view to_string(ConfigField field) {
  switch (field) {
    case ConfigField::warning_high:
      return "warning_high";
    case ConfigField::dangerous_high:
      return "dangerous_high";
    case ConfigField::warning_low:
      return "warning_low";
    case ConfigField::dangerous_low:
      return "dangerous_low";
    case ConfigField::hysteresis:
      return "hysteresis";
    case ConfigField::warning_debounce_ns:
      return "warning_debounce_ns";
    case ConfigField::dangerous_debounce_ns:
      return "dangerous_debounce_ns";
    case ConfigField::expected_module_count:
      return "expected_module_count";
    case ConfigField::stale_sync_cycles:
      return "stale_sync_cycles";
    case ConfigField::dangerous_sync_cycles:
      return "dangerous_sync_cycles";
    case ConfigField::dangerous_silence_ns:
      return "dangerous_silence_ns";
    case ConfigField::board_timeout_ns:
      return "board_timeout_ns";
    case ConfigField::inverter_failure_limit:
      return "inverter_failure_limit";
    case ConfigField::inverter_readings_timeout_ns:
      return "inverter_readings_timeout_ns";
    case ConfigField::inverter_heartbeat_timeout_ns:
      return "inverter_heartbeat_timeout_ns";
    case ConfigField::contactor_open_current_a:
      return "contactor_open_current_a";
    case ConfigField::contactor_max_delay_ns:
      return "contactor_max_delay_ns";
    case ConfigField::hot_c:
      return "hot_c";
    case ConfigField::cooled_c:
      return "cooled_c";
    case ConfigField::nudge_current_a:
      return "nudge_current_a";
    case ConfigField::precharge_relay:
      return "precharge.relays.precharge";
    case ConfigField::main_positive_relay:
      return "precharge.relays.main_positive";
    case ConfigField::main_negative_relay:
      return "precharge.relays.main_negative";
    case ConfigField::match_tolerance_v:
      return "precharge.match_tolerance_v";
    case ConfigField::precharge_timeout_ns:
      return "precharge.timeout_ns";
    case ConfigField::retry_delay_ns:
      return "precharge.retry_delay_ns";
    case ConfigField::max_attempts:
      return "precharge.max_attempts";
    case ConfigField::settle_ns:
      return "precharge.settle_ns";
  }
  return "?";
}

bool is_rule_field(ConfigField field) { return field <= ConfigField::dangerous_debounce_ns; }

std::string to_string(const ConfigProblem& problem) {
  std::string where(to_string(problem.field));
  if (is_rule_field(problem.field)) where = std::string(to_string(problem.quantity)) + "." + where;
  return where + ": " + problem.message;
}

std::vector<ConfigProblem> validate(const SupervisorConfig& config, ConfigFieldNames names) {
  using F = ConfigField;
  ConfigChecker c(names);
  for (std::size_t i = 0; i < kQuantityCount; ++i) check_rule(c, config.rules[i], static_cast<Quantity>(i));
  if (config.expected_module_count < 0 || config.expected_module_count > kMaxModuleId) {
    c.problem(F::expected_module_count,
              std::to_string(config.expected_module_count) + " is not within 0..127");
  }
  if (config.stale_sync_cycles < 1) {
    c.problem(F::stale_sync_cycles, std::to_string(config.stale_sync_cycles) + " must be >= 1");
  } else if (config.dangerous_sync_cycles <= config.stale_sync_cycles) {
    c.problem(F::dangerous_sync_cycles, "must be greater than " + c.name(F::stale_sync_cycles) + " (" +
                                            std::to_string(config.stale_sync_cycles) + ")");
  }
  auto positive = [&](Duration value, ConfigField field) {
    if (value <= Duration::zero()) c.problem(field, "must be positive");
  };
  positive(config.dangerous_silence_ns, F::dangerous_silence_ns);
  positive(config.board_timeout_ns, F::board_timeout_ns);
  positive(config.inverter_readings_timeout_ns, F::inverter_readings_timeout_ns);
  positive(config.inverter_heartbeat_timeout_ns, F::inverter_heartbeat_timeout_ns);
  if (config.contactor_max_delay_ns < Duration::zero()) c.problem(F::contactor_max_delay_ns, "must be >= 0");
  if (config.inverter_failure_limit < 1) c.problem(F::inverter_failure_limit, "must be >= 1");
  if (!(config.contactor_open_current_a > 0)) c.problem(F::contactor_open_current_a, "must be > 0");
  if (!(config.cooled_c < config.hot_c)) {
    c.problem(F::cooled_c, "must be below " + c.name(F::hot_c) + " (" + number_text(config.hot_c) + ")");
  }
  if (!(config.nudge_current_a >= 0)) c.problem(F::nudge_current_a, "must be >= 0");
  const PrechargeConfig& p = config.precharge;
  if (!(p.match_tolerance_v > 0)) c.problem(F::match_tolerance_v, "must be > 0");
  positive(p.timeout_ns, F::precharge_timeout_ns);
  if (p.retry_delay_ns < Duration::zero()) c.problem(F::retry_delay_ns, "must be >= 0");
  if (p.max_attempts < 1) c.problem(F::max_attempts, "must be >= 1");
  if (p.settle_ns < Duration::zero()) c.problem(F::settle_ns, "must be >= 0");
  const RelayRoles& r = p.relays;
  if (r.main_positive == r.precharge) {
    c.problem(F::main_positive_relay, "relay" + std::to_string(r.main_positive) +
                                          " is already the precharge relay (roles need three relays)");
  }
  if (r.main_negative == r.precharge || r.main_negative == r.main_positive) {
    c.problem(F::main_negative_relay, "relay" + std::to_string(r.main_negative) +
                                          " already has another role (roles need three relays)");
  }
  return c.take();
}

Result<Supervisor> Supervisor::create(SupervisorConfig config) {
  const std::vector<ConfigProblem> problems = validate(config);
  if (!problems.empty()) {
    std::string message;
    for (const ConfigProblem& p : problems) message += (message.empty() ? "" : "; ") + to_string(p);
    return Error(ErrorCode::invalid_argument, std::move(message));
  }
  return Supervisor(config);  // trivially copyable: a move would copy too
}

Supervisor::Supervisor(SupervisorConfig config) : config_(config) {
  out_.reserve(kDecisionCapacity);
  known_module_ids_.reserve(kMaxModuleId);
}

Result<ChannelId> Supervisor::add_channel(ChannelSpec spec) {
  if (spec.module_id < 0 || spec.module_id > kMaxModuleId) {
    return Error(ErrorCode::invalid_argument, spec.name + ": module id must be within 0..127");
  }
  if (is_module_quantity(spec.quantity) && spec.module_id == 0) {
    return Error(ErrorCode::invalid_argument, spec.name + ": a module quantity needs a module id 1..127");
  }
  const RuleConfig& rule = config_.rule(spec.quantity);
  Channel ch;
  ch.warning_debounce_ns = rule.warning_debounce_ns;
  ch.dangerous_debounce_ns = rule.dangerous_debounce_ns;
  ch.hysteresis = rule.hysteresis;
  const std::optional<double>* thresholds[4] = {&rule.warning_high, &rule.dangerous_high, &rule.warning_low,
                                                &rule.dangerous_low};
  for (std::size_t i = 0; i < 4; ++i) {
    ch.conditions[i].enabled = thresholds[i]->has_value();
    ch.conditions[i].threshold = thresholds[i]->value_or(0);
    ch.conditions[i].high = i < 2;
  }
  ch.spec = std::move(spec);
  channels_.push_back(std::move(ch));
  by_quantity_[static_cast<std::size_t>(channels_.back().spec.quantity)].push_back(
      static_cast<ChannelId>(channels_.size() - 1));
  return static_cast<ChannelId>(channels_.size() - 1);
}

// ---- inputs -------------------------------------------------------------------------------------

void Supervisor::advance(MonoTime time_ns) {
  out_.clear();
  if (!started_) {
    // The board watchdog and the first module silence count from the first input.
    started_ = true;
    now_ns_ = time_ns;
    state_since_ns_ = time_ns;
    last_board_line_ns_ = time_ns;
    last_inverter_reading_ns_ = time_ns;
    last_inverter_heartbeat_ns_ = time_ns;
    return;
  }
  now_ns_ = std::max(now_ns_, time_ns);
}

Decisions Supervisor::finish() { return Decisions(out_.data(), out_.size()); }

Result<Decisions> Supervisor::on_sample(ChannelId id, MonoTime time_ns, double value) {
  if (id >= channels_.size()) {
    return Error(ErrorCode::invalid_argument, "sample for unknown channel " + std::to_string(id));
  }
  if (!std::isfinite(value)) {
    return Error(ErrorCode::invalid_argument, channels_[id].spec.name + ": non-finite sample refused");
  }
  advance(time_ns);
  Channel& ch = channels_[id];
  ch.last_value = value;
  ch.last_time_ns = now_ns_;
  evaluate_channel(ch, id);
  check_time_rules();
  const Quantity q = ch.spec.quantity;
  if (q == Quantity::pack_current) try_open_contactors();
  if (q == Quantity::dc_link_voltage || q == Quantity::inverter_battery_voltage) update_precharge();
  return finish();
}

Decisions Supervisor::on_insulation_fault(bool active, MonoTime time_ns) {
  advance(time_ns);
  const Level next = active ? Level::dangerous : Level::normal;
  if (next != insulation_.level) {
    Reason r{.rule = RuleKind::insulation_fault,
             .level = next,
             .measured = active ? 1.0 : 0.0,
             .threshold = 1.0,
             .since_ns = active ? now_ns_ : insulation_.cause.since_ns};
    set_level(insulation_.level, insulation_.cause, next, r);
    update_state(r);
  }
  check_time_rules();
  return finish();
}

Decisions Supervisor::on_module_pdo(int module_id, MonoTime time_ns) {
  advance(time_ns);
  if (module_id >= 1 && module_id <= kMaxModuleId) {
    Module& m = modules_[static_cast<std::size_t>(module_id)];
    if (!m.known) {
      // Item 3: a module joining is an event.
      m.known = true;
      known_module_ids_.push_back(module_id);
      ++known_modules_;
      Reason r{.rule = RuleKind::module_count,
               .level = Level::normal,
               .module_id = module_id,
               .measured = static_cast<double>(known_modules_),
               .threshold = static_cast<double>(config_.expected_module_count),
               .since_ns = now_ns_};
      emit(DecisionKind::module_joined, r);
    }
    m.last_seen_ns = now_ns_;
    m.syncs_since_seen = 0;
    update_module(m, module_id);
  }
  check_time_rules();
  return finish();
}

Decisions Supervisor::on_sync_sent(MonoTime time_ns) {
  advance(time_ns);
  for (int id : known_module_ids_) {
    Module& m = modules_[static_cast<std::size_t>(id)];
    ++m.syncs_since_seen;
    update_module(m, id);
  }
  check_time_rules();
  return finish();
}

Decisions Supervisor::on_board_line_valid(MonoTime time_ns) {
  advance(time_ns);
  last_board_line_ns_ = now_ns_;
  if (board_.level != Level::normal) {
    Reason r = board_.cause;
    r.measured = 0;
    set_level(board_.level, board_.cause, Level::normal, r);
    update_state(r);
  }
  check_time_rules();
  return finish();
}

Decisions Supervisor::on_inverter_link(bool ok, MonoTime time_ns) {
  advance(time_ns);
  if (ok) {
    inverter_failures_ = 0;
    if (inverter_.level != Level::normal) {
      Reason r = inverter_.cause;
      r.measured = 0;
      set_level(inverter_.level, inverter_.cause, Level::normal, r);
      update_state(r);
    }
  } else {
    if (inverter_failures_ == 0) inverter_first_failure_ns_ = now_ns_;
    ++inverter_failures_;
    Reason r{.rule = RuleKind::inverter_link,
             .level = Level::dangerous,
             .measured = static_cast<double>(inverter_failures_),
             .threshold = static_cast<double>(config_.inverter_failure_limit),
             .since_ns = inverter_first_failure_ns_};
    if (inverter_.level == Level::dangerous) {
      inverter_.cause.measured = r.measured;
    } else if (inverter_failures_ >= config_.inverter_failure_limit) {
      set_level(inverter_.level, inverter_.cause, Level::dangerous, r);
      update_state(r);
    }
  }
  check_time_rules();
  return finish();
}

std::string_view to_string(BoardFault fault) {
  switch (fault) {
    case BoardFault::none:
      return "board outputs read back as commanded";
    case BoardFault::heartbeat_timeout:
      return "board opened the relays: heartbeat timeout";
    case BoardFault::ground_fault:
      return "board opened the relays: ground-fault input";
    case BoardFault::watchdog_reset:
      return "board opened the relays: watchdog reset";
    case BoardFault::reset:
      return "board opened the relays: board reset";
    case BoardFault::output_mismatch:
      return "board output does not follow the command (read-back)";
  }
  return "board fault";
}

Decisions Supervisor::on_board_fault(BoardFault fault, MonoTime time_ns) {
  advance(time_ns);
  if (fault == BoardFault::none) {
    if (board_fault_.level != Level::normal) {
      Reason r = board_fault_.cause;
      set_level(board_fault_.level, board_fault_.cause, Level::normal, r);
      update_state(r);
    }
  } else {
    Reason r{.rule = RuleKind::board_fault,
             .level = Level::dangerous,
             .measured = static_cast<double>(fault),
             .since_ns = now_ns_};
    set_level(board_fault_.level, board_fault_.cause, Level::dangerous, r);
    update_state(r);
  }
  check_time_rules();
  return finish();
}

Decisions Supervisor::on_inverter_reading(MonoTime time_ns) {
  advance(time_ns);
  last_inverter_reading_ns_ = now_ns_;
  refresh_inverter_freshness();
  check_time_rules();
  return finish();
}

Decisions Supervisor::on_inverter_heartbeat(MonoTime time_ns) {
  advance(time_ns);
  last_inverter_heartbeat_ns_ = now_ns_;
  refresh_inverter_freshness();
  check_time_rules();
  return finish();
}

// The freshness cause clears once both kinds are fresh again (SAFE stays latched until a reset).
void Supervisor::refresh_inverter_freshness() {
  if (inverter_fresh_.level == Level::normal) return;
  if (now_ns_ - last_inverter_reading_ns_ >= config_.inverter_readings_timeout_ns) return;
  if (now_ns_ - last_inverter_heartbeat_ns_ >= config_.inverter_heartbeat_timeout_ns) return;
  Reason r = inverter_fresh_.cause;
  r.measured = 0;
  set_level(inverter_fresh_.level, inverter_fresh_.cause, Level::normal, r);
  update_state(r);
}

Decisions Supervisor::on_operator_reset(MonoTime time_ns) {
  advance(time_ns);
  check_time_rules();
  Reason request{.rule = RuleKind::operator_request, .level = Level::normal, .since_ns = now_ns_};
  if (state_ == State::dangerous) {
    // Contactors not yet open: nothing may be reset until the battery is isolated.
    emit(DecisionKind::reset_refused, dangerous_reason_);
    return finish();
  }
  if (state_ == State::safe) {
    Reason cause;
    if (worst_dangerous_cause(cause)) {
      emit(DecisionKind::reset_refused, cause);  // SAFE is latched while a cause remains
      return finish();
    }
    change_state(level_counts_[static_cast<std::size_t>(Level::warning)] > 0 ? State::warning : State::normal,
                 request);
    if (precharge_ == PrechargePhase::locked_out) precharge_ = PrechargePhase::idle;
    precharge_attempts_ = 0;
    emit(DecisionKind::reset_accepted, request);
    update_nudge(request);
    return finish();
  }
  if (precharge_ == PrechargePhase::locked_out) {
    precharge_ = PrechargePhase::idle;
    precharge_attempts_ = 0;
    emit(DecisionKind::reset_accepted, request);
    return finish();
  }
  Reason refused{.rule = RuleKind::state,
                 .level = Level::normal,
                 .measured = static_cast<double>(state_),
                 .threshold = static_cast<double>(State::safe),
                 .since_ns = state_since_ns_};
  emit(DecisionKind::reset_refused, refused);  // nothing to reset
  return finish();
}

Decisions Supervisor::on_start_request(MonoTime time_ns) {
  advance(time_ns);
  check_time_rules();
  if (state_ == State::dangerous || state_ == State::safe) {
    Reason r{.rule = RuleKind::state,
             .level = Level::dangerous,
             .measured = static_cast<double>(state_),
             .threshold = static_cast<double>(State::warning),
             .since_ns = state_since_ns_};
    emit(DecisionKind::start_refused, state_reason_.rule != RuleKind::none ? state_reason_ : r);
    return finish();
  }
  if (known_modules_ < config_.expected_module_count) {
    // Item 3: fewer modules than expected -> refuse to start charging/discharging.
    Reason r{.rule = RuleKind::module_count,
             .level = Level::normal,
             .measured = static_cast<double>(known_modules_),
             .threshold = static_cast<double>(config_.expected_module_count),
             .since_ns = now_ns_};
    emit(DecisionKind::start_refused, r);
    return finish();
  }
  if (precharge_ == PrechargePhase::locked_out) {
    Reason r{.rule = RuleKind::precharge,
             .level = Level::dangerous,
             .measured = static_cast<double>(precharge_attempts_),
             .threshold = static_cast<double>(config_.precharge.max_attempts),
             .since_ns = now_ns_,
             .detail = static_cast<std::uint8_t>(PrechargeStep::locked_out)};
    emit(DecisionKind::start_refused, r);
    return finish();
  }
  if (precharge_ != PrechargePhase::idle) return finish();  // already starting or running
  precharge_attempts_ = 0;
  Reason r{.rule = RuleKind::operator_request, .level = Level::normal, .since_ns = now_ns_};
  start_precharge_attempt(r);
  update_precharge();
  return finish();
}

Decisions Supervisor::on_stop_request(StopOrigin origin, MonoTime time_ns) {
  advance(time_ns);
  check_time_rules();
  if (stop_.level != Level::dangerous) {
    Reason r{.rule = RuleKind::stop_request,
             .level = Level::dangerous,
             .since_ns = now_ns_,
             .detail = static_cast<std::uint8_t>(origin)};
    set_level(stop_.level, stop_.cause, Level::dangerous, r);
    update_state(r);  // DANGEROUS -> the trip's sequence; already DANGEROUS or SAFE: it goes on as it is
    try_open_contactors();
  }
  return finish();
}

Decisions Supervisor::tick(MonoTime time_ns) {
  advance(time_ns);
  check_time_rules();
  return finish();
}

// ---- rules --------------------------------------------------------------------------------------

bool Supervisor::step_condition(Condition& c, bool raw, Duration debounce_ns) {
  const bool was_pending = c.since_ns != kNever && !c.active;
  if (!raw) {
    c.since_ns = kNever;
    c.active = false;
  } else {
    if (c.since_ns == kNever) c.since_ns = now_ns_;
    if (!c.active && now_ns_ - c.since_ns >= debounce_ns) c.active = true;
  }
  const bool pending = c.since_ns != kNever && !c.active;
  pending_conditions_ += static_cast<int>(pending) - static_cast<int>(was_pending);
  if (pending) debounce_deadline_ns_ = std::min(debounce_deadline_ns_, c.since_ns + debounce_ns);
  return pending;
}

void Supervisor::evaluate_channel(Channel& ch, ChannelId id) {
  const double v = ch.last_value;
  for (std::size_t i = 0; i < 4; ++i) {
    Condition& c = ch.conditions[i];
    if (!c.enabled) continue;
    // Spec comparisons are >= / <=; once active, a condition clears only beyond the hysteresis.
    const bool raw = c.high ? v >= (c.active ? c.threshold - ch.hysteresis : c.threshold)
                            : v <= (c.active ? c.threshold + ch.hysteresis : c.threshold);
    const bool dangerous = i == kDangerousHigh || i == kDangerousLow;
    step_condition(c, raw, dangerous ? ch.dangerous_debounce_ns : ch.warning_debounce_ns);
  }
  refresh_channel(ch, id);
}

void Supervisor::refresh_channel(Channel& ch, ChannelId id) {
  const auto& c = ch.conditions;
  std::size_t worst = 4;
  for (std::size_t i : {kDangerousHigh, kDangerousLow, kWarningHigh, kWarningLow}) {
    if (c[i].active) {
      worst = i;
      break;
    }
  }
  const Level next = worst == 4                                            ? Level::normal
                     : (worst == kDangerousHigh || worst == kDangerousLow) ? Level::dangerous
                                                                           : Level::warning;
  if (next != Level::normal) {
    const bool high = worst == kDangerousHigh || worst == kWarningHigh;
    Reason r{.rule = high ? RuleKind::limit_high : RuleKind::limit_low,
             .level = next,
             .quantity = ch.spec.quantity,
             .channel = id,
             .module_id = ch.spec.module_id,
             .measured = ch.last_value,
             .threshold = c[worst].threshold,
             .since_ns = c[worst].since_ns};
    if (next != ch.level || r.rule != ch.cause.rule) {
      set_level(ch.level, ch.cause, next, r);
      update_state(r);
    } else {
      ch.cause.measured = ch.last_value;  // same cause, newer value (status only)
    }
  } else if (ch.level != Level::normal) {
    Reason r = ch.cause;
    r.measured = ch.last_value;
    r.level = Level::normal;  // the cleared cause (texts say "cleared")
    set_level(ch.level, ch.cause, Level::normal, r);
    update_state(r);
  }

  const Quantity q = ch.spec.quantity;
  if (is_voltage_quantity(q)) {
    const int nudge = (c[kWarningHigh].active || c[kDangerousHigh].active) ? 1
                      : (c[kWarningLow].active || c[kDangerousLow].active) ? -1
                                                                           : 0;
    if (nudge != ch.nudge) {
      const int was_index = ch.nudge + 1;  // nudge_counts_: 0 low, 2 high
      const int index = nudge + 1;
      if (ch.nudge != 0) --nudge_counts_[static_cast<std::size_t>(was_index)];
      if (nudge != 0) ++nudge_counts_[static_cast<std::size_t>(index)];
      ch.nudge = nudge;
      update_nudge(ch.cause);  // the new or the cleared cause
    }
  }
  if (is_hot_quantity(q)) {
    // Pump and fan on while hot, off when cooled to the rig's "security" level (CMA_Temp_security).
    const bool hot = ch.hot ? ch.last_value > config_.cooled_c : ch.last_value >= config_.hot_c;
    if (hot != ch.hot) {
      ch.hot = hot;
      hot_count_ += hot ? 1 : -1;
      if (hot && !cooling_on_) {
        cooling_on_ = true;
        emit(DecisionKind::cooling_on, Reason{.rule = RuleKind::hot,
                                              .level = Level::warning,
                                              .quantity = q,
                                              .channel = id,
                                              .module_id = ch.spec.module_id,
                                              .measured = ch.last_value,
                                              .threshold = config_.hot_c,
                                              .since_ns = now_ns_});
      } else if (!hot && hot_count_ == 0 && cooling_on_) {
        cooling_on_ = false;
        emit(DecisionKind::cooling_off, Reason{.rule = RuleKind::cooled,
                                               .level = Level::normal,
                                               .quantity = q,
                                               .channel = id,
                                               .module_id = ch.spec.module_id,
                                               .measured = ch.last_value,
                                               .threshold = config_.cooled_c,
                                               .since_ns = now_ns_});
      }
    }
  }
}

void Supervisor::set_level(Level& level, Reason& stored, Level next, const Reason& reason) {
  if (level != Level::normal) --level_counts_[static_cast<std::size_t>(level)];
  if (next != Level::normal) ++level_counts_[static_cast<std::size_t>(next)];
  if (level != next) ++causes_version_;
  level = next;
  stored = reason;
  stored.level = next;
}

void Supervisor::update_module(Module& m, int id) {
  // Item 3. A cycle is missed when the SYNC that opens the next cycle goes out with no PDO from the
  // module since the previous SYNC, so the newest SYNC (still being answered) is not counted.
  const int missed = std::max(0, m.syncs_since_seen - 1);
  const Duration silence_ns = now_ns_ - m.last_seen_ns;
  Level next = Level::normal;
  Reason r{.rule = RuleKind::module_stale,
           .level = Level::normal,
           .module_id = id,
           .measured = static_cast<double>(missed),
           .threshold = static_cast<double>(config_.stale_sync_cycles),
           .since_ns = m.last_seen_ns};
  if (missed >= config_.dangerous_sync_cycles) {
    next = Level::dangerous;
    r.threshold = config_.dangerous_sync_cycles;
  } else if (silence_ns >= config_.dangerous_silence_ns) {
    // Time-based: measured and threshold are seconds of silence.
    next = Level::dangerous;
    r.measured = seconds(silence_ns);
    r.threshold = seconds(config_.dangerous_silence_ns);
    r.detail = 1;  // counted in seconds, not SYNC cycles
  } else if (missed >= config_.stale_sync_cycles) {
    next = Level::warning;
  }
  if (next == Level::normal && m.level != Level::normal) r = m.cause;
  if (next != m.level) {
    set_level(m.level, m.cause, next, r);
    update_state(m.cause);
  }
}

// ---- the non-limit rules: one table ------------------------------------------------------------
//
// Each rule is one entry: what it evaluates at the current time (none: its input alone decides,
// e.g. a stop request), when that evaluation may next decide something (none: never by time alone),
// and its active causes (none: it acts and keeps no cause). check_time_rules(),
// next_deadline_ns() and for_each_cause() iterate the table in its order, which is also the order
// causes are listed and the first dangerous one is chosen; the calls are resolved at compile time.

namespace {

// A visitor of causes behind a plain function pointer (the table holds no templates).
struct CauseVisitor {
  const void* context;
  void (*call)(const void* context, const Reason& cause);
  void operator()(const Reason& cause) const { call(context, cause); }
};
// The defaults of a rule that its input alone decides, that time never triggers, that keeps no cause.
void decided_by_input(Supervisor&) {}
MonoTime no_deadline(const Supervisor&) { return kNever; }
void no_causes(const Supervisor&, CauseVisitor) {}

struct Rule {
  std::array<RuleKind, 2> kinds{};                               // its causes or decisions (or none)
  void (*evaluate)(Supervisor&) = &decided_by_input;             // decides at now_ns_
  MonoTime (*deadline)(const Supervisor&) = &no_deadline;        // when evaluate may next decide
  void (*causes)(const Supervisor&, CauseVisitor) = &no_causes;  // visits its active causes
};

}  // namespace

struct Supervisor::Rules {
  template <Slot Supervisor::*slot>
  static void slot_cause(const Supervisor& s, CauseVisitor visit) {
    if ((s.*slot).level != Level::normal) visit((s.*slot).cause);
  }

  // Item 3: a module silent for dangerous_silence_ns is dangerous even without SYNCs (counted in
  // cycles by on_sync_sent()).
  static void module_silence(Supervisor& s) {
    for (int id : s.known_module_ids_) {
      Module& m = s.modules_[static_cast<std::size_t>(id)];
      if (m.level != Level::dangerous && s.now_ns_ - m.last_seen_ns >= s.config_.dangerous_silence_ns) {
        s.update_module(m, id);
      }
    }
  }
  static MonoTime module_silence_deadline(const Supervisor& s) {
    MonoTime next = kNever;
    for (int id : s.known_module_ids_) {
      const Module& m = s.modules_[static_cast<std::size_t>(id)];
      if (m.level != Level::dangerous) next = std::min(next, m.last_seen_ns + s.config_.dangerous_silence_ns);
    }
    return next;
  }
  static void module_causes(const Supervisor& s, CauseVisitor visit) {
    for (int id : s.known_module_ids_) {
      const Module& m = s.modules_[static_cast<std::size_t>(id)];
      if (m.level != Level::normal) visit(m.cause);
    }
  }

  // Item 4: no valid board line for board_timeout_ns -> dangerous.
  static void board_silence(Supervisor& s) {
    if (!s.config_.board_expected || s.board_.level != Level::normal) return;
    if (s.now_ns_ - s.last_board_line_ns_ < s.config_.board_timeout_ns) return;
    const Reason r{.rule = RuleKind::board_silent,
                   .level = Level::dangerous,
                   .measured = seconds(s.now_ns_ - s.last_board_line_ns_),
                   .threshold = seconds(s.config_.board_timeout_ns),
                   .since_ns = s.last_board_line_ns_};
    s.set_level(s.board_.level, s.board_.cause, Level::dangerous, r);
    s.update_state(r);
  }
  static MonoTime board_silence_deadline(const Supervisor& s) {
    if (!s.config_.board_expected || s.board_.level != Level::normal) return kNever;
    return s.last_board_line_ns_ + s.config_.board_timeout_ns;
  }

  // Issue 12 item 4: a half-dead inverter (reads unanswered or malformed, heartbeats refused) is
  // judged by the age of its last valid answer of each kind, not by "no error". One cause for both.
  static void inverter_freshness(Supervisor& s) {
    if (!s.config_.inverter_expected || s.inverter_fresh_.level != Level::normal) return;
    const Duration reading_age = s.now_ns_ - s.last_inverter_reading_ns_;
    const Duration heartbeat_age = s.now_ns_ - s.last_inverter_heartbeat_ns_;
    Reason r{.level = Level::dangerous};
    if (reading_age >= s.config_.inverter_readings_timeout_ns) {
      r.rule = RuleKind::inverter_stale;
      r.measured = seconds(reading_age);
      r.threshold = seconds(s.config_.inverter_readings_timeout_ns);
      r.since_ns = s.last_inverter_reading_ns_;
    } else if (heartbeat_age >= s.config_.inverter_heartbeat_timeout_ns) {
      r.rule = RuleKind::inverter_heartbeat;
      r.measured = seconds(heartbeat_age);
      r.threshold = seconds(s.config_.inverter_heartbeat_timeout_ns);
      r.since_ns = s.last_inverter_heartbeat_ns_;
    } else {
      return;
    }
    s.set_level(s.inverter_fresh_.level, s.inverter_fresh_.cause, Level::dangerous, r);
    s.update_state(r);
  }
  static MonoTime inverter_freshness_deadline(const Supervisor& s) {
    if (!s.config_.inverter_expected || s.inverter_fresh_.level != Level::normal) return kNever;
    return std::min(s.last_inverter_reading_ns_ + s.config_.inverter_readings_timeout_ns,
                    s.last_inverter_heartbeat_ns_ + s.config_.inverter_heartbeat_timeout_ns);
  }

  // Flaw 7: after a trip the contactors open once the current is low, or after the maximum delay.
  static void contactors(Supervisor& s) { s.try_open_contactors(); }
  static MonoTime contactors_deadline(const Supervisor& s) {
    return s.contactors_pending_ ? s.dangerous_since_ns_ + s.config_.contactor_max_delay_ns : kNever;
  }

  // The precharge step's timeout and the retry delay.
  static void precharge(Supervisor& s) { s.update_precharge(); }
  static MonoTime precharge_deadline(const Supervisor& s) {
    const bool waiting =
        s.precharge_ == PrechargePhase::precharging || s.precharge_ == PrechargePhase::waiting_retry;
    return waiting ? s.precharge_deadline_ns_ : kNever;
  }

  static constexpr std::array<Rule, 9> kTable{{
      {.kinds = {RuleKind::module_stale},
       .evaluate = &module_silence,
       .deadline = &module_silence_deadline,
       .causes = &module_causes},
      {.kinds = {RuleKind::board_silent},
       .evaluate = &board_silence,
       .deadline = &board_silence_deadline,
       .causes = &slot_cause<&Supervisor::board_>},
      {.kinds = {RuleKind::inverter_link}, .causes = &slot_cause<&Supervisor::inverter_>},
      {.kinds = {RuleKind::insulation_fault}, .causes = &slot_cause<&Supervisor::insulation_>},
      {.kinds = {RuleKind::inverter_stale, RuleKind::inverter_heartbeat},
       .evaluate = &inverter_freshness,
       .deadline = &inverter_freshness_deadline,
       .causes = &slot_cause<&Supervisor::inverter_fresh_>},
      {.kinds = {RuleKind::board_fault}, .causes = &slot_cause<&Supervisor::board_fault_>},
      {.kinds = {RuleKind::stop_request}, .causes = &slot_cause<&Supervisor::stop_>},
      {.kinds = {RuleKind::contactor_current, RuleKind::contactor_delay},
       .evaluate = &contactors,
       .deadline = &contactors_deadline},
      {.kinds = {RuleKind::precharge}, .evaluate = &precharge, .deadline = &precharge_deadline},
  }};

  // Calls each(std::integral_constant<std::size_t, index>) for every rule, so that kTable[index]
  // is a constant expression and its functions are called directly.
  template <typename Each, std::size_t... I>
  static void for_each(Each& each, std::index_sequence<I...>) {
    (each(std::integral_constant<std::size_t, I>{}), ...);
  }
  template <typename Each>
  static void for_each(Each&& each) {
    for_each(each, std::make_index_sequence<kTable.size()>{});
  }
};

std::vector<Supervisor::RuleSummary> Supervisor::rule_table() {
  std::vector<RuleSummary> out;
  out.reserve(Rules::kTable.size());
  for (const Rule& rule : Rules::kTable) {
    out.push_back({.kinds = rule.kinds,
                   .timed = rule.deadline != &no_deadline,
                   .has_cause = rule.causes != &no_causes});
  }
  return out;
}

void Supervisor::check_time_rules() {
  if (pending_conditions_ > 0 && now_ns_ >= debounce_deadline_ns_) {
    // Debounce expiry without a new sample: the raw comparison still holds (since_ns is set). The
    // scan runs only when the earliest pending debounce has ended, and recomputes that deadline.
    debounce_deadline_ns_ = kNever;
    for (std::size_t id = 0; id < channels_.size(); ++id) {
      Channel& ch = channels_[id];
      bool changed = false;
      for (std::size_t i = 0; i < 4; ++i) {
        Condition& c = ch.conditions[i];
        if (c.since_ns == kNever || c.active) continue;
        const bool dangerous = i == kDangerousHigh || i == kDangerousLow;
        step_condition(c, true, dangerous ? ch.dangerous_debounce_ns : ch.warning_debounce_ns);
        changed = changed || c.active;
      }
      if (changed) refresh_channel(ch, static_cast<ChannelId>(id));
    }
  }
  Rules::for_each([&](auto i) {
    constexpr auto evaluate = Rules::kTable[i].evaluate;  // a direct call
    evaluate(*this);
  });
}

// ---- state and actions --------------------------------------------------------------------------

void Supervisor::update_state(const Reason& trigger) {
  if (state_ == State::dangerous || state_ == State::safe) return;  // latched until reset
  if (level_counts_[static_cast<std::size_t>(Level::dangerous)] > 0) {
    Reason r = trigger;
    if (r.level != Level::dangerous) worst_dangerous_cause(r);
    enter_dangerous(r);
    return;
  }
  const State desired =
      level_counts_[static_cast<std::size_t>(Level::warning)] > 0 ? State::warning : State::normal;
  if (desired != state_) {
    Reason r = trigger;
    if (desired == State::warning && r.level != Level::warning) worst_cause(r);
    change_state(desired, r);
  }
}

void Supervisor::change_state(State next, const Reason& reason) {
  Decision& d = emit(DecisionKind::state_changed, reason);
  d.from = state_;
  d.to = next;
  state_ = next;
  state_since_ns_ = now_ns_;
  state_reason_ = reason;
}

void Supervisor::enter_dangerous(const Reason& reason) {
  change_state(State::dangerous, reason);
  dangerous_since_ns_ = now_ns_;
  dangerous_reason_ = reason;
  emit(DecisionKind::inverter_off, reason);  // at once, before anything else
  nudge_direction_ = 0;
  if (precharge_ != PrechargePhase::locked_out) precharge_ = PrechargePhase::idle;
  precharge_deadline_ns_ = kNever;
  contactors_pending_ = true;
  try_open_contactors();
}

void Supervisor::try_open_contactors() {
  if (!contactors_pending_) return;
  bool known = false;
  const double current_a = pack_current_abs(known);
  const bool any_relay_closed =
      std::find(relay_closed_.begin(), relay_closed_.end(), true) != relay_closed_.end();
  if (stop_.level == Level::dangerous && !any_relay_closed) {
    // A stop with every relay open: no current flows through the contactors, nothing to wait for.
    open_contactors(false, Reason{.rule = RuleKind::contactor_current,
                                  .level = Level::dangerous,
                                  .quantity = Quantity::pack_current,
                                  .threshold = config_.contactor_open_current_a,
                                  .since_ns = dangerous_since_ns_});
  } else if (known && current_a < config_.contactor_open_current_a) {
    open_contactors(false, Reason{.rule = RuleKind::contactor_current,
                                  .level = Level::dangerous,
                                  .quantity = Quantity::pack_current,
                                  .measured = current_a,
                                  .threshold = config_.contactor_open_current_a,
                                  .since_ns = dangerous_since_ns_});
  } else if (now_ns_ - dangerous_since_ns_ >= config_.contactor_max_delay_ns) {
    // Emergency: the current never fell below the threshold (or is unknown); open anyway (flaw 7).
    open_contactors(true, Reason{.rule = RuleKind::contactor_delay,
                                 .level = Level::dangerous,
                                 .quantity = Quantity::pack_current,
                                 .measured = known ? current_a : std::nan(""),
                                 .threshold = config_.contactor_open_current_a,
                                 .since_ns = dangerous_since_ns_});
  }
}

void Supervisor::open_contactors(bool emergency, const Reason& reason) {
  Decision& d = emit(DecisionKind::contactors_open, reason);
  d.emergency = emergency;
  relay_closed_ = {};
  contactors_pending_ = false;
  contactors_closed_ = false;
  change_state(State::safe, dangerous_reason_);
}

void Supervisor::update_nudge(const Reason& reason) {
  if (state_ == State::dangerous || state_ == State::safe) return;
  const bool low = nudge_counts_[0] > 0;
  const bool high = nudge_counts_[2] > 0;
  const int desired = low && high ? 2 : low ? -1 : high ? 1 : 0;
  if (desired == nudge_direction_) return;
  nudge_direction_ = desired;
  Reason r = reason;
  if (desired != 0 && r.rule != RuleKind::limit_high && r.rule != RuleKind::limit_low) worst_cause(r);
  switch (desired) {
    case -1:
      emit(DecisionKind::inverter_nudge_charge, r).setpoint_a = -config_.nudge_current_a;
      break;
    case 1:
      emit(DecisionKind::inverter_nudge_discharge, r).setpoint_a = config_.nudge_current_a;
      break;
    case 2:
      emit(DecisionKind::inverter_hold, r);
      break;
    default:
      emit(DecisionKind::inverter_nudge_end, r);
      break;
  }
}

void Supervisor::relay(RelayRole role, bool closed, const Reason& reason) {
  const RelayRoles& roles = config_.precharge.relays;
  Decision& d = emit(DecisionKind::relay_set, reason);
  d.role = role;
  d.relay = role == RelayRole::precharge       ? roles.precharge
            : role == RelayRole::main_positive ? roles.main_positive
                                               : roles.main_negative;
  d.closed = closed;
  relay_closed_[static_cast<std::size_t>(role)] = closed;
}

void Supervisor::start_precharge_attempt(const Reason& reason) {
  // Close the negative pole and charge the DC link through the precharge resistor.
  ++precharge_attempts_;
  precharge_ = PrechargePhase::precharging;
  precharge_deadline_ns_ = now_ns_ + config_.precharge.settle_ns + config_.precharge.timeout_ns;
  precharge_started_ns_ = now_ns_;
  Reason r = reason;
  r.rule = RuleKind::precharge;
  r.measured = precharge_attempts_;
  r.threshold = config_.precharge.max_attempts;
  r.since_ns = now_ns_;
  r.detail = static_cast<std::uint8_t>(PrechargeStep::attempt);
  relay(RelayRole::main_negative, true, r);
  relay(RelayRole::precharge, true, r);
}

void Supervisor::update_precharge() {
  if (state_ == State::dangerous || state_ == State::safe) return;
  if (precharge_ == PrechargePhase::precharging) {
    bool dc_known = false;
    bool battery_known = false;
    MonoTime dc_link_time_ns;
    MonoTime battery_time_ns;
    const double dc_link_v = latest_value(Quantity::dc_link_voltage, dc_known, dc_link_time_ns);
    const double battery_v = latest_value(Quantity::inverter_battery_voltage, battery_known, battery_time_ns);
    const double difference_v = std::fabs(dc_link_v - battery_v);
    // Only a DC-link reading taken during this attempt may close the main contactor.
    // On a slow board (settle_ns) only once the relays can have closed.
    const bool fresh =
        dc_known && battery_known && dc_link_time_ns >= precharge_started_ns_ + config_.precharge.settle_ns;
    if (fresh && difference_v <= config_.precharge.match_tolerance_v) {
      // DC link matches the battery: close the main contactor, then drop the precharge relay.
      Reason r{.rule = RuleKind::precharge,
               .level = Level::normal,
               .quantity = Quantity::dc_link_voltage,
               .measured = dc_link_v,
               .threshold = battery_v,
               .since_ns = precharge_started_ns_,
               .detail = static_cast<std::uint8_t>(PrechargeStep::matched)};
      relay(RelayRole::main_positive, true, r);
      relay(RelayRole::precharge, false, r);
      emit(DecisionKind::precharge_complete, r);
      precharge_ = PrechargePhase::running;
      precharge_deadline_ns_ = kNever;
      contactors_closed_ = true;
    } else if (now_ns_ >= precharge_deadline_ns_) {
      Reason r{.rule = RuleKind::precharge,
               .level = Level::warning,
               .quantity = Quantity::dc_link_voltage,
               .measured = dc_known ? dc_link_v : std::nan(""),
               .threshold = battery_known ? battery_v : std::nan(""),
               .since_ns = precharge_started_ns_,
               .detail = static_cast<std::uint8_t>(PrechargeStep::timed_out)};
      relay(RelayRole::precharge, false, r);
      relay(RelayRole::main_negative, false, r);
      if (precharge_attempts_ >= config_.precharge.max_attempts) {
        precharge_ = PrechargePhase::locked_out;
        precharge_deadline_ns_ = kNever;
        r.measured = precharge_attempts_;
        r.threshold = config_.precharge.max_attempts;
        r.detail = static_cast<std::uint8_t>(PrechargeStep::locked_out);
        r.since_ns = now_ns_;
        emit(DecisionKind::precharge_lockout, r);
      } else {
        precharge_ = PrechargePhase::waiting_retry;
        precharge_deadline_ns_ = now_ns_ + config_.precharge.retry_delay_ns;
        emit(DecisionKind::precharge_retry, r);
      }
    }
  } else if (precharge_ == PrechargePhase::waiting_retry && now_ns_ >= precharge_deadline_ns_) {
    start_precharge_attempt(Reason{});
  }
}

Decision& Supervisor::emit(DecisionKind kind, const Reason& reason) {
  Decision d;
  d.kind = kind;
  d.time_ns = now_ns_;
  d.reason = reason;
  out_.push_back(d);
  return out_.back();
}

// ---- queries ------------------------------------------------------------------------------------

double Supervisor::pack_current_abs(bool& known) const {
  // Every current channel must have a value; the largest magnitude counts. Channels of modules that
  // never joined (a DBC defines 15 slots, 8 are fitted) are not part of the pack.
  const auto& ids = by_quantity_[static_cast<std::size_t>(Quantity::pack_current)];
  known = false;
  bool missing = false;
  double worst_a = 0;
  for (ChannelId id : ids) {
    const Channel& ch = channels_[id];
    if (ch.spec.module_id != 0 && !modules_[static_cast<std::size_t>(ch.spec.module_id)].known) continue;
    known = true;
    if (ch.last_time_ns == kNever || now_ns_ - ch.last_time_ns > config_.current_max_age_ns) missing = true;
    worst_a = std::max(worst_a, std::fabs(ch.last_value));
  }
  if (missing) known = false;
  return worst_a;
}

double Supervisor::latest_value(Quantity q, bool& known, MonoTime& newest_ns) const {
  // The newest sample of any channel of the quantity.
  known = false;
  double value = 0;
  newest_ns = MonoTime();
  for (ChannelId id : by_quantity_[static_cast<std::size_t>(q)]) {
    const Channel& ch = channels_[id];
    if (ch.last_time_ns == kNever) continue;
    if (!known || ch.last_time_ns >= newest_ns) {
      value = ch.last_value;
      newest_ns = ch.last_time_ns;
      known = true;
    }
  }
  return value;
}

template <typename Visit>
void Supervisor::for_each_cause(Visit visit) const {
  for (const Channel& ch : channels_) {
    if (ch.level != Level::normal) visit(ch.cause);
  }
  const CauseVisitor visitor{
      &visit, [](const void* context, const Reason& cause) { (*static_cast<const Visit*>(context))(cause); }};
  Rules::for_each([&](auto i) {
    constexpr auto causes = Rules::kTable[i].causes;
    causes(*this, visitor);
  });
}

bool Supervisor::worst_dangerous_cause(Reason& out) const {
  bool found = false;
  for_each_cause([&](const Reason& r) {
    if (!found && r.level == Level::dangerous) {
      out = r;
      found = true;
    }
  });
  return found;
}

bool Supervisor::worst_cause(Reason& out) const {
  if (worst_dangerous_cause(out)) return true;
  bool found = false;
  for_each_cause([&](const Reason& r) {
    if (!found) {
      out = r;
      found = true;
    }
  });
  return found;
}

std::vector<Reason> Supervisor::active_causes() const {
  std::vector<Reason> causes;
  for_each_cause([&](const Reason& r) { causes.push_back(r); });
  return causes;
}

MonoTime Supervisor::next_deadline_ns() const {
  if (!started_) return kNever;
  MonoTime next = kNever;
  if (pending_conditions_ > 0) {
    for (const Channel& ch : channels_) {
      for (std::size_t i = 0; i < 4; ++i) {
        const Condition& c = ch.conditions[i];
        if (c.since_ns == kNever || c.active) continue;
        const bool dangerous = i == kDangerousHigh || i == kDangerousLow;
        next = std::min(next, c.since_ns + (dangerous ? ch.dangerous_debounce_ns : ch.warning_debounce_ns));
      }
    }
  }
  Rules::for_each([&](auto i) {
    constexpr auto deadline = Rules::kTable[i].deadline;
    next = std::min(next, deadline(*this));
  });
  return next;
}

Status Supervisor::status() const {
  Status s;
  s.state = state_;
  s.state_since_ns = state_since_ns_;
  s.state_reason = state_reason_;
  s.causes = active_causes();
  for (int id : known_module_ids_) {
    const Module& m = modules_[static_cast<std::size_t>(id)];
    s.modules.push_back(ModuleStatus{id, m.last_seen_ns, std::max(0, m.syncs_since_seen - 1), m.level});
  }
  std::sort(s.modules.begin(), s.modules.end(),
            [](const ModuleStatus& a, const ModuleStatus& b) { return a.module_id < b.module_id; });
  s.expected_module_count = config_.expected_module_count;
  s.cooling_on = cooling_on_;
  s.contactors_closed = contactors_closed_;
  s.precharge = precharge_;
  s.precharge_attempts = precharge_attempts_;
  s.inverter_consecutive_failures = inverter_failures_;
  s.inverter_last_reading_ns = last_inverter_reading_ns_;
  s.inverter_last_heartbeat_ns = last_inverter_heartbeat_ns_;
  s.inverter_readings_stale = config_.inverter_expected &&
                              now_ns_ - last_inverter_reading_ns_ >= config_.inverter_readings_timeout_ns;
  return s;
}

// ---- texts for people -----------------------------------------------------------------------------

namespace {

struct UnitFormat {
  const char* unit;
  int decimals;
};

UnitFormat unit_of(Quantity q) {
  switch (q) {
    case Quantity::cell_voltage:
      return {"V", 2};
    case Quantity::module_voltage:
    case Quantity::inverter_battery_voltage:
    case Quantity::dc_link_voltage:
      return {"V", 1};
    case Quantity::module_max_temperature:
    case Quantity::module_min_temperature:
    case Quantity::board_temperature:
      return {"°C", 1};
    case Quantity::board_pressure:
      return {"bar", 2};
    case Quantity::pack_current:
      return {"A", 1};
  }
  return {"", 3};
}

std::string number(double value, int decimals) {
  if (std::isnan(value)) return "unknown";
  char text[48];
  std::snprintf(text, sizeof text, "%.*f", decimals, value);
  return text;
}

std::string value_text(double value, Quantity q) {
  const UnitFormat f = unit_of(q);
  return std::isnan(value) ? "unknown" : number(value, f.decimals) + " " + f.unit;
}

std::string seconds_text(Duration ns) { return number(seconds(ns), 1) + " s"; }

std::string count_text(double value) { return number(value, 0); }

std::string_view role_words(RelayRole role) {
  switch (role) {
    case RelayRole::precharge:
      return "precharge";
    case RelayRole::main_positive:
      return "main positive";
    case RelayRole::main_negative:
      return "main negative";
  }
  return "?";
}

std::string_view state_words(double code) {
  if (!(code >= 0 && code <= static_cast<double>(State::safe))) return "?";  // NaN too
  return to_string(static_cast<State>(static_cast<int>(code)));
}

}  // namespace

std::string wall_text(WallTime wall) {
  const std::int64_t wall_ns = wall.ns();
  const std::time_t seconds_since_epoch =
      static_cast<std::time_t>(wall_ns / 1'000'000'000 - (wall_ns < 0 ? 1 : 0));
  std::tm utc{};
  gmtime_r(&seconds_since_epoch, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &utc);
  return text;
}

std::string Supervisor::describe(const Reason& reason, const ClockPair& now) const {
  const std::string since = wall_text(now.to_wall(reason.since_ns));
  const std::string level(to_string(reason.level));
  std::string label;
  if (reason.channel != kNoChannel && reason.channel < channels_.size()) {
    const ChannelSpec& spec = channels_[reason.channel].spec;
    label = spec.label.empty() ? spec.name : spec.label;
  } else if (reason.module_id != 0) {
    label = "module " + std::to_string(reason.module_id);
  }
  switch (reason.rule) {
    case RuleKind::none:
      return "no cause";
    case RuleKind::limit_high:
    case RuleKind::limit_low: {
      const char* op = reason.rule == RuleKind::limit_high ? ">=" : "<=";
      const std::string values = value_text(reason.measured, reason.quantity) + " " + op + " " +
                                 value_text(reason.threshold, reason.quantity);
      if (reason.level == Level::normal) {
        return label + ": " + value_text(reason.measured, reason.quantity) + ", back from " +
               (reason.rule == RuleKind::limit_high ? "above " : "below ") +
               value_text(reason.threshold, reason.quantity) + " (cleared; since " + since + ")";
      }
      return label + ": " + values + " (" + level + ") since " + since;
    }
    case RuleKind::module_stale: {
      const std::string module = "module " + std::to_string(reason.module_id);
      if (reason.level == Level::normal) return module + " answers again (was silent since " + since + ")";
      const std::string silent = seconds_text(std::max(Duration::zero(), now.mono_ns - reason.since_ns));
      // Counted in SYNC cycles, or (detail 1, the time rule) in seconds of silence.
      const std::string detail = reason.detail == 0 ? count_text(reason.measured) + " SYNC cycles"
                                                    : "limit " + number(reason.threshold, 1) + " s";
      return module + " silent for " + silent + " (" + detail + ", " + level + ") since " + since;
    }
    case RuleKind::module_count:
      if (reason.module_id != 0) {
        return "module " + std::to_string(reason.module_id) + " joined (" + count_text(reason.measured) +
               " of " + count_text(reason.threshold) + " expected) at " + since;
      }
      return count_text(reason.measured) + " of " + count_text(reason.threshold) + " expected modules found";
    case RuleKind::board_silent:
      if (reason.level == Level::normal)
        return "board sends valid lines again (was silent since " + since + ")";
      return "board silent for " + seconds_text(std::max(Duration::zero(), now.mono_ns - reason.since_ns)) +
             " (limit " + number(reason.threshold, 1) + " s, " + level + ") since " + since;
    case RuleKind::inverter_link:
      if (reason.level == Level::normal) return "inverter answers again (failing since " + since + ")";
      return "inverter link failed " + count_text(reason.measured) + " times in a row (limit " +
             count_text(reason.threshold) + ", " + level + ") since " + since;
    case RuleKind::inverter_stale:
      if (reason.level == Level::normal) return "inverter readings fresh again (stale since " + since + ")";
      return "inverter readings stale: no valid reading for " + number(reason.measured, 1) + " s (limit " +
             number(reason.threshold, 1) + " s, " + level + ") since " + since;
    case RuleKind::inverter_heartbeat:
      if (reason.level == Level::normal)
        return "inverter heartbeat acknowledged again (unacknowledged since " + since + ")";
      return "inverter heartbeat not acknowledged for " + number(reason.measured, 1) + " s (limit " +
             number(reason.threshold, 1) + " s, " + level + ") since " + since;
    case RuleKind::board_fault: {
      const double code = reason.measured;
      const bool known = code >= 0 && code <= static_cast<double>(BoardFault::output_mismatch);
      const std::string what(known ? to_string(static_cast<BoardFault>(static_cast<int>(code)))
                                   : "board fault");
      if (reason.level == Level::normal) return what + " (at " + since + ")";
      return what + " (" + level + ") since " + since;
    }
    case RuleKind::insulation_fault:
      if (reason.level == Level::normal) return "insulation fault cleared (active since " + since + ")";
      return "insulation fault (ground fault input, " + level + ") since " + since;
    case RuleKind::hot:
      return label + ": " + value_text(reason.measured, reason.quantity) +
             " >= " + value_text(reason.threshold, reason.quantity) + ": pump and fan on at " + since;
    case RuleKind::cooled:
      return label + ": " + value_text(reason.measured, reason.quantity) +
             " <= " + value_text(reason.threshold, reason.quantity) + ": pump and fan off at " + since;
    case RuleKind::contactor_current: {
      const std::string after = seconds_text(std::max(Duration::zero(), now.mono_ns - reason.since_ns));
      return "pack current " + value_text(reason.measured, Quantity::pack_current) + " < " +
             value_text(reason.threshold, Quantity::pack_current) + ", " + after + " after the trip at " +
             since;
    }
    case RuleKind::contactor_delay:
      return "pack current " + value_text(reason.measured, Quantity::pack_current) + " not below " +
             value_text(reason.threshold, Quantity::pack_current) + " after the maximum delay of " +
             seconds_text(config_.contactor_max_delay_ns) + " (emergency opening; trip at " + since + ")";
    case RuleKind::precharge:
      switch (static_cast<PrechargeStep>(reason.detail)) {
        case PrechargeStep::attempt:
          return "precharge attempt " + count_text(reason.measured) + " of " + count_text(reason.threshold) +
                 " started at " + since;
        case PrechargeStep::matched:
        case PrechargeStep::timed_out: {
          std::string text =
              reason.detail == static_cast<std::uint8_t>(PrechargeStep::matched)
                  ? "precharge reached "
                  : "precharge timed out after " + seconds_text(config_.precharge.timeout_ns) + " at ";
          text += value_text(reason.measured, Quantity::dc_link_voltage) + " of " +
                  value_text(reason.threshold, Quantity::dc_link_voltage);
          if (!std::isnan(reason.measured) && !std::isnan(reason.threshold) && reason.threshold != 0) {
            text += " (" + number(100.0 * reason.measured / reason.threshold, 0) + " %)";
          }
          if (reason.detail == static_cast<std::uint8_t>(PrechargeStep::timed_out)) {
            text += ", needs within " +
                    value_text(config_.precharge.match_tolerance_v, Quantity::dc_link_voltage) +
                    " (attempt started at " + since + ")";
          }
          return text;
        }
        case PrechargeStep::locked_out:
          return "precharge failed " + count_text(reason.measured) + " of " + count_text(reason.threshold) +
                 " attempts: locked out until an operator reset (since " + since + ")";
        case PrechargeStep::none:
          break;
      }
      return "precharge at " + since;
    case RuleKind::operator_request:
      return "operator request at " + since;
    case RuleKind::state:
      return "the state is " + std::string(state_words(reason.measured)) + " (since " + since + ")";
    case RuleKind::stop_request:
      return "stop requested (" + std::string(to_string(static_cast<StopOrigin>(reason.detail))) + ") at " +
             since;
  }
  return std::string(to_string(reason.rule)) + " at " + since;
}

std::string Supervisor::describe(const Decision& d, const ClockPair& now) const {
  std::string why = describe(d.reason, now);  // not const: the plain `return why;` moves it
  switch (d.kind) {
    case DecisionKind::state_changed:
      return "state " + std::string(to_string(d.from)) + " -> " + std::string(to_string(d.to)) + ": " + why;
    case DecisionKind::inverter_off:
      return "inverter off: " + why;
    case DecisionKind::inverter_nudge_charge:
      return "inverter nudged to charge at " + number(-d.setpoint_a, 1) + " A: " + why;
    case DecisionKind::inverter_nudge_discharge:
      return "inverter nudged to discharge at " + number(d.setpoint_a, 1) + " A: " + why;
    case DecisionKind::inverter_hold:
      return "inverter held at 0 A: " + why;
    case DecisionKind::inverter_nudge_end:
      return "nudge ended, the schedule resumes: " + why;
    case DecisionKind::contactors_open:
      return std::string(d.emergency ? "contactors opened under load: " : "contactors opened: ") + why;
    case DecisionKind::cooling_on:
    case DecisionKind::cooling_off:
      return why;
    case DecisionKind::relay_set:
      return "relay " + std::to_string(d.relay) + " (" + std::string(role_words(d.role)) + ") " +
             (d.closed ? "closed" : "opened") + ": " + why;
    case DecisionKind::precharge_complete:
      return "contactors closed: " + why;
    case DecisionKind::precharge_retry:
      return why + "; retry in " + seconds_text(config_.precharge.retry_delay_ns);
    case DecisionKind::precharge_lockout:
      return why;
    case DecisionKind::start_refused:
      return "start refused: " + why;
    case DecisionKind::reset_accepted:
      return "reset accepted: " + why;
    case DecisionKind::reset_refused:
      return "reset refused: " + why;
    case DecisionKind::module_joined:
      return why;
  }
  return why;
}

}  // namespace cellguard::safety
