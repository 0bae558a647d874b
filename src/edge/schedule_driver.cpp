#include "edge/schedule_driver.h"

#include "edge/events.h"

namespace cellguard::edge {

using nlohmann::json;

ScheduleDriver::ScheduleDriver(asio::io_context& io, ScheduleSection config, InverterCommands* inverter,
                               const Clock& clock, std::shared_ptr<spdlog::logger> log, Hooks hooks)
    : io_(io),
      config_(std::move(config)),
      inverter_(inverter),
      clock_(&clock),
      log_(std::move(log)),
      hooks_(std::move(hooks)),
      step_timer_(io) {}

Result<void> ScheduleDriver::load() {
  if (config_.path.empty()) return success();
  auto loaded = schedule::load_schedule(config_.path);
  if (!loaded) return loaded.error();
  log_->info("schedule {}: {} steps, {} mode, {} at the end", config_.path, loaded->steps.size(),
             to_string(loaded->kind), config_.at_end == schedule::EndAction::loop ? "loop" : "stop");
  runner_.emplace(std::move(loaded.value()), config_.at_end);
  readback_.emplace(config_.readback_tolerance, Duration(config_.readback_timeout_ns));
  return success();
}

std::string ScheduleDriver::request_start(const std::string& origin, bool inverter_ready,
                                          const safety::Status& status) {
  if (!runner_) return "no schedule configured ([schedule] file)";
  if (runner_->position().running) return "";
  if (!inverter_ || !inverter_ready) return "the inverter has not completed its start-up";
  last_refusal_.clear();
  if (status.precharge == safety::PrechargePhase::running) {
    if (status.state == safety::State::dangerous || status.state == safety::State::safe)
      return "state " + state_name(status.state);
    start_now(clock_->mono_now());
    return "";
  }
  start_pending_ = true;
  hooks_.emit({{"t", wall_s()}, {"kind", "operator"}, {"operator", "schedule_start"}, {"origin", origin}});
  // The supervisor answers at once: precharge_complete, start_refused or precharge_lockout come back
  // through on_precharge_complete / on_start_refused while this runs.
  hooks_.request_precharge();
  return last_refusal_;
}

void ScheduleDriver::on_precharge_complete(MonoTime now) {
  if (!start_pending_) return;
  start_pending_ = false;
  start_now(now);
}

void ScheduleDriver::on_start_refused(const std::string& why) {
  if (!start_pending_) return;
  start_pending_ = false;
  last_refusal_ = why;
}

void ScheduleDriver::start_now(MonoTime now) {
  runner_->start(now);
  hooks_.emit({{"t", wall_s()}, {"kind", "schedule"}, {"event", "started"}, {"file", config_.path}});
  log_->info("schedule started");
  changed(now);
}

void ScheduleDriver::stop(const std::string& why) {
  start_pending_ = false;
  if (!runner_ || !runner_->position().running) return;
  runner_->stop(clock_->mono_now());
  step_timer_.cancel();
  if (readback_) readback_->cancel();
  hooks_.emit({{"t", wall_s()}, {"kind", "schedule"}, {"event", "stopped"}, {"why", why}});
  log_->info("schedule stopped: {}", why);
}

void ScheduleDriver::stop_by_operator(MonoTime now) {
  stop("operator");
  if (inverter_ && !nudging_) inverter_->command_setpoint(setpoint_mode(), 0, now);
}

void ScheduleDriver::on_nudge_begin() {
  nudging_ = true;
  if (readback_) readback_->cancel();  // the schedule's setpoint is not what the inverter runs now
}

void ScheduleDriver::on_nudge_end(MonoTime now) {
  nudging_ = false;
  apply_setpoint(now);
}

void ScheduleDriver::changed(MonoTime now) {
  const auto& p = runner_->position();
  if (!p.running) {
    hooks_.emit({{"t", wall_s()}, {"kind", "schedule"}, {"event", "ended"}});
    if (inverter_ && !nudging_) inverter_->command_setpoint(setpoint_mode(), 0, now);
    return;
  }
  hooks_.emit({{"t", wall_s()},
               {"kind", "schedule"},
               {"event", "step"},
               {"step", p.step},
               {"cycle", p.cycle},
               {"setpoint", p.setpoint},
               {"unit", runner_->schedule().kind == schedule::SetpointKind::current_a ? "A" : "kW"}});
  apply_setpoint(now);
  step_timer_.expires_at(to_steady(p.next_change));
  step_timer_.async_wait([this](asio::error_code ec) {
    if (ec || !runner_->position().running) return;
    const MonoTime t = clock_->mono_now();
    if (runner_->advance(t)) changed(t);
  });
}

devices::InverterMode ScheduleDriver::setpoint_mode() const {
  return runner_ && runner_->schedule().kind == schedule::SetpointKind::power_kw
             ? devices::InverterMode::power
             : devices::InverterMode::current;
}

void ScheduleDriver::apply_setpoint(MonoTime now) {
  if (!inverter_ || nudging_) return;
  if (!runner_ || !runner_->position().running) return;
  const double setpoint = runner_->position().setpoint;
  inverter_->command_setpoint(setpoint_mode(), setpoint, now);
  if (readback_) readback_->expect(setpoint, now);
  arm_readback_timer();
}

void ScheduleDriver::arm_readback_timer() {
  if (!readback_ || !readback_->pending()) return;
  auto timer = std::make_shared<asio::steady_timer>(io_);
  timer->expires_at(to_steady(readback_->deadline() + Duration(kMs)));
  timer->async_wait([this, timer](asio::error_code ec) {
    if (ec || !readback_) return;
    if (auto result = readback_->tick(clock_->mono_now())) readback_event(*result);
  });
}

void ScheduleDriver::on_inverter_readings(const devices::InverterReadings& r, MonoTime now) {
  if (!readback_ || !readback_->pending()) return;
  const double measured = runner_->schedule().kind == schedule::SetpointKind::current_a ? r.dc_link_current_a
                                                                                        : r.dc_link_power_kw;
  if (auto result = readback_->on_measurement(measured, now)) readback_event(*result);
}

void ScheduleDriver::readback_event(const schedule::ReadbackResult& r) {
  ++(r.ok ? readback_ok_ : readback_failed_);
  json j{{"t", wall_s()},
         {"kind", "schedule"},
         {"event", r.ok ? "readback_ok" : "readback_failed"},
         {"expected", r.expected},
         {"measured", r.measured},
         {"tolerance", r.tolerance},
         {"after_s", to_seconds(r.after)}};
  if (!r.ok)
    log_->warn("readback: expected {} ± {}, measured {} after {:.1f} s", r.expected, r.tolerance, r.measured,
               to_seconds(r.after));
  last_readback_ = j;
  hooks_.emit(std::move(j));
}

void ScheduleDriver::cancel_timers() { step_timer_.cancel(); }

ScheduleStatus ScheduleDriver::status() const {
  ScheduleStatus s;
  if (!runner_) return s;
  const auto& p = runner_->position();
  s.file = config_.path;
  s.steps = runner_->schedule().steps.size();
  s.running = p.running;
  s.precharging = start_pending_;
  s.step = p.step;
  s.cycle = p.cycle;
  s.setpoint = p.setpoint;
  s.nudging = nudging_;
  s.readback_ok = readback_ok_;
  s.readback_failed = readback_failed_;
  s.last_readback = last_readback_;
  return s;
}

}  // namespace cellguard::edge
