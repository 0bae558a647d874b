#include "devices/inverter_client.h"

#include <modbus/modbus.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <utility>

#include "devices/modbus_worker.h"

namespace cellguard::devices {
namespace {

std::uint16_t to_raw(double value, double scale) {
  const double scaled = std::round(value * scale);
  const double clamped = std::clamp(scaled, -32768.0, 32767.0);
  return static_cast<std::uint16_t>(static_cast<std::int16_t>(clamped));
}

double from_raw(std::uint16_t raw, double scale) { return static_cast<std::int16_t>(raw) / scale; }

// The input registers read in one block: from the lowest to the highest address of the map.
std::pair<std::uint16_t, int> input_block(const InverterRegisterMap& r) {
  const std::uint16_t first[] = {r.ambient_temp,     r.heatsink_temp,       r.modbus_timer,
                                 r.battery_voltage,  r.voltage_ref,         r.dc_link_voltage,
                                 r.dc_link_power,    r.dc_link_current,     r.ready,
                                 r.fault_first,      r.warning_first,       r.status,
                                 r.charged_kwh_high, r.discharged_kwh_high, r.power_limit};
  const std::uint16_t last[] = {r.ambient_temp,
                                r.heatsink_temp,
                                r.modbus_timer,
                                r.battery_voltage,
                                r.voltage_ref,
                                r.dc_link_voltage,
                                r.dc_link_power,
                                r.dc_link_current,
                                r.ready,
                                static_cast<std::uint16_t>(r.fault_first + 3),
                                static_cast<std::uint16_t>(r.warning_first + 2),
                                r.status,
                                static_cast<std::uint16_t>(r.charged_kwh_high + 1),
                                static_cast<std::uint16_t>(r.discharged_kwh_high + 1),
                                r.power_limit};
  const std::uint16_t low = *std::min_element(std::begin(first), std::end(first));
  return {low, *std::max_element(std::begin(last), std::end(last)) - low + 1};
}

}  // namespace

// --- the session ---

InverterSession::InverterSession(InverterClientConfig config) : config_(std::move(config)) {
  std::tie(input_first_, input_count_) = input_block(config_.registers);
}

void InverterSession::event(InverterEvent::Kind kind, MonoTime now, std::string message,
                            MonoTime requested_ns) {
  output_.events.push_back(InverterEvent{kind, now, std::move(message), requested_ns});
}

ModbusRequest InverterSession::request(ModbusRequest::Function function, std::uint16_t address,
                                       std::uint16_t count, std::uint16_t value, std::string what,
                                       Pending pending) {
  pending_ = pending;
  ModbusRequest r{function, address, count, value, std::move(what)};
  // The start-up's readback is a courtesy of the device: asked once, never retried.
  if (pending == Pending::startup_readback) r.retries = 0;
  return r;
}

std::uint16_t InverterSession::heartbeat_value() const {
  return static_cast<std::uint16_t>(
      std::clamp<std::int64_t>(config_.heartbeat_timeout_ns / std::chrono::milliseconds(100), 1, 1000));
}

bool InverterSession::heartbeat_live() const {
  const InverterPhase phase = stats_.phase;
  return phase == InverterPhase::running || settling_ ||
         (phase == InverterPhase::starting && startup_index_ > 1);
}

// Counts a transaction's outcome in its kind of freshness (a failure of one kind stays until that
// kind succeeds again) and reports the link. Returns true when the link is to be opened again.
void InverterSession::acknowledge_heartbeat(MonoTime now) {
  ++stats_.heartbeats;
  stats_.last_heartbeat_ack_ns = now;
  output_.heartbeats.push_back(now);
}

// --- the link ---

void InverterSession::connected(MonoTime now, const std::string& endpoint) {
  link_up_ = true;
  event(InverterEvent::Kind::connected, now, "connected to " + endpoint);
  if (input_count_ > MODBUS_MAX_READ_REGISTERS) {
    block_too_large_ = true;
    fail_startup(now, "the input registers span " + std::to_string(input_count_) +
                          " registers, more than one read may ask for");
    return;
  }
  begin_startup();
  next_poll_ = now;
  next_heartbeat_ = now + config_.heartbeat_period_ns;
}

void InverterSession::connect_failed(MonoTime now, const std::string& reason) {
  stats_.last_error = reason;
  ++stats_.consecutive_failures;
  output_.links.push_back({false, now, reason});
}

void InverterSession::disconnected(MonoTime now, const std::string& reason) {
  link_up_ = false;
  pending_ = Pending::none;
  stats_.phase = InverterPhase::connecting;
  stats_.mode = InverterMode::off;  // unknown: the start-up writes it again
  // A setpoint asked for before the loss is not applied after the new start-up.
  if (setpoint_pending_) {
    event(InverterEvent::Kind::command_failed, now,
          std::string(to_string(setpoint_pending_->mode)) + " " + format_value(setpoint_pending_->setpoint) +
              ": link lost",
          setpoint_pending_->requested_ns);
    setpoint_pending_.reset();
  }
  setpoint_active_.reset();
  setpoint_writes_.clear();
  event(InverterEvent::Kind::disconnected, now, reason);
}

void InverterSession::stopped(MonoTime /*now*/) {
  link_up_ = false;
  stats_.phase = InverterPhase::stopped;
}

// --- start-up ---

void InverterSession::begin_startup() {
  const auto& r = config_.registers;
  const auto& l = config_.limits;
  startup_writes_ = {
      {r.security_code, r.security_value, "security code"},
      {r.heartbeat, heartbeat_value(), "heartbeat"},
      {r.op_mode, r.mode_off, "mode off"},
      {r.bat_max_volt, to_raw(l.max_voltage_v, r.voltage_scale),
       "max voltage " + format_value(l.max_voltage_v) + " V"},
      {r.bat_min_volt, to_raw(l.min_voltage_v, r.voltage_scale),
       "min voltage " + format_value(l.min_voltage_v) + " V"},
      {r.bat_max_charge_current, to_raw(l.charge_current_a, r.current_scale),
       "charge current limit " + format_value(l.charge_current_a) + " A"},
      {r.bat_max_discharge_current, to_raw(l.discharge_current_a, r.current_scale),
       "discharge current limit " + format_value(l.discharge_current_a) + " A"},
      {r.bat_max_charge_power, to_raw(l.charge_power_kw, r.power_scale),
       "charge power limit " + format_value(l.charge_power_kw) + " kW"},
      {r.op_mode_setpoint, 0, "setpoint 0"},
  };
  startup_index_ = 0;
  readback_due_ = false;
  settling_ = false;
  stats_.phase = InverterPhase::starting;
}

void InverterSession::fail_startup(MonoTime now, const std::string& reason) {
  stats_.phase = InverterPhase::startup_failed;
  settling_ = false;
  readback_due_ = false;
  next_startup_ = now + config_.reconnect_interval_ns;
  event(InverterEvent::Kind::startup_failed, now, reason);
}

// A start-up write and its readback are done: the step's event, then the next step or settling.
void InverterSession::startup_step_done(MonoTime now, std::string detail) {
  const Write& step = startup_writes_[startup_index_];
  event(InverterEvent::Kind::startup_step, now, std::move(detail));
  if (step.address == config_.registers.heartbeat) next_heartbeat_ = now + config_.heartbeat_period_ns;
  if (step.address == config_.registers.op_mode) {
    stats_.mode = InverterMode::off;
    stats_.setpoint = 0;
  }
  if (++startup_index_ == startup_writes_.size()) {
    settling_ = true;
    settle_deadline_ = now + config_.startup_settle_timeout_ns;
    next_poll_ = now;
    event(InverterEvent::Kind::startup_step, now,
          "waiting up to " + format_ms(config_.startup_settle_timeout_ns) +
              " for current and power ≈ 0 and the voltage within the limits");
  }
}

void InverterSession::check_settled(const InverterReadings& r, MonoTime now) {
  if (startup_settled(config_, r)) {
    settling_ = false;
    stats_.phase = InverterPhase::running;
    event(InverterEvent::Kind::startup_done, now, startup_done_text(r));
  } else if (now >= settle_deadline_) {
    fail_startup(now, startup_not_settled_text(config_, r));
  }
}

bool startup_settled(const InverterClientConfig& config, const InverterReadings& r) {
  const auto& l = config.limits;
  return std::fabs(r.dc_link_current_a) <= config.settle_current_a &&
         std::fabs(r.dc_link_power_kw) <= config.settle_power_kw && r.battery_voltage_v >= l.min_voltage_v &&
         r.battery_voltage_v <= l.max_voltage_v;
}

std::string startup_done_text(const InverterReadings& r) {
  return "start-up done: " + format_value(r.battery_voltage_v) + " V, " + format_value(r.dc_link_current_a) +
         " A, " + format_value(r.dc_link_power_kw) + " kW";
}

std::string startup_not_settled_text(const InverterClientConfig& config, const InverterReadings& r) {
  const auto& l = config.limits;
  return "start-up: not settled within " + format_ms(config.startup_settle_timeout_ns) + ": " +
         format_value(r.battery_voltage_v) + " V (limits " + format_value(l.min_voltage_v) + ".." +
         format_value(l.max_voltage_v) + "), " + format_value(r.dc_link_current_a) + " A, " +
         format_value(r.dc_link_power_kw) + " kW";
}

// --- requests ---

std::uint16_t InverterSession::mode_value(InverterMode mode) const {
  const auto& r = config_.registers;
  switch (mode) {
    case InverterMode::off:
      return r.mode_off;
    case InverterMode::power:
      return r.mode_power;
    case InverterMode::current:
      return r.mode_current;
    case InverterMode::voltage:
      return r.mode_voltage;
  }
  return r.mode_off;
}

std::uint16_t InverterSession::setpoint_raw(InverterMode mode, double value) const {
  const auto& r = config_.registers;
  switch (mode) {
    case InverterMode::power:
      return to_raw(value, r.power_scale);
    case InverterMode::current:
      return to_raw(value, r.current_scale);
    case InverterMode::voltage:
      return to_raw(value, r.voltage_scale);
    case InverterMode::off:
      break;
  }
  return 0;
}

std::optional<ModbusRequest> InverterSession::next_request(MonoTime now) {
  using F = ModbusRequest::Function;
  if (!link_up_ || block_too_large_) return std::nullopt;
  const auto& reg = config_.registers;
  // One transaction per turn, by priority: mode off, heartbeat, start-up, setpoint, poll.
  if (off_requested_ && now >= next_off_attempt_)
    return request(F::write_register, reg.op_mode, 1, reg.mode_off, "mode off", Pending::off);
  if (heartbeat_live() && now >= next_heartbeat_) {
    // Scheduled from the previous due time, not from now, so slow transactions do not stretch it.
    next_heartbeat_ += config_.heartbeat_period_ns;
    if (next_heartbeat_ < now) next_heartbeat_ = now + config_.heartbeat_period_ns;
    return request(F::write_register, reg.heartbeat, 1, heartbeat_value(), "heartbeat", Pending::heartbeat);
  }
  if (stats_.phase == InverterPhase::starting && !settling_) {
    const Write& step = startup_writes_[startup_index_];
    if (readback_due_)
      return request(F::read_holding_registers, step.address, 1, 0, step.what + " readback",
                     Pending::startup_readback);
    return request(F::write_register, step.address, 1, step.value, step.what, Pending::startup_write);
  }
  if (stats_.phase == InverterPhase::startup_failed && now >= next_startup_) {
    begin_startup();
    return next_request(now);
  }
  if (stats_.phase == InverterPhase::running && !off_requested_) {
    if (setpoint_writes_.empty() && setpoint_pending_) {
      // A mode change first zeroes the setpoint: the old one means something else (A vs kW) in the
      // new mode. The setpoint is written before the mode so the new mode starts at its own value.
      const SetpointCommand command = *std::exchange(setpoint_pending_, std::nullopt);
      const InverterMode current = stats_.mode;
      if (current != command.mode && current != InverterMode::off)
        setpoint_writes_.push_back({reg.op_mode_setpoint, 0, "setpoint 0"});
      setpoint_writes_.push_back(
          {reg.op_mode_setpoint, setpoint_raw(command.mode, command.setpoint), "setpoint"});
      if (current != command.mode)
        setpoint_writes_.push_back({reg.op_mode, mode_value(command.mode), "mode"});
      setpoint_active_ = command;
    }
    if (!setpoint_writes_.empty()) {
      const Write& w = setpoint_writes_.front();
      return request(F::write_register, w.address, 1, w.value, w.what, Pending::setpoint_write);
    }
  }
  if (now >= next_poll_) {
    next_poll_ += config_.poll_period_ns;
    if (next_poll_ < now) next_poll_ = now + config_.poll_period_ns;
    // One read of the whole block (30256..30285 on the rig: 30 registers, within the 125 a read
    // may ask for) keeps the readings of one instant together; libmodbus checks the byte count.
    return request(F::read_input_registers, input_first_, static_cast<std::uint16_t>(input_count_), 0,
                   "read input registers", Pending::poll);
  }
  return std::nullopt;
}

MonoTime InverterSession::next_wake(MonoTime now) const {
  if (!link_up_ || block_too_large_) return now + config_.reconnect_interval_ns;
  MonoTime until = next_poll_;
  if (heartbeat_live()) until = std::min(until, next_heartbeat_);
  if (stats_.phase == InverterPhase::startup_failed) until = std::min(until, next_startup_);
  if (off_requested_) until = std::min(until, next_off_attempt_);
  return until;
}

InverterReadings InverterSession::decode(const std::vector<std::uint16_t>& regs, MonoTime now) const {
  const auto& m = config_.registers;
  auto at = [&](std::uint16_t address) { return regs[static_cast<std::size_t>(address - input_first_)]; };
  auto u32 = [&](std::uint16_t high) {
    return (static_cast<std::uint32_t>(at(high)) << 16) | at(static_cast<std::uint16_t>(high + 1));
  };
  InverterReadings r;
  r.time_ns = now;
  r.battery_voltage_v = from_raw(at(m.battery_voltage), m.voltage_scale);
  r.voltage_ref_v = from_raw(at(m.voltage_ref), m.voltage_scale);
  r.dc_link_voltage_v = from_raw(at(m.dc_link_voltage), m.voltage_scale);
  r.dc_link_power_kw = from_raw(at(m.dc_link_power), m.power_scale);
  r.dc_link_current_a = from_raw(at(m.dc_link_current), m.current_scale);
  r.ambient_c = from_raw(at(m.ambient_temp), m.temperature_scale);
  r.heatsink_c = from_raw(at(m.heatsink_temp), m.temperature_scale);
  r.comm_timer_s = at(m.modbus_timer) * 0.1;
  r.ready = at(m.ready) != 0;
  for (std::size_t i = 0; i < r.faults.size(); ++i)
    r.faults[i] = at(static_cast<std::uint16_t>(m.fault_first + i));
  for (std::size_t i = 0; i < r.warnings.size(); ++i)
    r.warnings[i] = at(static_cast<std::uint16_t>(m.warning_first + i));
  r.status = at(m.status);
  r.charged_kwh = u32(m.charged_kwh_high) * 0.1;
  r.discharged_kwh = u32(m.discharged_kwh_high) * 0.1;
  r.power_limit_kw = from_raw(at(m.power_limit), m.power_scale);
  return r;
}

bool InverterSession::reply(const ModbusRequest& request, const ModbusReply& answer, MonoTime now) {
  const Pending pending = std::exchange(pending_, Pending::none);
  const bool ok = answer.status == ModbusReply::Status::ok;
  switch (pending) {
    case Pending::none:
      return false;
    case Pending::off: {
      const bool reconnect = account_reply(stats_, output_, Freshness::other, answer, request.what, now);
      if (!off_requested_) return reconnect;
      if (ok) {
        // A newer off request arrived meanwhile: this write served it too.
        const MonoTime requested = *std::exchange(off_requested_, std::nullopt);
        stats_.mode = InverterMode::off;
        stats_.setpoint = 0;
        event(InverterEvent::Kind::command_written, now,
              "mode off written " + format_ms(now - requested) + " after the request", requested);
      } else {
        // Stays queued: off is retried until it is written (paced, so an exception does not spin).
        next_off_attempt_ = now + config_.poll_period_ns;
        event(InverterEvent::Kind::command_failed, now, "mode off: " + answer.error + " (retrying)",
              *off_requested_);
      }
      return reconnect;
    }
    case Pending::heartbeat: {
      const bool reconnect = account_reply(stats_, output_, Freshness::heartbeat, answer, request.what, now);
      if (ok) acknowledge_heartbeat(now);
      return reconnect;
    }
    case Pending::startup_write: {
      const bool is_heartbeat = request.address == config_.registers.heartbeat;
      const bool reconnect = account_reply(
          stats_, output_, is_heartbeat ? Freshness::heartbeat : Freshness::other, answer, request.what, now);
      if (!ok) {
        if (!reconnect) fail_startup(now, "start-up: " + answer.error);
        return reconnect;
      }
      if (is_heartbeat) acknowledge_heartbeat(now);
      step_detail_ = request.what + " written (" + std::to_string(request.value) + " to " +
                     std::to_string(request.address) + ")";
      readback_due_ = true;
      return false;
    }
    case Pending::startup_readback: {
      // Not a failure of the link when it is refused: the device may not allow function 3 there.
      readback_due_ = false;
      const Write& step = startup_writes_[startup_index_];
      if (ok) {
        const std::uint16_t readback = answer.registers.at(0);
        // The security code register may read back as a status rather than the code; the heartbeat
        // is a countdown: compare the rest.
        const bool comparable =
            step.address != config_.registers.security_code && step.address != config_.registers.heartbeat;
        if (comparable && readback != step.value) {
          fail_startup(now, "start-up: " + step.what + " reads back " + std::to_string(readback) +
                                ", wrote " + std::to_string(step.value));
          return false;
        }
        startup_step_done(now, step_detail_ + ", read back " + std::to_string(readback));
      } else {
        startup_step_done(now, step_detail_ + ", no readback (" + answer.cause + ")");
      }
      return answer.status == ModbusReply::Status::link_error;
    }
    case Pending::setpoint_write: {
      const bool reconnect = account_reply(stats_, output_, Freshness::other, answer, request.what, now);
      if (!setpoint_active_) return reconnect;
      const std::string what =
          std::string(to_string(setpoint_active_->mode)) + " " + format_value(setpoint_active_->setpoint);
      if (!ok) {
        event(InverterEvent::Kind::command_failed, now, what + ": " + answer.error,
              setpoint_active_->requested_ns);
        setpoint_active_.reset();
        setpoint_writes_.clear();
        return reconnect;
      }
      if (!setpoint_writes_.empty()) setpoint_writes_.erase(setpoint_writes_.begin());
      if (setpoint_writes_.empty()) {
        stats_.mode = setpoint_active_->mode;
        stats_.setpoint = setpoint_active_->setpoint;
        event(InverterEvent::Kind::command_written, now,
              what + " written " + format_ms(now - setpoint_active_->requested_ns) + " after the request",
              setpoint_active_->requested_ns);
        setpoint_active_.reset();
      }
      return reconnect;
    }
    case Pending::poll: {
      const bool reconnect = account_reply(stats_, output_, Freshness::reading, answer, request.what, now);
      if (!ok) {
        if (settling_ && now >= settle_deadline_) fail_startup(now, "start-up: " + answer.error);
        return reconnect;
      }
      const InverterReadings r = decode(answer.registers, now);
      stats_.last_reading_ns = r.time_ns;
      output_.readings.push_back(r);
      if (settling_) check_settled(r, now);
      return reconnect;
    }
  }
  return false;
}

// --- commands ---

void InverterSession::command_off(MonoTime requested_ns, MonoTime now) {
  // The oldest unserved request is kept: its latency is the one that matters.
  if (!off_requested_) off_requested_ = requested_ns;
  if (setpoint_pending_) {
    const auto dropped = *std::exchange(setpoint_pending_, std::nullopt);
    event(InverterEvent::Kind::command_failed, now,
          std::string(to_string(dropped.mode)) + " " + format_value(dropped.setpoint) +
              ": replaced by mode off",
          dropped.requested_ns);
  }
  if (setpoint_active_) {
    const auto dropped = *std::exchange(setpoint_active_, std::nullopt);
    setpoint_writes_.clear();
    event(InverterEvent::Kind::command_failed, now,
          std::string(to_string(dropped.mode)) + " " + format_value(dropped.setpoint) +
              ": preempted by mode off",
          dropped.requested_ns);
  }
}

void InverterSession::command_setpoint(InverterMode mode, double setpoint, MonoTime requested_ns,
                                       MonoTime now) {
  if (mode == InverterMode::off) {
    command_off(requested_ns, now);
    return;
  }
  const auto& l = config_.limits;
  double low = 0;
  double high = 0;
  switch (mode) {
    case InverterMode::current:
      low = l.charge_current_a;
      high = l.discharge_current_a;
      break;
    // The rig has one power limit register; it bounds both directions.
    case InverterMode::power:
      low = -std::fabs(l.charge_power_kw);
      high = std::fabs(l.charge_power_kw);
      break;
    case InverterMode::voltage:
      low = l.min_voltage_v;
      high = l.max_voltage_v;
      break;
    case InverterMode::off:
      break;
  }
  const std::string what = std::string(to_string(mode)) + " " + format_value(setpoint);
  if (!std::isfinite(setpoint)) {
    event(InverterEvent::Kind::command_failed, now, what + ": refused: not a finite value", requested_ns);
    return;
  }
  if (stats_.phase != InverterPhase::running) {
    event(InverterEvent::Kind::command_failed, now,
          what + ": refused: start-up not done (" + std::string(to_string(stats_.phase)) + ")", requested_ns);
    return;
  }
  setpoint_pending_ =
      SetpointCommand{mode, std::clamp(setpoint, std::min(low, high), std::max(low, high)), requested_ns};
}

// --- the client: the session on the Modbus worker ---

struct InverterClient::Impl {
  Impl(asio::io_context& loop, const InverterClientConfig& config, const Clock& clock)
      : worker(loop,
               ModbusWorkerConfig{config.endpoint, config.response_timeout_ns, config.retries,
                                  config.reconnect_interval_ns},
               std::make_unique<InverterSession>(config), clock) {}
  ModbusWorker worker;
};

InverterClient::InverterClient(asio::io_context& loop, const InverterClientConfig& config, const Clock& clock)
    : impl_(std::make_unique<Impl>(loop, config, clock)) {}

InverterClient::~InverterClient() { stop(); }

void InverterClient::on_readings(ReadingsHandler handler) { impl_->worker.on_readings(std::move(handler)); }
void InverterClient::on_link(LinkHandler handler) { impl_->worker.on_link(std::move(handler)); }
void InverterClient::on_event(EventHandler handler) { impl_->worker.on_event(std::move(handler)); }
void InverterClient::on_heartbeat(HeartbeatHandler handler) {
  impl_->worker.on_heartbeat(std::move(handler));
}
void InverterClient::start() { impl_->worker.start(); }
void InverterClient::stop() { impl_->worker.stop(); }
void InverterClient::command_off(MonoTime requested_ns) { impl_->worker.command_off(requested_ns); }
void InverterClient::command_setpoint(InverterMode mode, double setpoint, MonoTime requested_ns) {
  impl_->worker.command_setpoint(mode, setpoint, requested_ns);
}
InverterLinkStats InverterClient::stats() const { return impl_->worker.stats(); }

}  // namespace cellguard::devices
