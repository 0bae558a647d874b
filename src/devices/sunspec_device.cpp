#include "devices/sunspec_device.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "devices/modbus_worker.h"

namespace cellguard::devices {
namespace {

namespace ss = sunspec;

// A point of a model read whole (`block` starts at the model's id register).
std::uint16_t at(const std::vector<std::uint16_t>& block, const ss::Point& p) { return block[p.offset]; }

std::optional<double> value(const std::vector<std::uint16_t>& block, const ss::Point& point,
                            const ss::Point& sf) {
  return ss::scaled(point.type, at(block, point), at(block, sf));
}

std::uint32_t u32(const std::vector<std::uint16_t>& block, const ss::Point& p) {
  return (static_cast<std::uint32_t>(block[p.offset]) << 16) | block[p.offset + 1u];
}

}  // namespace

SunSpecSession::SunSpecSession(InverterClientConfig config) : config_(std::move(config)) {}

void SunSpecSession::event(InverterEvent::Kind kind, MonoTime now, std::string message,
                           MonoTime requested_ns) {
  output_.events.push_back(InverterEvent{kind, now, std::move(message), requested_ns});
}

ModbusRequest SunSpecSession::read(std::uint16_t address, std::uint16_t count, std::string what,
                                   Pending pending) {
  pending_ = pending;
  return ModbusRequest{ModbusRequest::Function::read_holding_registers, address, count, 0, std::move(what)};
}

ModbusRequest SunSpecSession::write(const Write& w, Pending pending) {
  pending_ = pending;
  return ModbusRequest{ModbusRequest::Function::write_register, w.address, 1, w.value, w.what};
}

// --- the link ---

void SunSpecSession::connected(MonoTime now, const std::string& endpoint) {
  link_up_ = true;
  event(InverterEvent::Kind::connected, now, "connected to " + endpoint);
  begin_startup(now);
  next_poll_ = now;
}

void SunSpecSession::connect_failed(MonoTime now, const std::string& reason) {
  stats_.last_error = reason;
  ++stats_.consecutive_failures;
  output_.links.push_back({false, now, reason});
}

void SunSpecSession::disconnected(MonoTime now, const std::string& reason) {
  link_up_ = false;
  pending_ = Pending::none;
  stats_.phase = InverterPhase::connecting;
  stats_.mode = InverterMode::off;  // unknown: the start-up writes it again
  for (auto* command : {&setpoint_pending_, &setpoint_in_progress_}) {
    if (*command) {
      event(InverterEvent::Kind::command_failed, now,
            "power " + format_value((*command)->kw) + " kW: link lost", (*command)->requested_ns);
      command->reset();
    }
  }
  setpoint_queue_.clear();
  event(InverterEvent::Kind::disconnected, now, reason);
}

void SunSpecSession::stopped(MonoTime /*now*/) {
  link_up_ = false;
  stats_.phase = InverterPhase::stopped;
}

// Counts a transaction's outcome in its kind of freshness; reports the link. True: reconnect.
// --- start-up ---

void SunSpecSession::begin_startup(MonoTime now) {
  stats_.phase = InverterPhase::starting;
  base_index_ = 0;
  walker_.emplace(ss::kBaseAddresses[0]);
  chain_ = {};
  inverter_.reset();
  storage_.reset();
  battery_.reset();
  wcha_max_w_.reset();
  discovering_ = true;
  read_common_ = read_storage_ = false;
  startup_writes_.clear();
  startup_index_ = 0;
  settling_ = false;
  next_heartbeat_ = now;
}

void SunSpecSession::fail_startup(MonoTime now, const std::string& reason) {
  stats_.phase = InverterPhase::startup_failed;
  settling_ = false;
  discovering_ = false;
  next_startup_ = now + config_.reconnect_interval_ns;
  event(InverterEvent::Kind::startup_failed, now, reason);
}

void SunSpecSession::discovered(MonoTime now) {
  chain_ = walker_->chain();
  walker_.reset();
  discovering_ = false;
  std::string models;
  for (const auto& m : chain_.models) models += (models.empty() ? "" : ", ") + std::to_string(m.id);
  auto model = [&](std::uint16_t id, std::uint16_t length) -> std::optional<ss::Model> {
    const ss::Model* m = chain_.find(id);
    if (m == nullptr || m->length < length) return std::nullopt;
    return *m;
  };
  inverter_ = model(ss::inverter::kId, ss::inverter::kLength);
  battery_ = model(ss::battery::kId, ss::battery::kLength);
  storage_ = model(ss::storage::kId, ss::storage::kLength);
  const std::string found =
      "SunSpec map at " + std::to_string(chain_.base) + ": models " + (models.empty() ? "none" : models);
  if (!inverter_ || !battery_) {
    fail_startup(now, "start-up: " + found +
                          "; needs models 103 (inverter) and 802 (battery) of the standard's length");
    return;
  }
  event(InverterEvent::Kind::startup_step, now,
        found + (storage_ ? "" : " (no model 124: power setpoints refused)"));
}

bool SunSpecSession::heartbeat_live() const {
  return link_up_ && battery_ &&
         (stats_.phase == InverterPhase::running || settling_ ||
          (stats_.phase == InverterPhase::starting && startup_index_ > 1));
}

std::optional<ModbusRequest> SunSpecSession::next_request(MonoTime now) {
  if (!link_up_) return std::nullopt;
  // By priority: mode off, heartbeat, start-up, setpoint, poll.
  if (off_requested_ && battery_ && now >= next_off_attempt_) {
    const Write off{battery_->at(ss::battery::SetInvState),
                    static_cast<std::uint16_t>(ss::battery::InverterCommand::stopped),
                    "mode off (SetInvState INVERTER_STOPPED)"};
    return write(off, Pending::off);
  }
  if (heartbeat_live() && now >= next_heartbeat_) {
    next_heartbeat_ += config_.heartbeat_period_ns;
    if (next_heartbeat_ < now) next_heartbeat_ = now + config_.heartbeat_period_ns;
    const Write beat{battery_->at(ss::battery::CtrlHb), ++heartbeat_counter_, "heartbeat (CtrlHb)"};
    return write(beat, Pending::heartbeat);
  }
  if (stats_.phase == InverterPhase::starting && !settling_) {
    if (discovering_) {
      const ss::RegisterRead r = walker_->next();
      return read(r.address, r.count, "read SunSpec map at " + std::to_string(r.address), Pending::discover);
    }
    if (!read_common_) {
      if (const ss::Model* common = chain_.find(ss::common::kId);
          common != nullptr && common->length >= ss::common::kLength) {
        return read(common->address, ss::common::kLength + 2, "read model 1", Pending::common);
      }
      read_common_ = true;
    }
    if (!read_storage_ && storage_)
      return read(storage_->address, ss::storage::kLength + 2, "read model 124", Pending::storage);
    read_storage_ = true;
    if (startup_writes_.empty()) {
      startup_writes_ = {{battery_->at(ss::battery::SetInvState),
                          static_cast<std::uint16_t>(ss::battery::InverterCommand::stopped),
                          "mode off (SetInvState INVERTER_STOPPED)"},
                         {battery_->at(ss::battery::CtrlHb), ++heartbeat_counter_, "heartbeat (CtrlHb)"}};
      if (storage_) {
        startup_writes_.push_back({storage_->at(ss::storage::InWRte), 0, "charge rate 0 % (InWRte)"});
        startup_writes_.push_back({storage_->at(ss::storage::OutWRte), 0, "discharge rate 0 % (OutWRte)"});
        startup_writes_.push_back(
            {storage_->at(ss::storage::StorCtl_Mod),
             static_cast<std::uint16_t>(ss::storage::kChargeBit | ss::storage::kDischargeBit),
             "rate limits on (StorCtl_Mod CHARGE|DISCHARGE)"});
      }
    }
    return write(startup_writes_[startup_index_], Pending::startup_write);
  }
  if (stats_.phase == InverterPhase::startup_failed && now >= next_startup_) {
    begin_startup(now);
    return next_request(now);
  }
  if (stats_.phase == InverterPhase::running && !off_requested_) {
    if (setpoint_queue_.empty() && setpoint_pending_) {
      std::string why;
      auto writes = setpoint_writes(setpoint_pending_->kw, why);
      if (!writes) {
        event(InverterEvent::Kind::command_failed, now,
              "power " + format_value(setpoint_pending_->kw) + " kW: " + why,
              setpoint_pending_->requested_ns);
      } else {
        setpoint_queue_ = std::move(*writes);
        setpoint_in_progress_ = setpoint_pending_;
      }
      setpoint_pending_.reset();
    }
    if (!setpoint_queue_.empty()) return write(setpoint_queue_.front(), Pending::setpoint_write);
  }
  const bool polling =
      stats_.phase == InverterPhase::running || settling_ || stats_.phase == InverterPhase::startup_failed;
  if (polling && inverter_ && battery_) {
    if (poll_battery_next_)
      return read(battery_->address, ss::battery::kLength + 2, "read model 802", Pending::poll_battery);
    if (now >= next_poll_) {
      next_poll_ += config_.poll_period_ns;
      if (next_poll_ < now) next_poll_ = now + config_.poll_period_ns;
      return read(inverter_->address, ss::inverter::kLength + 2, "read model 103", Pending::poll_inverter);
    }
  }
  return std::nullopt;
}

MonoTime SunSpecSession::next_wake(MonoTime now) const {
  MonoTime until = now + config_.reconnect_interval_ns;
  if (!link_up_) return until;
  if (inverter_ && battery_) until = std::min(until, next_poll_);
  if (heartbeat_live()) until = std::min(until, next_heartbeat_);
  if (stats_.phase == InverterPhase::startup_failed) until = std::min(until, next_startup_);
  if (off_requested_) until = std::min(until, next_off_attempt_);
  return until;
}

bool SunSpecSession::reply(const ModbusRequest& request, const ModbusReply& answer, MonoTime now) {
  const Pending pending = std::exchange(pending_, Pending::none);
  const bool ok = answer.status == ModbusReply::Status::ok;
  switch (pending) {
    case Pending::none:
      return false;
    case Pending::discover: {
      // An exception at a base address is an answer: no SunSpec map there, try the next base.
      if (answer.status == ModbusReply::Status::exception || ok)
        account_reply(stats_, output_, Freshness::other, ModbusReply{}, request.what, now);
      Result<bool> step = ok ? walker_->feed(answer.registers)
                             : Result<bool>(Error(ErrorCode::not_found,
                                                  std::to_string(request.address) + ": " + answer.error));
      if (step.ok()) {
        if (*step) discovered(now);
        return false;
      }
      const bool next_base =
          step.error().code == ErrorCode::not_found && answer.status != ModbusReply::Status::timeout &&
          answer.status != ModbusReply::Status::link_error && ++base_index_ < ss::kBaseAddresses.size();
      if (next_base) {
        walker_.emplace(ss::kBaseAddresses[base_index_]);
        return false;
      }
      const bool reconnect = !ok && answer.status != ModbusReply::Status::exception &&
                             account_reply(stats_, output_, Freshness::other, answer, request.what, now);
      fail_startup(now, "start-up: no SunSpec device: " + step.error().message);
      return reconnect;
    }
    case Pending::common:
      read_common_ = true;
      if (ok) {
        auto text = [&](const ss::Point& p) {
          return ss::decode_string(std::span(answer.registers).subspan(p.offset, p.size));
        };
        identity_ = text(ss::common::Mn) + " " + text(ss::common::Md) + ", serial " + text(ss::common::SN) +
                    ", version " + text(ss::common::Vr);
        event(InverterEvent::Kind::startup_step, now, "device: " + identity_);
      }
      return account_reply(stats_, output_, Freshness::other, answer, request.what,
                           now);  // optional: a failure is reported, not fatal
    case Pending::storage:
      read_storage_ = true;
      if (ok) {
        wcha_max_w_ = value(answer.registers, ss::storage::WChaMax, ss::storage::WChaMax_SF);
        rate_scale_factor_ = at(answer.registers, ss::storage::InOutWRte_SF);
        if (!wcha_max_w_ || *wcha_max_w_ <= 0 || !ss::scaled(ss::PointType::sunssf, 0, rate_scale_factor_)) {
          wcha_max_w_.reset();
          event(InverterEvent::Kind::startup_step, now,
                "model 124 without a usable WChaMax or InOutWRte_SF: power setpoints refused");
        } else {
          event(InverterEvent::Kind::startup_step, now,
                "storage: WChaMax " + format_value(*wcha_max_w_ / 1000) + " kW");
        }
      }
      return account_reply(stats_, output_, Freshness::other, answer, request.what, now);
    case Pending::startup_write: {
      const bool is_heartbeat = request.address == battery_->at(ss::battery::CtrlHb);
      const bool reconnect = account_reply(
          stats_, output_, is_heartbeat ? Freshness::heartbeat : Freshness::other, answer, request.what, now);
      if (!ok) {
        fail_startup(now, "start-up: " + answer.error);
        return reconnect;
      }
      if (is_heartbeat) {
        ++stats_.heartbeats;
        stats_.last_heartbeat_ack_ns = now;
        output_.heartbeats.push_back(now);
        next_heartbeat_ = now + config_.heartbeat_period_ns;
      }
      if (request.address == battery_->at(ss::battery::SetInvState)) {
        stats_.mode = InverterMode::off;
        stats_.setpoint = 0;
      }
      event(InverterEvent::Kind::startup_step, now,
            request.what + " written (" + std::to_string(request.value) + " to " +
                std::to_string(request.address) + ")");
      if (++startup_index_ == startup_writes_.size()) {
        settling_ = true;
        settle_deadline_ = now + config_.startup_settle_timeout_ns;
        next_poll_ = now;
        event(InverterEvent::Kind::startup_step, now,
              "waiting up to " + format_ms(config_.startup_settle_timeout_ns) +
                  " for current and power ≈ 0 and the voltage within the limits");
      }
      return reconnect;
    }
    case Pending::off: {
      const bool reconnect = account_reply(stats_, output_, Freshness::other, answer, request.what, now);
      if (!off_requested_) return reconnect;
      if (ok) {
        const MonoTime requested = *off_requested_;
        off_requested_.reset();
        stats_.mode = InverterMode::off;
        stats_.setpoint = 0;
        event(InverterEvent::Kind::command_written, now,
              "mode off written " + format_ms(now - requested) + " after the request", requested);
      } else {
        next_off_attempt_ = now + config_.poll_period_ns;  // paced: an exception must not spin
        event(InverterEvent::Kind::command_failed, now, "mode off: " + answer.error + " (retrying)",
              *off_requested_);
      }
      return reconnect;
    }
    case Pending::heartbeat: {
      const bool reconnect = account_reply(stats_, output_, Freshness::heartbeat, answer, request.what, now);
      if (ok) {
        ++stats_.heartbeats;
        stats_.last_heartbeat_ack_ns = now;
        output_.heartbeats.push_back(now);
      }
      return reconnect;
    }
    case Pending::setpoint_write: {
      const bool reconnect = account_reply(stats_, output_, Freshness::other, answer, request.what, now);
      if (!setpoint_in_progress_) return reconnect;
      const std::string what = "power " + format_value(setpoint_in_progress_->kw) + " kW";
      if (!ok) {
        event(InverterEvent::Kind::command_failed, now, what + ": " + answer.error,
              setpoint_in_progress_->requested_ns);
        setpoint_queue_.clear();
        setpoint_in_progress_.reset();
        return reconnect;
      }
      if (!setpoint_queue_.empty()) setpoint_queue_.erase(setpoint_queue_.begin());
      if (setpoint_queue_.empty()) {
        stats_.mode = InverterMode::power;
        stats_.setpoint = setpoint_in_progress_->kw;
        event(
            InverterEvent::Kind::command_written, now,
            what + " written " + format_ms(now - setpoint_in_progress_->requested_ns) + " after the request",
            setpoint_in_progress_->requested_ns);
        setpoint_in_progress_.reset();
      }
      return reconnect;
    }
    case Pending::poll_inverter:
      if (!ok) {
        poll_battery_next_ = false;
        const bool reconnect = account_reply(stats_, output_, Freshness::reading, answer, request.what, now);
        if (settling_ && now >= settle_deadline_) fail_startup(now, "start-up: " + answer.error);
        return reconnect;
      }
      inverter_block_ = answer.registers;
      poll_battery_next_ = true;
      return false;  // counted with the battery's read: one reading is both
    case Pending::poll_battery: {
      poll_battery_next_ = false;
      if (!ok) {
        const bool reconnect = account_reply(stats_, output_, Freshness::reading, answer, request.what, now);
        if (settling_ && now >= settle_deadline_) fail_startup(now, "start-up: " + answer.error);
        return reconnect;
      }
      decode_poll(answer.registers, now);
      return false;
    }
  }
  return false;
}

void SunSpecSession::decode_poll(const std::vector<std::uint16_t>& b, MonoTime now) {
  const std::vector<std::uint16_t>& inv = inverter_block_;
  namespace inv_p = ss::inverter;
  namespace bat = ss::battery;
  const auto v = value(b, bat::V, bat::V_SF);
  const auto a = value(b, bat::A, bat::A_SF);
  const auto dcv = value(inv, inv_p::DCV, inv_p::DCV_SF);
  const auto dcw = value(inv, inv_p::DCW, inv_p::DCW_SF);
  if (!v || !a || !dcv || !dcw) {
    std::string missing;
    for (const auto& [ok, name] : {std::pair{v.has_value(), "802 V"},
                                   {a.has_value(), "802 A"},
                                   {dcv.has_value(), "103 DCV"},
                                   {dcw.has_value(), "103 DCW"}}) {
      if (!ok) missing += (missing.empty() ? "" : ", ") + std::string(name);
    }
    const std::string cause = "not implemented: " + missing;
    ModbusReply failed{ModbusReply::Status::malformed, {}, "read models 103 and 802: " + cause, cause};
    account_reply(stats_, output_, Freshness::reading, failed, "poll", now);
    return;
  }
  InverterReadings r;
  r.time_ns = now;
  r.battery_voltage_v = *v;
  r.dc_link_current_a = *a;
  r.dc_link_voltage_v = *dcv;
  r.dc_link_power_kw = *dcw / 1000;
  r.heatsink_c = value(inv, inv_p::TmpSnk, inv_p::Tmp_SF).value_or(0);
  r.ambient_c = value(inv, inv_p::TmpCab, inv_p::Tmp_SF).value_or(0);
  r.status = at(inv, inv_p::St);
  r.ready = at(b, bat::State) == static_cast<std::uint16_t>(bat::BankState::connected);
  const std::uint32_t inverter_events = u32(inv, inv_p::Evt1);
  const std::uint32_t battery_events = u32(b, bat::Evt1);
  r.faults = {static_cast<std::uint16_t>(inverter_events >> 16), static_cast<std::uint16_t>(inverter_events),
              static_cast<std::uint16_t>(battery_events >> 16), static_cast<std::uint16_t>(battery_events)};
  stats_.last_reading_ns = now;
  account_reply(stats_, output_, Freshness::reading, ModbusReply{}, "read models 103 and 802", now);
  output_.readings.push_back(r);
  if (settling_) check_settled(r, now);
}

void SunSpecSession::check_settled(const InverterReadings& r, MonoTime now) {
  if (startup_settled(config_, r)) {
    settling_ = false;
    stats_.phase = InverterPhase::running;
    event(InverterEvent::Kind::startup_done, now, startup_done_text(r));
  } else if (now >= settle_deadline_) {
    fail_startup(now, startup_not_settled_text(config_, r));
  }
}

// --- commands ---

std::optional<std::vector<SunSpecSession::Write>> SunSpecSession::setpoint_writes(double kw,
                                                                                  std::string& why) const {
  if (!storage_ || !wcha_max_w_) {
    why = "refused: the device has no storage controls (model 124 with WChaMax)";
    return std::nullopt;
  }
  const double percent = std::clamp(std::fabs(kw) * 1000 / *wcha_max_w_ * 100, 0.0, 100.0);
  const auto raw = ss::to_raw(ss::storage::OutWRte.type, percent, rate_scale_factor_);
  if (!raw) {
    why = "refused: InOutWRte_SF is not usable";
    return std::nullopt;
  }
  const std::string rate = format_value(percent) + " % of WChaMax";
  const bool discharge = kw >= 0;
  std::vector<Write> writes = {
      {storage_->at(ss::storage::OutWRte), discharge ? *raw : std::uint16_t{0},
       "discharge rate " + (discharge ? rate : "0 %") + " (OutWRte)"},
      {storage_->at(ss::storage::InWRte), discharge ? std::uint16_t{0} : *raw,
       "charge rate " + (discharge ? "0 %" : rate) + " (InWRte)"},
      {storage_->at(ss::storage::StorCtl_Mod),
       static_cast<std::uint16_t>(ss::storage::kChargeBit | ss::storage::kDischargeBit),
       "rate limits on (StorCtl_Mod CHARGE|DISCHARGE)"}};
  if (stats_.mode != InverterMode::power) {
    writes.push_back({battery_->at(ss::battery::SetInvState),
                      static_cast<std::uint16_t>(ss::battery::InverterCommand::started),
                      "start (SetInvState INVERTER_STARTED)"});
  }
  return writes;
}

void SunSpecSession::command_off(MonoTime requested_ns, MonoTime now) {
  // The oldest unserved request is kept: its latency is the one that matters.
  if (!off_requested_) off_requested_ = requested_ns;
  next_off_attempt_ = std::min(next_off_attempt_, now);
  for (auto* command : {&setpoint_pending_, &setpoint_in_progress_}) {
    if (*command) {
      event(InverterEvent::Kind::command_failed, now,
            "power " + format_value((*command)->kw) + " kW: replaced by mode off", (*command)->requested_ns);
      command->reset();
    }
  }
  setpoint_queue_.clear();
}

void SunSpecSession::command_setpoint(InverterMode mode, double setpoint, MonoTime requested_ns,
                                      MonoTime now) {
  if (mode == InverterMode::off) {
    command_off(requested_ns, now);
    return;
  }
  const std::string what = std::string(to_string(mode)) + " " + format_value(setpoint);
  std::string refusal;
  if (mode != InverterMode::power) {
    refusal = "refused: the SunSpec storage controls (model 124) take power setpoints only";
  } else if (!std::isfinite(setpoint)) {
    refusal = "refused: not a finite value";
  } else if (stats_.phase != InverterPhase::running) {
    refusal = "refused: start-up not done (" + std::string(to_string(stats_.phase)) + ")";
  }
  if (!refusal.empty()) {
    event(InverterEvent::Kind::command_failed, now, what + ": " + refusal, requested_ns);
    return;
  }
  const double limit =
      std::fabs(config_.limits.charge_power_kw);  // one limit bounds both directions, as the rig's
  setpoint_pending_ = Setpoint{std::clamp(setpoint, -limit, limit), requested_ns};
}

std::unique_ptr<PowerDevice> make_sunspec_device(asio::io_context& loop, InverterClientConfig config,
                                                 const Clock& clock) {
  ModbusWorkerConfig worker{config.endpoint, config.response_timeout_ns, config.retries,
                            config.reconnect_interval_ns};
  return std::make_unique<ModbusWorker>(loop, std::move(worker),
                                        std::make_unique<SunSpecSession>(std::move(config)), clock);
}

}  // namespace cellguard::devices
